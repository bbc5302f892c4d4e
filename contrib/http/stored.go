package httpcache

import (
	"encoding/binary"
	"errors"
	"net/http"
	"slices"
	"unsafe"
)

// A stored value is one of two records, each a compact byte string that the
// cache keeps as it is (no codec), so that a hit reads a few lengths rather
// than decoding JSON:
//
//	response: version 'r' status:u16 storedAt:i64 values headersLen headers body...
//	variants: version 'v' names
//
// headers is a count followed by, for each header, its name and its values
// (a count and the strings); values is how many values there are in all,
// and headersLen the length of headers, so that the body is found at once.
// names is a count and the strings. Counts and lengths are uvarints. A
// response record holds one response; a variants record stands under a
// route's key when the route's responses vary with request headers (Vary),
// and names those headers: the responses then live under keys that include
// the request's values of them.
const (
	formatVersion = 1
	kindResponse  = 'r'
	kindVariants  = 'v'
)

// errCorrupt reports bytes that are not a record of this format.
var errCorrupt = errors.New("httpcache: corrupt stored response")

// encodeResponse returns the record of a response: its status, when it was
// stored (Unix nanoseconds), the headers of h that keep selects, and body.
func encodeResponse(status int, storedAt int64, h http.Header, keep func(name string) bool, body []byte) []byte {
	names := make([]string, 0, len(h))
	values := 0
	for name, vals := range h {
		if len(vals) == 0 || !keep(name) {
			continue
		}
		names = append(names, name)
		values += len(vals)
	}
	slices.Sort(names) // the same response always encodes to the same bytes
	headers := binary.AppendUvarint(nil, uint64(len(names)))
	for _, name := range names {
		headers = appendString(headers, name)
		vals := h[name]
		headers = binary.AppendUvarint(headers, uint64(len(vals)))
		for _, v := range vals {
			headers = appendString(headers, v)
		}
	}
	b := make([]byte, 0, 12+2*binary.MaxVarintLen64+len(headers)+len(body))
	b = append(b, formatVersion, kindResponse)
	b = binary.BigEndian.AppendUint16(b, uint16(status))
	b = binary.BigEndian.AppendUint64(b, uint64(storedAt))
	b = binary.AppendUvarint(b, uint64(values))
	b = binary.AppendUvarint(b, uint64(len(headers)))
	b = append(b, headers...)
	return append(b, body...)
}

// encodeVariants returns the record that names the request headers a
// route's responses vary with.
func encodeVariants(names []string) []byte {
	b := []byte{formatVersion, kindVariants}
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		b = appendString(b, n)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// response is a response record split into its parts, without copying:
// headers and body alias the record's bytes. The header block is checked
// as it is read (response.writeHeaders, response.validators).
type response struct {
	status   int
	storedAt int64
	values   int    // how many header values the block claims
	headers  []byte // the header block
	body     []byte
}

// parseRecord tells a response record from a variants record and splits
// it. Bytes of any other shape are errCorrupt; nothing here panics on any
// input, and only variant names are copied.
func parseRecord(b []byte) (resp response, variants []string, err error) {
	if len(b) < 2 || b[0] != formatVersion {
		return response{}, nil, errCorrupt
	}
	switch b[1] {
	case kindResponse:
		resp, err = parseResponse(b[2:])
		return resp, nil, err
	case kindVariants:
		variants, err = parseVariants(b[2:])
		return response{}, variants, err
	}
	return response{}, nil, errCorrupt
}

func parseResponse(b []byte) (response, error) {
	if len(b) < 10 {
		return response{}, errCorrupt
	}
	r := response{
		status:   int(binary.BigEndian.Uint16(b)),
		storedAt: int64(binary.BigEndian.Uint64(b[2:])),
	}
	if r.status < 200 || r.status > 599 {
		return response{}, errCorrupt
	}
	values, rest, ok := uvarint(b[10:])
	if !ok {
		return response{}, errCorrupt
	}
	r.values = int(values) // each value takes a byte at least: bounded by the record
	if r.headers, rest, ok = str(rest); !ok {
		return response{}, errCorrupt
	}
	r.body = rest
	return r, nil
}

func parseVariants(b []byte) ([]string, error) {
	n, rest, ok := uvarint(b)
	if !ok || n == 0 {
		return nil, errCorrupt
	}
	names := make([]string, 0, n)
	for range n {
		var name []byte
		if name, rest, ok = str(rest); !ok || len(name) == 0 {
			return nil, errCorrupt
		}
		names = append(names, string(name))
	}
	if len(rest) != 0 {
		return nil, errCorrupt
	}
	return names, nil
}

// uvarint reads a uvarint that counts things stored after it, so it is
// bounded by the bytes that remain.
func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 || v > uint64(len(b)-n) {
		return 0, nil, false
	}
	return v, b[n:], true
}

