// Package catalog is the platform's limited catalog of monetization
// options: what a mini-app may sell through, what the platform keeps, and
// the rules that come with each (limits, refunds, holding, recurring use).
// The platform defines it from built-in defaults or a file; no developer
// can change it. Fee schedules are versioned by effective date, and every
// payment records the version it used.
package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/ledger"
)

// Errors a caller may branch on.
var (
	ErrUnknownOption      = minipay.NewError(minipay.KindInvalid, "unknown_option", "no such monetization option")
	ErrOptionNotEnabled   = minipay.NewError(minipay.KindForbidden, "option_not_enabled", "this app may not sell through this option")
	ErrCurrencyNotEnabled = minipay.NewError(minipay.KindForbidden, "currency_not_enabled", "this app may not charge in this currency")
	ErrCurrencyNotAllowed = minipay.NewError(minipay.KindInvalid, "currency_not_supported", "the option does not support this currency")
	ErrAmountBelowMinimum = minipay.NewError(minipay.KindInvalid, "amount_below_minimum", "the amount is below the option's minimum")
	ErrAmountAboveMaximum = minipay.NewError(minipay.KindInvalid, "amount_above_maximum", "the amount is above the option's maximum")
)

// Option is one version of a monetization option: what the platform
// charges for selling through it and the rules that come with it. The
// platform defines options; apps are granted some of them.
type Option struct {
	Name          string
	FeeBPS        int64           // percentage fee in basis points (60 = 0.6 %)
	FeeFixed      decimal.Decimal // fixed fee per payment, in major units of the payment's currency
	MinAmount     decimal.Decimal // per checkout, major units
	MaxAmount     decimal.Decimal
	Currencies    []string
	Refundable    bool
	RefundWindow  time.Duration // after capture
	HoldingPeriod time.Duration // before a payment can be settled
	Recurring     bool          // may back a recurring plan
	EffectiveFrom time.Time
}

// Version names this version of the option's fee schedule; payments
// record it.
func (o Option) Version() string {
	return o.Name + "@" + o.EffectiveFrom.UTC().Format("2006-01-02T15:04:05Z")
}

// SupportsCurrency reports whether the option can be used in currency.
func (o Option) SupportsCurrency(currency string) bool {
	for _, c := range o.Currencies {
		if c == currency {
			return true
		}
	}
	return false
}

// Fee computes the platform's fee on amountMinor, in decimal, rounded half
// up to the minor unit once, and never more than the amount itself.
func (o Option) Fee(currency string, amountMinor int64) (int64, error) {
	amount := ledger.ToDecimal(currency, amountMinor)
	fee := amount.Mul(decimal.NewFromInt(o.FeeBPS)).Div(decimal.NewFromInt(10000)).Add(o.FeeFixed)
	minor, err := ledger.FromDecimal(currency, fee)
	if err != nil {
		return 0, err
	}
	return min(minor, amountMinor), nil
}

// Catalog is the platform's monetization options, each with its fee
// schedule versions ordered by effective date. It never changes once
// loaded and is safe for concurrent use.
type Catalog struct {
	versions map[string][]Option // by name, oldest first
}

var defaultCurrencies = []string{"CNY", "HKD", "MOP", "TWD", "USD", "EUR", "GBP", "JPY", "KRW", "SGD", "THB", "MYR", "IDR", "KWD"}

// Default is the built-in catalog: goods (0.6 %, refundable for 365 days,
// held 1 day), virtual goods (30 %, 14 days, 7 days), tips (free, not
// refundable, 1 day) and subscriptions (15 %, 14 days, 7 days). Goods, tips
// and subscriptions may back recurring plans; virtual goods may not.
func Default() *Catalog {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := decimal.RequireFromString
	c, err := New([]Option{
		{Name: "goods", FeeBPS: 60, FeeFixed: decimal.Zero, MinAmount: d("0.01"), MaxAmount: d("100000"),
			Currencies: defaultCurrencies, Refundable: true, RefundWindow: 365 * 24 * time.Hour, HoldingPeriod: 24 * time.Hour, Recurring: true, EffectiveFrom: from},
		{Name: "virtual_goods", FeeBPS: 3000, FeeFixed: decimal.Zero, MinAmount: d("0.01"), MaxAmount: d("10000"),
			Currencies: defaultCurrencies, Refundable: true, RefundWindow: 14 * 24 * time.Hour, HoldingPeriod: 7 * 24 * time.Hour, EffectiveFrom: from},
		{Name: "tip", FeeBPS: 0, FeeFixed: decimal.Zero, MinAmount: d("0.01"), MaxAmount: d("5000"),
			Currencies: defaultCurrencies, Refundable: false, HoldingPeriod: 24 * time.Hour, Recurring: true, EffectiveFrom: from},
		{Name: "subscription", FeeBPS: 1500, FeeFixed: decimal.Zero, MinAmount: d("0.01"), MaxAmount: d("10000"),
			Currencies: defaultCurrencies, Refundable: true, RefundWindow: 14 * 24 * time.Hour, HoldingPeriod: 7 * 24 * time.Hour, Recurring: true, EffectiveFrom: from},
	})
	if err != nil {
		panic("catalog: default: " + err.Error())
	}
	return c
}

