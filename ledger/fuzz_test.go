package ledger

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
)

// fuzzCurrencies are the currencies the amount fuzzers pick from: one of
// each exponent, and one minipay does not know.
var fuzzCurrencies = []string{"CNY", "JPY", "KWD", "XXX", "cny", ""}

// FuzzParseAmountExact checks ParseAmount against an independent reading of the
// string with math/big: it never panics, accepts exactly the plain
// non-negative decimals that fit the currency's exponent and int64, returns
// their exact value in minor units, and FormatAmount gives back a string of
// the same value that parses to the same amount.
func FuzzParseAmountExact(f *testing.F) {
	for i, s := range []string{"12.34", "0", "0.01", "007.10", "1.230", "1e3", "-1.00", "+1", ".5", "5.", "1..2",
		"92233720368547758.07", "92233720368547758.08", "9223372036854775807", "9223372036854775808",
		"99999999999999999999999999", "", " 1", "1 ", "١٢", "0x10", "NaN", "Infinity", strings.Repeat("9", 65)} {
		f.Add(uint8(i), s)
	}
	f.Fuzz(func(t *testing.T, cur uint8, s string) {
		currency := fuzzCurrencies[int(cur)%len(fuzzCurrencies)]
		got, err := ParseAmount(currency, s)
		exp, known := exponents[currency]
		want, wantErr := referenceParse(s, exp)
		switch {
		case !known:
			if !errors.Is(err, ErrUnknownCurrency) {
				t.Fatalf("ParseAmount(%q, %q) = %d, %v; want ErrUnknownCurrency", currency, s, got, err)
			}
			return
		case wantErr != nil:
			if !errors.Is(err, wantErr) {
				t.Fatalf("ParseAmount(%q, %q) = %d, %v; want %v", currency, s, got, err, wantErr)
			}
			return
		case err != nil || got != want:
			t.Fatalf("ParseAmount(%q, %q) = %d, %v; want %d", currency, s, got, err, want)
		}
		out := FormatAmount(currency, got)
		if frac := strings.IndexByte(out, '.'); (exp == 0 && frac >= 0) || (exp > 0 && len(out)-frac-1 != int(exp)) {
			t.Fatalf("FormatAmount(%q, %d) = %q: not %d decimal places", currency, got, out, exp)
		}
		back, err := ParseAmount(currency, out)
		if err != nil || back != got {
			t.Fatalf("round trip %q → %d → %q → %d, %v", s, got, out, back, err)
		}
	})
}

// referenceParse reads s as ParseAmount is documented to: digits with an
// optional '.' followed by at least one digit, at most 64 characters; more
// fraction digits than exp is ErrAmountPrecision; a value over MaxInt64
// minor units is ErrAmountTooLarge.
func referenceParse(s string, exp int32) (int64, error) {
	if len(s) == 0 || len(s) > 64 {
		return 0, ErrAmountInvalid
	}
	whole, frac, dotted := strings.Cut(s, ".")
	digits := func(p string) bool {
		return p != "" && strings.Trim(p, "0123456789") == ""
	}
	if !digits(whole) || (dotted && !digits(frac)) {
		return 0, ErrAmountInvalid
	}
	if len(frac) > int(exp) {
		return 0, ErrAmountPrecision
	}
	n, _ := new(big.Int).SetString(whole+frac+strings.Repeat("0", int(exp)-len(frac)), 10)
	if n.Cmp(big.NewInt(math.MaxInt64)) > 0 {
		return 0, ErrAmountTooLarge
	}
	return n.Int64(), nil
}

// FuzzFormatAmount: every int64 formats without panicking to a string with
// the currency's decimal places whose value is exactly the amount; a
// non-negative one parses back to itself, a negative one is refused.
func FuzzFormatAmount(f *testing.F) {
	for _, v := range []int64{0, 1, -1, 99, 100, 1234, math.MaxInt64, math.MinInt64, -100} {
		f.Add(uint8(0), v)
		f.Add(uint8(1), v)
		f.Add(uint8(2), v)
	}
	f.Fuzz(func(t *testing.T, cur uint8, minor int64) {
		currency := fuzzCurrencies[int(cur)%3]
		exp := exponents[currency]
		s := FormatAmount(currency, minor)
		r, ok := new(big.Rat).SetString(s)
		want := new(big.Rat).SetFrac(big.NewInt(minor), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil))
		if !ok || r.Cmp(want) != 0 {
			t.Fatalf("FormatAmount(%q, %d) = %q, worth %v", currency, minor, s, r)
		}
		got, err := ParseAmount(currency, s)
		if minor >= 0 && (err != nil || got != minor) {
			t.Fatalf("ParseAmount(%q, FormatAmount(%d) = %q) = %d, %v", currency, minor, s, got, err)
		}
		if minor < 0 && !errors.Is(err, ErrAmountInvalid) {
			t.Fatalf("ParseAmount(%q, %q) = %d, %v; want ErrAmountInvalid", currency, s, got, err)
		}
	})
}
