package ledger

import (
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/shopspring/decimal"
)

func TestParseAmount(t *testing.T) {
	cases := []struct {
		cur, in string
		want    int64
		err     error
	}{
		{"CNY", "12.34", 1234, nil},
		{"CNY", "12.3", 1230, nil},
		{"CNY", "12", 1200, nil},
		{"CNY", "0.01", 1, nil},
		{"CNY", "0", 0, nil},
		{"CNY", "007.10", 710, nil},
		{"JPY", "1234", 1234, nil},
		{"KWD", "1.234", 1234, nil},
		{"CNY", "92233720368547758.07", math.MaxInt64, nil},
		{"JPY", "9223372036854775807", math.MaxInt64, nil},
		{"CNY", "12.345", 0, ErrAmountPrecision},
		{"CNY", "1.230", 0, ErrAmountPrecision}, // never rounded, not even zeros
		{"JPY", "1.5", 0, ErrAmountPrecision},
		{"JPY", "1.0", 0, ErrAmountPrecision},
		{"KWD", "1.2345", 0, ErrAmountPrecision},
		{"CNY", "92233720368547758.08", 0, ErrAmountTooLarge},
		{"JPY", "9223372036854775808", 0, ErrAmountTooLarge},
		{"CNY", "99999999999999999999999999", 0, ErrAmountTooLarge},
		{"CNY", "-1.00", 0, ErrAmountInvalid},
		{"CNY", "+1.00", 0, ErrAmountInvalid},
		{"CNY", "1e3", 0, ErrAmountInvalid},
		{"CNY", ".5", 0, ErrAmountInvalid},
		{"CNY", "5.", 0, ErrAmountInvalid},
		{"CNY", " 5", 0, ErrAmountInvalid},
		{"CNY", "5 ", 0, ErrAmountInvalid},
		{"CNY", "1,000.00", 0, ErrAmountInvalid},
		{"CNY", "0x10", 0, ErrAmountInvalid},
		{"CNY", "NaN", 0, ErrAmountInvalid},
		{"CNY", "Infinity", 0, ErrAmountInvalid},
		{"CNY", "", 0, ErrAmountInvalid},
		{"CNY", "1..2", 0, ErrAmountInvalid},
		{"CNY", "١٢", 0, ErrAmountInvalid}, // Arabic-Indic digits
		{"XXX", "1.00", 0, ErrUnknownCurrency},
		{"cny", "1.00", 0, ErrUnknownCurrency},
	}
	for _, c := range cases {
		got, err := ParseAmount(c.cur, c.in)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("ParseAmount(%s, %q) error = %v, want %v", c.cur, c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseAmount(%s, %q) = %d, %v; want %d", c.cur, c.in, got, err, c.want)
		}
	}
}

func TestFormatAmount(t *testing.T) {
	cases := []struct {
		cur   string
		minor int64
		want  string
	}{
		{"CNY", 1234, "12.34"}, {"CNY", 5, "0.05"}, {"CNY", 0, "0.00"}, {"CNY", -150, "-1.50"},
		{"JPY", 1234, "1234"}, {"KWD", 1, "0.001"}, {"CNY", math.MaxInt64, "92233720368547758.07"},
	}
	for _, c := range cases {
		if got := FormatAmount(c.cur, c.minor); got != c.want {
			t.Errorf("FormatAmount(%s, %d) = %q, want %q", c.cur, c.minor, got, c.want)
		}
	}
}

func TestFromDecimalRoundsHalfUp(t *testing.T) {
	cases := []struct {
		cur, in string
		want    int64
	}{
		{"CNY", "0.005", 1}, {"CNY", "0.0049", 0}, {"CNY", "0.015", 2}, {"CNY", "0.025", 3},
		{"CNY", "1.994", 199}, {"JPY", "0.5", 1}, {"JPY", "2.5", 3}, {"KWD", "0.0005", 1},
	}
	for _, c := range cases {
		got, err := FromDecimal(c.cur, decimal.RequireFromString(c.in))
		if err != nil || got != c.want {
			t.Errorf("FromDecimal(%s, %s) = %d, %v; want %d", c.cur, c.in, got, err, c.want)
		}
	}
}

// FuzzParseAmount checks that parsing never panics and that whatever parses
// formats back to the same value.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"12.34", "0", "1.230", "92233720368547758.07", "1e3", "-1", ".5", "00.10"} {
		f.Add("CNY", s)
		f.Add("JPY", s)
		f.Add("KWD", s)
	}
	f.Fuzz(func(t *testing.T, cur, s string) {
		minor, err := ParseAmount(cur, s)
		if err != nil {
			return
		}
		if minor < 0 {
			t.Fatalf("ParseAmount(%s, %q) = %d, negative", cur, s, minor)
		}
		back, err := ParseAmount(cur, FormatAmount(cur, minor))
		if err != nil || back != minor {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", s, minor, FormatAmount(cur, minor), back, err)
		}
		d, _ := decimal.NewFromString(s)
		if !d.Equal(ToDecimal(cur, minor)) {
			t.Fatalf("ParseAmount(%s, %q) = %s, not the same value", cur, s, strconv.FormatInt(minor, 10))
		}
	})
}
