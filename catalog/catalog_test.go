package catalog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestDefaultCatalog(t *testing.T) {
	c := Default()
	now := time.Now()
	for _, want := range []struct {
		name       string
		bps        int64
		refundable bool
		window     time.Duration
		holding    time.Duration
		recurring  bool
	}{
		{"goods", 60, true, 365 * 24 * time.Hour, 24 * time.Hour, true},
		{"virtual_goods", 3000, true, 14 * 24 * time.Hour, 7 * 24 * time.Hour, false},
		{"tip", 0, false, 0, 24 * time.Hour, true},
		{"subscription", 1500, true, 14 * 24 * time.Hour, 7 * 24 * time.Hour, true},
	} {
		o, ok := c.At(want.name, now)
		if !ok || o.FeeBPS != want.bps || o.Refundable != want.refundable || o.RefundWindow != want.window ||
			o.HoldingPeriod != want.holding || o.Recurring != want.recurring {
			t.Errorf("%s: %+v", want.name, o)
		}
	}
}

func TestFeeRoundsHalfUpOnce(t *testing.T) {
	goods, _ := Default().At("goods", time.Now())
	cases := []struct {
		cur    string
		amount int64
		want   int64
	}{
		{"CNY", 2500, 15}, // 25.00 × 0.6 % = 0.15
		{"CNY", 125, 1},   // 1.25 × 0.6 % = 0.0075 → 0.01
		{"CNY", 83, 0},    // 0.83 × 0.6 % = 0.00498 → 0.00
		{"CNY", 84, 1},    // 0.84 × 0.6 % = 0.00504 → 0.01
		{"JPY", 250, 2},   // ¥250 × 0.6 % = 1.5 → 2
		{"KWD", 1000, 6},  // 1.000 × 0.6 % = 0.006
		{"CNY", 1_000_000_000, 6_000_000},
	}
	for _, c := range cases {
		got, err := goods.Fee(c.cur, c.amount)
		if err != nil || got != c.want {
			t.Errorf("fee on %d %s = %d, %v; want %d", c.amount, c.cur, got, err, c.want)
		}
	}
	fixed := goods
	fixed.FeeFixed = decimal.RequireFromString("0.30")
	fixed.FeeBPS = 290
	if got, _ := fixed.Fee("CNY", 100); got != 33 { // 1.00 × 2.9 % + 0.30 = 0.329 → 0.33
		t.Errorf("fee with a fixed part = %d, want 33", got)
	}
	if got, _ := fixed.Fee("CNY", 10); got != 10 { // never more than the amount
		t.Errorf("fee on 0.10 = %d, want capped at 10", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "catalog.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `{"options": [
		{"name": "goods", "fee_bps": 60, "fee_fixed": "0", "min_amount": "0.01", "max_amount": "50000",
		 "currencies": ["CNY"], "refundable": true, "refund_window": "8760h", "holding_period": "24h",
		 "effective_from": "2026-01-01T00:00:00Z"},
		{"name": "goods", "fee_bps": 50, "fee_fixed": "0", "min_amount": "0.01", "max_amount": "50000",
		 "currencies": ["CNY"], "refundable": true, "refund_window": "8760h", "holding_period": "24h",
		 "recurring": true, "effective_from": "2027-01-01T00:00:00Z"}]}`
	c, err := Load(write(good))
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := c.At("goods", time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)); !o.Recurring {
		t.Fatalf("2027 version is recurring: %+v", o)
	}
	if o, _ := c.At("goods", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)); o.FeeBPS != 60 {
		t.Fatalf("2026 version: %+v", o)
	}
	if o, _ := c.At("goods", time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)); o.FeeBPS != 50 || o.Version() != "goods@2027-01-01T00:00:00Z" {
		t.Fatalf("2027 version: %+v", o)
	}
	if _, ok := c.At("goods", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)); ok {
		t.Fatal("a version before any took effect")
	}
	for _, bad := range []string{
		`{"options": []}`,
		`{"options": [{"name": "x", "fee_bps": 60, "min_amount": "1", "max_amount": "2", "currencies": ["CNY"], "effective_from": "2026-01-01T00:00:00Z", "colour": "red"}]}`,
		`{"options": [{"name": "x", "fee_bps": 60, "min_amount": "1", "max_amount": "2", "currencies": ["CNY"], "holding_period": "1 day", "effective_from": "2026-01-01T00:00:00Z"}]}`,
		`{"options": [{"name": "x", "fee_bps": 60, "min_amount": "1", "max_amount": "2", "currencies": ["CNY"], "effective_from": "yesterday"}]}`,
		`{"options": [{"name": "x", "fee_bps": 10001, "min_amount": "1", "max_amount": "2", "currencies": ["CNY"], "effective_from": "2026-01-01T00:00:00Z"}]}`,
		`{"options": [{"name": "x", "fee_bps": 60, "min_amount": "3", "max_amount": "2", "currencies": ["CNY"], "effective_from": "2026-01-01T00:00:00Z"}]}`,
		`{"options": [{"name": "x", "fee_bps": 60, "min_amount": "1", "max_amount": "2", "currencies": ["XXX"], "effective_from": "2026-01-01T00:00:00Z"}]}`,
		`{"options": [{"name": "x", "fee_bps": 60, "min_amount": "1", "max_amount": "2", "currencies": ["CNY"], "refundable": true, "effective_from": "2026-01-01T00:00:00Z"}]}`,
		`{"options": [{"name": "x", "min_amount": "1", "max_amount": "2", "currencies": ["CNY"], "effective_from": "2026-01-01T00:00:00Z"}]}`,
		`{"options": [{"name": "X Y", "fee_bps": 1, "min_amount": "1", "max_amount": "2", "currencies": ["CNY"], "effective_from": "2026-01-01T00:00:00Z"}]}`,
	} {
		if _, err := Load(write(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		} else if !strings.Contains(err.Error(), "catalog") {
			t.Errorf("error does not say where: %v", err)
		}
	}
}
