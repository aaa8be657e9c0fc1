package settlement_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/catalog"
	"github.com/minipay/minipay/checkout"
	"github.com/minipay/minipay/internal/testdb"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/settlement"
)

// world is the real services over a real database: payments go through
// checkout exactly as over HTTP.
type world struct {
	t        *testing.T
	ctx      context.Context
	db       *testdb.DB
	ledger   *ledger.Ledger
	apps     *apps.Service
	checkout *checkout.Service
	payments *payments.Service
	settle   *settlement.Service
	n        int
}

// testCatalog compresses time: goods mature at once, virtual goods after
// holdVirtual; tips are not refundable.
const holdVirtual = 1500 * time.Millisecond

func testCatalog(t *testing.T) *catalog.Catalog {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := decimal.RequireFromString
	curs := []string{"CNY", "USD", "JPY", "KWD"}
	c, err := catalog.New([]catalog.Option{
		{Name: "goods", FeeBPS: 60, FeeFixed: decimal.Zero, MinAmount: d("0.001"), MaxAmount: d("100000"), Currencies: curs,
			Refundable: true, RefundWindow: time.Hour, HoldingPeriod: 0, EffectiveFrom: from},
		{Name: "virtual_goods", FeeBPS: 3000, FeeFixed: decimal.Zero, MinAmount: d("0.001"), MaxAmount: d("100000"), Currencies: curs,
			Refundable: true, RefundWindow: time.Hour, HoldingPeriod: holdVirtual, EffectiveFrom: from},
		{Name: "tip", FeeBPS: 0, FeeFixed: decimal.Zero, MinAmount: d("0.001"), MaxAmount: d("100000"), Currencies: curs,
			Refundable: false, HoldingPeriod: 0, EffectiveFrom: from},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newWorld(t *testing.T) *world {
	t.Helper()
	db := testdb.New(t)
	w := &world{t: t, ctx: context.Background(), db: db}
	w.ledger = ledger.New(db.Pool, ledger.Options{})
	t.Cleanup(w.ledger.Close)
	w.apps = apps.New(db.Pool, []byte("test secret, 32 bytes long......"))
	w.payments = payments.New(db.Pool, w.ledger)
	w.checkout = checkout.New(db.Pool, w.ledger, w.apps, w.payments, checkout.Options{Catalog: testCatalog(t)})
	w.settle = settlement.New(db.Pool, w.ledger)
	return w
}

// app creates a developer (or reuses devID) and an app selling everything.
func (w *world) app(devID string) (string, string) {
	w.t.Helper()
	if devID == "" {
		d, err := w.apps.CreateDeveloper(w.ctx, apps.DeveloperSpec{Name: "dev"})
		if err != nil {
			w.t.Fatal(err)
		}
		devID = d.ID
	}
	a, _, err := w.apps.CreateApp(w.ctx, apps.AppSpec{DeveloperID: devID, Name: "app",
		Options: []string{"goods", "virtual_goods", "tip"}, Currencies: []string{"CNY", "USD", "JPY", "KWD"}})
	if err != nil {
		w.t.Fatal(err)
	}
	return devID, a.ID
}

// pay makes a confirmed payment; manual leaves it an uncaptured hold.
func (w *world) pay(appID, amount, cur, option string, manual bool) checkout.Session {
	w.t.Helper()
	w.n++
	user := fmt.Sprintf("user%d", w.n)
	if _, err := w.checkout.TopUp(w.ctx, user, amount, cur, fmt.Sprintf("topup_%s_%d", user, w.n)); err != nil {
		w.t.Fatal(err)
	}
	p := checkout.CreateParams{AppID: appID, Amount: amount, Currency: cur, Option: option,
		ClientReferenceID: fmt.Sprintf("order-%d", w.n), Metadata: map[string]string{"order": fmt.Sprint(w.n)}}
	if manual {
		p.CaptureMethod = "manual"
	}
	s, err := w.checkout.CreateSession(w.ctx, p)
	if err != nil {
		w.t.Fatal(err)
	}
	s, err = w.checkout.Confirm(w.ctx, s.ID, user, s.ClientSecret)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

func (w *world) refund(appID, sessionID, amount string) {
	w.t.Helper()
	if _, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: appID, PaymentID: sessionID, Amount: amount}); err != nil {
		w.t.Fatal(err)
	}
}

// settleNow runs settlement at a cutoff just passed.
func (w *world) settleNow() settlement.Run {
	w.t.Helper()
	time.Sleep(5 * time.Millisecond)
	run, _, err := w.settle.Settle(w.ctx, time.Now(), true)
	if err != nil {
		w.t.Fatal(err)
	}
	return run
}

func (w *world) report(runID string, detail bool) [][]string {
	w.t.Helper()
	var b bytes.Buffer
	if err := w.settle.WriteReport(w.ctx, runID, detail, &b); err != nil {
		w.t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		w.t.Fatalf("report is not CSV: %v\n%s", err, b.String())
	}
	return recs
}

// balance is an account's posted balance, 0 if it does not exist.
func (w *world) balance(code string) int64 {
	w.t.Helper()
	a, err := w.ledger.GetAccount(w.ctx, code)
	if err != nil {
		if strings.Contains(err.Error(), "not found") || strings.Contains(err.Error(), "no such") {
			return 0
		}
		w.t.Fatal(err)
	}
	return a.Balance()
}

func (w *world) minor(cur, s string) int64 {
	w.t.Helper()
	neg := strings.HasPrefix(s, "-")
	v, err := ledger.ParseAmount(cur, strings.TrimPrefix(s, "-"))
	if err != nil {
		w.t.Fatalf("amount %q %s: %v", s, cur, err)
	}
	if neg {
		return -v
	}
	return v
}

func (w *world) audit() {
	w.t.Helper()
	a, err := w.ledger.Audit(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	if !a.OK() {
		w.t.Fatalf("ledger audit: %+v", a)
	}
}

func contextWithCancel(w *world) (context.Context, context.CancelFunc) {
	return context.WithCancel(w.ctx)
}
