package config

import (
	"fmt"
	"math/big"
	"strings"
)

// sizeUnits maps a lower-cased unit to its number of bytes. Only units
// with one reading are accepted: "KB" is 1000 and "KiB" 1024, as in IEC
// 80000-13; a bare "K" or "M" means 1000 to some tools and 1024 to others,
// so it is refused rather than guessed.
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
	"pb":  1e15,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
	"pib": 1 << 50,
}

// sizeSyntaxError is the error for a value that is neither a whole number
// nor a size.
func sizeSyntaxError(s string) error {
	return fmt.Errorf(`expected a whole number or a size such as "64MiB", "1GB" or "512KiB", got %s`, quoteShort(s))
}

// parseSize parses a byte count such as "10000", "64MiB", "1.5 GB" or
// "512kib". The unit is case-insensitive and may follow the number after
// spaces; a fraction is allowed when the result is a whole number of bytes.
func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "-") {
		return 0, errNegative(s)
	}
	t = strings.TrimPrefix(t, "+")
	end := 0
	dot := false
	for end < len(t) {
		c := t[end]
		if c == '.' && !dot {
			dot = true
		} else if c < '0' || c > '9' {
			break
		}
		end++
	}
	num, unit := t[:end], strings.ToLower(strings.TrimSpace(t[end:]))
	if num == "" || num == "." || strings.HasPrefix(num, ".") || strings.HasSuffix(num, ".") {
		return 0, sizeSyntaxError(s)
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		if strings.ContainsFunc(unit, func(r rune) bool { return r < 'a' || r > 'z' }) {
			return 0, sizeSyntaxError(s)
		}
		return 0, fmt.Errorf("unknown unit %s in %s: use B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)",
			quoteShort(strings.TrimSpace(t[end:])), quoteShort(s))
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, sizeSyntaxError(s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("invalid size %s: not a whole number of bytes", quoteShort(s))
	}
	n := r.Num()
	if !n.IsUint64() {
		return 0, fmt.Errorf("size %s is too large", quoteShort(s))
	}
	return n.Uint64(), nil
}

// errNegative is the error for a negative duration, size or count. Nothing
// in a cache's configuration can be negative, and turning -1 into 0 or
// "no limit" would hide a mistake.
func errNegative(v any) error {
	return fmt.Errorf("must not be negative, got %v", v)
}
