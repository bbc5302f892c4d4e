package keyring

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func key(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func TestParse_AcceptsHexAndEveryBase64Form(t *testing.T) {
	k := []byte{0x00, 0xfb, 0xff, 0x10, 0x3e, 0x3f, 0x7a, 0x99, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x00, 0xfb, 0xff, 0x10, 0x3e, 0x3f, 0x7a, 0x99, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}
	for name, text := range map[string]string{
		"hex":                 hex.EncodeToString(k),
		"upper-case hex":      strings.ToUpper(hex.EncodeToString(k)),
		"hex, prefixed":       "hex:" + hex.EncodeToString(k),
		"base64":              base64.StdEncoding.EncodeToString(k),
		"base64, unpadded":    base64.RawStdEncoding.EncodeToString(k),
		"base64url":           base64.URLEncoding.EncodeToString(k),
		"base64url, unpadded": base64.RawURLEncoding.EncodeToString(k),
		"base64, prefixed":    "base64:" + base64.StdEncoding.EncodeToString(k),
		"with spaces":         "  " + hex.EncodeToString(k) + "\n",
	} {
		got, err := Parse(text)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("%s: Parse = %x, %v", name, got, err)
		}
	}
	// Hex digits only is hex, even though it is valid base64 too; the
	// prefix forces the other reading.
	h := hex.EncodeToString(key(0xab, 32))
	if got, _ := Parse(h); len(got) != 32 {
		t.Errorf("hex digits read as %d bytes, want 32", len(got))
	}
	if got, _ := Parse("base64:" + h); len(got) != 48 {
		t.Errorf("base64: prefix read %d bytes, want 48", len(got))
	}
}

func TestParse_ErrorsNeverShowTheText(t *testing.T) {
	for _, text := range []string{"", "   ", "hex:abc", "hex:zz11", "base64:!!!!", "secret-ish text, not a key", "ab!cd"} {
		_, err := Parse(text)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", text)
			continue
		}
		if trimmed := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(text, "hex:"), "base64:")); len(trimmed) > 2 && strings.Contains(err.Error(), trimmed) {
			t.Errorf("Parse(%q) error shows the text: %v", text, err)
		}
	}
	if _, err := Decode(1234); err == nil || strings.Contains(err.Error(), "1234") {
		t.Errorf("Decode(number) = %v; want an error without the value", err)
	}
	if b, err := Decode(hex.EncodeToString(key(1, 32))); err != nil || len(b) != 32 {
		t.Errorf("Decode(hex) = %x, %v", b, err)
	}
}

func TestIDOf_IsStableAndTellsKeysApart(t *testing.T) {
	a, b := key(1, 32), key(2, 32)
	if IDOf(a) != IDOf(bytes.Clone(a)) {
		t.Error("one key, two ids")
	}
	if IDOf(a) == IDOf(b) {
		t.Error("two keys, one id")
	}
	if strings.Contains(hex.EncodeToString(a), IDOf(a).String()) {
		t.Error("the id is part of the key")
	}
}

func TestCheckKeys(t *testing.T) {
	if _, err := CheckKeys("k", [][]byte{key(1, 32), key(2, 40)}, 32, false); err != nil {
		t.Errorf("valid keys: %v", err)
	}
	for name, tc := range map[string]struct {
		keys  [][]byte
		exact bool
		want  string
	}{
		"short":     {[][]byte{key(1, 32), key(2, 31)}, false, "k[1]: key of 31 bytes"},
		"long":      {[][]byte{key(1, 33)}, true, "k[0]: key of 33 bytes, want exactly 32"},
		"duplicate": {[][]byte{key(1, 32), key(2, 32), key(1, 32)}, false, "k[2]: same key as k[0]"},
	} {
		if _, err := CheckKeys("k", tc.keys, 32, tc.exact); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", name, err, tc.want)
		}
	}
}