// New builds a catalog from option versions, validating each.
func New(options []Option) (*Catalog, error) {
	c := &Catalog{versions: make(map[string][]Option)}
	for i, o := range options {
		if err := o.validate(); err != nil {
			return nil, fmt.Errorf("option %d (%s): %w", i, o.Name, err)
		}
		c.versions[o.Name] = append(c.versions[o.Name], o)
	}
	if len(c.versions) == 0 {
		return nil, fmt.Errorf("the catalog has no options")
	}
	for name, vs := range c.versions {
		sort.Slice(vs, func(i, j int) bool { return vs[i].EffectiveFrom.Before(vs[j].EffectiveFrom) })
		for i := 1; i < len(vs); i++ {
			if vs[i].EffectiveFrom.Equal(vs[i-1].EffectiveFrom) {
				return nil, fmt.Errorf("option %s has two versions effective from %s", name, vs[i].EffectiveFrom)
			}
		}
	}
	return c, nil
}

func (o Option) validate() error {
	switch {
	case !validName(o.Name):
		return fmt.Errorf("name must be 1–40 lowercase letters, digits or '_'")
	case o.FeeBPS < 0 || o.FeeBPS > 10000:
		return fmt.Errorf("fee_bps must be 0–10000")
	case o.FeeFixed.IsNegative() || o.MinAmount.IsNegative() || o.MaxAmount.LessThan(o.MinAmount) || !o.MaxAmount.IsPositive():
		return fmt.Errorf("need 0 <= fee_fixed, 0 <= min_amount <= max_amount, max_amount > 0")
	case len(o.Currencies) == 0:
		return fmt.Errorf("currencies must not be empty")
	case o.RefundWindow < 0 || o.HoldingPeriod < 0:
		return fmt.Errorf("durations must not be negative")
	case o.Refundable && o.RefundWindow == 0:
		return fmt.Errorf("a refundable option needs a refund_window")
	case o.EffectiveFrom.IsZero():
		return fmt.Errorf("effective_from is required")
	}
	for _, cur := range o.Currencies {
		if _, err := ledger.Exponent(cur); err != nil {
			return err
		}
	}
	return nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// At returns the version of option name in effect at t.
func (c *Catalog) At(name string, t time.Time) (Option, bool) {
	vs := c.versions[name]
	for i := len(vs) - 1; i >= 0; i-- {
		if !vs[i].EffectiveFrom.After(t) {
			return vs[i], true
		}
	}
	return Option{}, false
}

// Has reports whether the catalog defines option name.
func (c *Catalog) Has(name string) bool { return len(c.versions[name]) > 0 }

// Names returns the option names, sorted.
func (c *Catalog) Names() []string {
	out := make([]string, 0, len(c.versions))
	for n := range c.versions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Versions returns every version of option name, oldest first.
func (c *Catalog) Versions(name string) []Option {
	return append([]Option(nil), c.versions[name]...)
}

// catalogFile is the JSON of MINIPAY_CATALOG.
type catalogFile struct {
	Options []struct {
		Name          string   `json:"name"`
		FeeBPS        *int64   `json:"fee_bps"`
		FeeFixed      string   `json:"fee_fixed"`
		MinAmount     string   `json:"min_amount"`
		MaxAmount     string   `json:"max_amount"`
		Currencies    []string `json:"currencies"`
		Refundable    bool     `json:"refundable"`
		RefundWindow  string   `json:"refund_window"`
		HoldingPeriod string   `json:"holding_period"`
		Recurring     bool     `json:"recurring"`
		EffectiveFrom string   `json:"effective_from"`
	} `json:"options"`
}

// Load reads a catalog file (MINIPAY_CATALOG, docs/operations.md): unknown
// fields, malformed amounts, durations or dates are errors, never defaults.
func Load(path string) (*Catalog, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var f catalogFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	var opts []Option
	for i, in := range f.Options {
		o, err := parseFileOption(in.Name, in.FeeBPS, in.FeeFixed, in.MinAmount, in.MaxAmount, in.RefundWindow, in.HoldingPeriod, in.EffectiveFrom)
		if err != nil {
			return nil, fmt.Errorf("catalog %s: option %d (%s): %w", path, i, in.Name, err)
		}
		o.Currencies, o.Refundable, o.Recurring = in.Currencies, in.Refundable, in.Recurring
		opts = append(opts, o)
	}
	c, err := New(opts)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return c, nil
}

func parseFileOption(name string, bps *int64, fixed, minA, maxA, window, holding, from string) (Option, error) {
	o := Option{Name: name}
	if bps == nil {
		return o, fmt.Errorf("fee_bps is required")
	}
	o.FeeBPS = *bps
	var err error
	if fixed == "" {
		fixed = "0"
	}
	for _, f := range []struct {
		s   string
		dst *decimal.Decimal
		n   string
	}{{fixed, &o.FeeFixed, "fee_fixed"}, {minA, &o.MinAmount, "min_amount"}, {maxA, &o.MaxAmount, "max_amount"}} {
		if *f.dst, err = decimal.NewFromString(f.s); err != nil {
			return o, fmt.Errorf("%s %q is not a decimal", f.n, f.s)
		}
	}
	for _, f := range []struct {
		s   string
		dst *time.Duration
		n   string
	}{{window, &o.RefundWindow, "refund_window"}, {holding, &o.HoldingPeriod, "holding_period"}} {
		if f.s == "" {
			continue
		}
		if *f.dst, err = time.ParseDuration(f.s); err != nil {
			return o, fmt.Errorf("%s %q is not a duration such as \"24h\"", f.n, f.s)
		}
	}
	if o.EffectiveFrom, err = time.Parse(time.RFC3339, from); err != nil {
		return o, fmt.Errorf("effective_from %q is not an RFC 3339 time", from)
	}
	return o, nil
}

// Sale is what an app asks to sell through an option: checked against the
// catalog and the app's grants before anything is created.
type Sale struct {
	Option      string
	Currency    string
	AmountMinor int64
	At          time.Time // which fee schedule version applies
	GrantedOpts []string  // the options the app may sell through
	GrantedCurs []string  // the currencies the app may charge in
}

// CheckGranted returns why an app granted options and currencies may not
// sell through option in currency (naming "option" or "currency"), or nil.
func CheckGranted(option, currency string, options, currencies []string) error {
	if !slices.Contains(options, option) {
		return minipay.Field("option", fmt.Errorf("%w: %s", ErrOptionNotEnabled, option))
	}
	if !slices.Contains(currencies, currency) {
		return minipay.Field("currency", fmt.Errorf("%w: %s", ErrCurrencyNotEnabled, currency))
	}
	return nil
}

// Check returns the option version a sale goes through, or why the app may
// not make it: an option the catalog lacks or the app was not granted, a
// currency the app may not use or the option does not take, an amount
// outside the option's limits. Errors name the parameter at fault
// ("option", "currency" or "amount").
func (c *Catalog) Check(s Sale) (Option, error) {
	opt, ok := c.At(s.Option, s.At)
	if !ok {
		return Option{}, minipay.Field("option", fmt.Errorf("%w: %q", ErrUnknownOption, s.Option))
	}
	if err := CheckGranted(s.Option, s.Currency, s.GrantedOpts, s.GrantedCurs); err != nil {
		return Option{}, err
	}
	if !opt.SupportsCurrency(s.Currency) {
		return Option{}, minipay.Field("currency", fmt.Errorf("%w: %s does not take %s", ErrCurrencyNotAllowed, opt.Name, s.Currency))
	}
	amount := ledger.ToDecimal(s.Currency, s.AmountMinor)
	if amount.LessThan(opt.MinAmount) {
		return Option{}, minipay.Field("amount", fmt.Errorf("%w: %s is at least %s %s", ErrAmountBelowMinimum, opt.Name, opt.MinAmount, s.Currency))
	}
	if amount.GreaterThan(opt.MaxAmount) {
		return Option{}, minipay.Field("amount", fmt.Errorf("%w: %s is at most %s %s", ErrAmountAboveMaximum, opt.Name, opt.MaxAmount, s.Currency))
	}
	return opt, nil
}

// CheckGrants refuses, for an app to be created, options the catalog does
// not have and currencies minipay does not support, naming the field at
// fault.
func (c *Catalog) CheckGrants(options, currencies []string) error {
	for i, o := range options {
		if !c.Has(o) {
			return minipay.Field(fmt.Sprintf("options[%d]", i), fmt.Errorf("%w: %q", ErrUnknownOption, o))
		}
	}
	for i, cur := range currencies {
		if _, err := ledger.Exponent(cur); err != nil {
			return minipay.Field(fmt.Sprintf("currencies[%d]", i), err)
		}
	}
	return nil
}
