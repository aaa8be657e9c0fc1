package checkout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestDefaultCatalog(t *testing.T) {
	c := DefaultCatalog()
	now := time.Now()
	for _, want := range []struct {
		name       string
		bps        int64
		refundable bool
		window     time.Duration
		holding    time.Duration
	}{
		{"goods", 60, true, 365 * 24 * time.Hour, 24 * time.Hour},
		{"virtual_goods", 3000, true, 14 * 24 * time.Hour, 7 * 24 * time.Hour},
		{"tip", 0, false, 0, 24 * time.Hour},
	} {
		o, ok := c.At(want.name, now)
		if !ok || o.FeeBPS != want.bps || o.Refundable != want.refundable || o.RefundWindow != want.window || o.HoldingPeriod != want.holding {
			t.Errorf("%s: %+v", want.name, o)
		}
	}
}

func TestFeeRoundsHalfUpOnce(t *testing.T) {
	goods, _ := DefaultCatalog().At("goods", time.Now())
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

func TestFeeShareAddsUpToTheFee(t *testing.T) {
	for _, total := range []int64{1, 3, 7, 100, 999, 2500} {
		for _, fee := range []int64{0, 1, total / 3, total} {
			sess := Session{AmountTotal: total, Fee: &fee}
			var refunded int64
			for sess.AmountRefunded < total {
				part := min(total/3+1, total-sess.AmountRefunded)
				share := feeShare(sess, part)
				if share < 0 || share > part {
					t.Fatalf("total %d fee %d: share %d of refund %d", total, fee, share, part)
				}
				sess.AmountRefunded += part
				sess.FeeRefunded += share
				refunded += share
			}
			if refunded != fee {
				t.Fatalf("total %d fee %d: refunds returned %d of the fee", total, fee, refunded)
			}
		}
	}
}

func TestLoadCatalog(t *testing.T) {
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
		 "effective_from": "2027-01-01T00:00:00Z"}]}`
	c, err := LoadCatalog(write(good))
	if err != nil {
		t.Fatal(err)
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
		if _, err := LoadCatalog(write(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		} else if !strings.Contains(err.Error(), "catalog") {
			t.Errorf("error does not say where: %v", err)
		}
	}
}