func TestSigner_SignsWithFirstVerifiesWithAny(t *testing.T) {
	k1, k2, k3 := key(1, 32), key(2, 32), key(3, 32)
	old, err := NewSigner("k", "test", [][]byte{k1})
	if err != nil {
		t.Fatal(err)
	}
	rotating, err := NewSigner("k", "test", [][]byte{k2, k1})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := NewSigner("k", "test", [][]byte{k3})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello")
	byOld := old.Append(bytes.Clone(msg), "ctx")
	byNew := rotating.Append(bytes.Clone(msg), "ctx")
	if len(byOld) != len(msg)+TrailerSize {
		t.Fatalf("signed length %d", len(byOld))
	}
	for name, tc := range map[string]struct {
		s      *Signer
		signed []byte
		want   error
	}{
		"old by old":           {old, byOld, nil},
		"old by rotating":      {rotating, byOld, nil},
		"new by rotating":      {rotating, byNew, nil},
		"new by old":           {old, byNew, ErrUnknownKey},
		"old by stranger":      {stranger, byOld, ErrUnknownKey},
		"too short":            {old, byOld[:TrailerSize-1], ErrUnsigned},
		"message changed":      {old, append([]byte("jello"), byOld[len(msg):]...), ErrBadMAC},
		"signature changed":    {old, append(bytes.Clone(byOld[:len(byOld)-1]), byOld[len(byOld)-1]^1), ErrBadMAC},
		"trailer of the empty": {old, old.Append(nil, "ctx")[:TrailerSize-1], ErrUnsigned},
	} {
		got, err := tc.s.Verify(tc.signed, "ctx")
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
		if err == nil && !bytes.Equal(got, msg) {
			t.Errorf("%s: message = %q", name, got)
		}
	}
	if _, err := old.Verify(byOld, "another context"); !errors.Is(err, ErrBadMAC) {
		t.Errorf("verified in another context: %v", err)
	}
	otherUse, _ := NewSigner("k", "another label", [][]byte{k1})
	if _, err := otherUse.Verify(byOld, "ctx"); !errors.Is(err, ErrBadMAC) {
		t.Errorf("verified under another label: %v", err)
	}
	// A context and message that run together differently do not collide.
	a := old.Append([]byte("bc"), "a")
	if _, err := old.Verify(append([]byte("c"), a[2:]...), "ab"); err == nil {
		t.Error("context boundary is ambiguous")
	}
}

func TestNewSigner_RefusesBadKeys(t *testing.T) {
	if _, err := NewSigner("signing_keys", "l", nil); err == nil {
		t.Error("no keys accepted")
	}
	if _, err := NewSigner("signing_keys", "l", [][]byte{key(1, 16)}); err == nil || !strings.Contains(err.Error(), "signing_keys[0]") {
		t.Errorf("short key: %v", err)
	}
}

func TestSigner_DoesNotKeepCallersSlice(t *testing.T) {
	k := key(1, 32)
	s, _ := NewSigner("k", "l", [][]byte{k})
	signed := s.Append([]byte("m"), "c")
	k[0] = 9 // the caller reuses its buffer
	if _, err := s.Verify(signed, "c"); err != nil {
		t.Errorf("after the caller changed its slice: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	s, _ := NewSigner("k", "l", [][]byte{key(1, 32), key(2, 32)})
	f.Add(s.Append([]byte("message"), "c"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		msg, err := s.Verify(p, "c")
		if err == nil && !bytes.Equal(s.Append(bytes.Clone(msg), "c"), p) {
			t.Fatalf("verified %x, which is not what signing %q gives", p, msg)
		}
	})
}

func BenchmarkSigner(b *testing.B) {
	s, _ := NewSigner("k", "l", [][]byte{key(1, 32)})
	msg := bytes.Repeat([]byte("x"), 1024)
	signed := s.Append(bytes.Clone(msg), "app:user:42")
	b.Run("append/size=1KB", func(b *testing.B) {
		buf := make([]byte, 0, len(msg)+TrailerSize)
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			s.Append(append(buf[:0], msg...), "app:user:42")
		}
	})
	b.Run("verify/size=1KB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			if _, err := s.Verify(signed, "app:user:42"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
