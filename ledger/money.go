package ledger

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/shopspring/decimal"
)

// exponents holds the ISO 4217 minor-unit exponent of every currency minipay
// accepts. It is the single source of truth for converting between the decimal
// strings of the API and the int64 minor units stored in the ledger.
var exponents = map[string]int32{
	"AED": 2, "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0,
	"CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2,
	"IDR": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0,
	"KWD": 3, "MOP": 2, "MXN": 2, "MYR": 2, "NOK": 2, "NZD": 2, "OMR": 3,
	"PHP": 2, "PLN": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TND": 3,
	"TRY": 2, "TWD": 2, "UGX": 0, "USD": 2, "VND": 0, "ZAR": 2,
}

// Currencies returns the codes of all supported currencies, sorted.
func Currencies() []string {
	out := make([]string, 0, len(exponents))
	for c := range exponents {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Exponent returns the number of decimal places of currency's minor unit
// (CNY 2, JPY 0, KWD 3), or ErrUnknownCurrency.
func Exponent(currency string) (int32, error) {
	exp, ok := exponents[currency]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownCurrency, currency)
	}
	return exp, nil
}

// ParseAmount converts a decimal string in major units ("12.34") to minor units
// of currency (1234). It accepts only plain non-negative decimals: digits with
// an optional fraction, no sign, exponent, spaces or leading dot. It never
// rounds: more fraction digits than the currency allows is ErrAmountPrecision
// (trailing zeros included, so "1.230" is refused for CNY), and an amount that
// does not fit in int64 minor units is ErrAmountTooLarge.
func ParseAmount(currency, s string) (int64, error) {
	exp, err := Exponent(currency)
	if err != nil {
		return 0, err
	}
	frac, ok := plainDecimal(s)
	if !ok {
		return 0, fmt.Errorf("%w: %q is not a decimal string such as \"12.34\"", ErrAmountInvalid, s)
	}
	if frac > int(exp) {
		return 0, fmt.Errorf("%w: %s allows %d decimal places, %q has %d", ErrAmountPrecision, currency, exp, s, frac)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrAmountInvalid, s)
	}
	minor := d.Shift(exp)
	if minor.GreaterThan(decimal.NewFromInt(math.MaxInt64)) {
		return 0, fmt.Errorf("%w: %q %s", ErrAmountTooLarge, s, currency)
	}
	return minor.IntPart(), nil
}

// plainDecimal reports whether s is digits with an optional '.' and at least
// one digit after it, and returns the number of fraction digits. Length is
// capped so a hostile megabyte of digits costs nothing.
func plainDecimal(s string) (frac int, ok bool) {
	if len(s) == 0 || len(s) > 64 {
		return 0, false
	}
	dot := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c == '.' && dot < 0 && i > 0 && i < len(s)-1:
			dot = i
		default:
			return 0, false
		}
	}
	if dot < 0 {
		return 0, true
	}
	return len(s) - dot - 1, true
}

// FormatAmount renders minor units of currency as a decimal string in major
// units with exactly the currency's number of decimal places (1234 CNY is
// "12.34", 1234 JPY is "1234"). It panics on an unknown currency: amounts in
// the ledger always carry a currency that was validated on the way in.
func FormatAmount(currency string, minor int64) string {
	exp, ok := exponents[currency]
	if !ok {
		panic("ledger: FormatAmount of unknown currency " + currency)
	}
	return decimal.New(minor, -exp).StringFixed(exp)
}

// ToDecimal returns minor units of currency as a decimal in major units, for
// arithmetic such as fees that must be done in decimal and rounded once.
func ToDecimal(currency string, minor int64) decimal.Decimal {
	return decimal.New(minor, -exponents[currency])
}

// FromDecimal converts a decimal amount in major units to minor units,
// rounding half up (away from zero) to the currency's minor unit. It is the
// one place where money is rounded.
func FromDecimal(currency string, d decimal.Decimal) (int64, error) {
	exp, err := Exponent(currency)
	if err != nil {
		return 0, err
	}
	minor := d.Shift(exp).Round(0)
	if minor.GreaterThan(decimal.NewFromInt(math.MaxInt64)) || minor.LessThan(decimal.NewFromInt(math.MinInt64)) {
		return 0, fmt.Errorf("%w: %s %s", ErrAmountTooLarge, d, currency)
	}
	return minor.IntPart(), nil
}

// PostingAmounts is a posting as it arrives from outside: the account by id
// or code, and exactly one of Debit and Credit as a decimal string in major
// units of the account's currency.
type PostingAmounts struct {
	Account string
	Debit   string
	Credit  string
}

// ParsePostings converts decimal postings to minor units, each in its
// account's currency. Errors name the field at fault ("postings[1].debit").
func (l *Ledger) ParsePostings(ctx context.Context, in []PostingAmounts) ([]Posting, error) {
	if len(in) > PostingsMax {
		return nil, fieldErr("postings", fmt.Errorf("%w: a transfer has 2–%d postings, got %d", ErrTransferInvalid, PostingsMax, len(in)))
	}
	refs := make([]string, len(in))
	for i, p := range in {
		refs[i] = p.Account
	}
	accts, err := l.lookupAccounts(ctx, refs)
	if err != nil {
		return nil, err
	}
	out := make([]Posting, len(in))
	for i, p := range in {
		out[i].Account = p.Account
		field := fmt.Sprintf("postings[%d]", i)
		if (p.Debit == "") == (p.Credit == "") {
			return nil, fieldErr(field, fmt.Errorf("%w: a posting has exactly one of debit and credit", ErrTransferInvalid))
		}
		side, s := "debit", p.Debit
		if p.Credit != "" {
			side, s = "credit", p.Credit
		}
		minor, err := ParseAmount(accts[i].currency, s)
		if err != nil {
			return nil, fieldErr(field+"."+side, err)
		}
		if minor == 0 {
			return nil, fieldErr(field+"."+side, ErrAmountNotPositive)
		}
		if side == "debit" {
			out[i].Debit = minor
		} else {
			out[i].Credit = minor
		}
	}
	return out, nil
}

// FormatTotal renders a sum of minor units too large for int64 (as in a
// trial balance) like FormatAmount.
func FormatTotal(currency string, minor decimal.Decimal) string {
	exp := exponents[currency]
	return minor.Shift(-exp).StringFixed(exp)
}