func str(b []byte) ([]byte, []byte, bool) {
	n, rest, ok := uvarint(b)
	if !ok {
		return nil, nil, false
	}
	return rest[:n], rest[n:], true
}

// headerReader walks a header block, checking every length against what
// remains. Strings alias the block (see response.writeHeaders).
type headerReader struct {
	s   string
	bad bool
}

func (hr *headerReader) uvarint() uint64 {
	var v uint64
	for i := 0; i < len(hr.s) && i < binary.MaxVarintLen64; i++ {
		c := hr.s[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			hr.s = hr.s[i+1:]
			return v
		}
	}
	hr.bad = true
	hr.s = ""
	return 0
}

func (hr *headerReader) str() string {
	n := hr.uvarint()
	if n > uint64(len(hr.s)) {
		hr.bad = true
		hr.s = ""
		return ""
	}
	s := hr.s[:n]
	hr.s = hr.s[n:]
	return s
}

// block returns the header block as a string without copying it. That is
// sound because a record is never written after it is made: the middleware
// encodes it into a fresh slice, the cache decodes each read from a remote
// layer into a fresh slice, and values from an in-process layer are shared
// read-only by the cache's contract. Headers then point into the record
// instead of costing an allocation each.
func (r *response) block() string {
	return unsafe.String(unsafe.SliceData(r.headers), len(r.headers))
}

// writeHeaders sets the record's headers into h, skipping those that skip
// selects (nil: none), and sets X-Cache to xcache. All value slices share
// one array, so a hit costs one allocation whatever the number of headers;
// each is capped at its length, so that appending to one copies it instead
// of overwriting its neighbour. A corrupt block leaves h as it was and
// returns errCorrupt.
func (r *response) writeHeaders(h http.Header, skip func(name string) bool, xcache []string) error {
	if r.values < 0 || r.values > len(r.headers) {
		return errCorrupt
	}
	vals := make([]string, r.values)
	// The headers are checked before any is set; most records have a few,
	// which are remembered here rather than read twice.
	type span struct {
		name       string
		first, end int
	}
	var spans [6]span
	hr := headerReader{s: r.block()}
	n := hr.uvarint()
	v := 0
	for i := uint64(0); i < n && !hr.bad; i++ {
		name := hr.str()
		nv := hr.uvarint()
		if name == "" || nv == 0 || nv > uint64(r.values-v) {
			hr.bad = true
			break
		}
		first := v
		for range nv {
			vals[v] = hr.str()
			v++
		}
		if i < uint64(len(spans)) {
			spans[i] = span{name, first, v}
		}
	}
	if hr.bad || hr.s != "" {
		return errCorrupt
	}
	for i := range min(n, uint64(len(spans))) {
		if sp := spans[i]; skip == nil || !skip(sp.name) {
			h[sp.name] = vals[sp.first:sp.end:sp.end]
		}
	}
	if n > uint64(len(spans)) {
		// The rest, read again: the block is known to be sound.
		hr = headerReader{s: r.block()}
		hr.uvarint()
		v = 0
		for i := range n {
			name := hr.str()
			nv := int(hr.uvarint())
			for range nv {
				hr.str()
			}
			if i >= uint64(len(spans)) && (skip == nil || !skip(name)) {
				h[name] = vals[v : v+nv : v+nv]
			}
			v += nv
		}
	}
	setXCache(h, xcache)
	return nil
}

// validators returns the first ETag and Last-Modified values of the record,
// for conditional requests, checking the block on the way as writeHeaders
// does.
func (r *response) validators() (etag, lastModified string, err error) {
	if r.values < 0 || r.values > len(r.headers) {
		return "", "", errCorrupt
	}
	hr := headerReader{s: r.block()}
	n := hr.uvarint()
	seen := 0
	for i := uint64(0); i < n && !hr.bad; i++ {
		name := hr.str()
		nv := hr.uvarint()
		if name == "" || nv == 0 || nv > uint64(r.values-seen) {
			hr.bad = true
			break
		}
		seen += int(nv)
		for j := uint64(0); j < nv && !hr.bad; j++ {
			v := hr.str()
			if j > 0 {
				continue
			}
			switch name {
			case "Etag":
				etag = v
			case "Last-Modified":
				lastModified = v
			}
		}
	}
	if hr.bad || hr.s != "" {
		return "", "", errCorrupt
	}
	return etag, lastModified, nil
}
