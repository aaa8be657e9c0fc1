package subscriptions_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/checkout"
	"github.com/minipay/minipay/internal/testdb"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/settlement"
	"github.com/minipay/minipay/subscriptions"
)

// world is one database with the real services, wired as serve wires them,
// in a sandbox (test clocks allowed).
type world struct {
	t        *testing.T
	ctx      context.Context
	db       *testdb.DB
	ledger   *ledger.Ledger
	apps     *apps.Service
	payments *payments.Service
	checkout *checkout.Service
	subs     *subscriptions.Service
	settle   *settlement.Service
	appID    string
	devID    string
	n        int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, ctx: context.Background(), db: testdb.New(t)}
	w.ledger = ledger.New(w.db.Pool, ledger.Options{})
	t.Cleanup(w.ledger.Close)
	w.apps = apps.New(w.db.Pool, []byte("test secret, 32 bytes long......"))
	w.payments = payments.New(w.db.Pool, w.ledger)
	w.checkout = checkout.New(w.db.Pool, w.ledger, w.apps, w.payments, checkout.Options{})
	t.Cleanup(w.checkout.Close)
	w.subs = subscriptions.New(w.db.Pool, w.ledger, w.apps, w.payments, subscriptions.Options{Sandbox: true})
	w.settle = settlement.New(w.db.Pool, w.ledger)
	d, err := w.apps.CreateDeveloper(w.ctx, apps.DeveloperSpec{Name: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := w.apps.CreateApp(w.ctx, apps.AppSpec{DeveloperID: d.ID, Name: "club",
		Options: []string{"subscription", "goods", "virtual_goods"}, Currencies: []string{"CNY", "JPY"}})
	if err != nil {
		t.Fatal(err)
	}
	w.devID, w.appID = d.ID, a.ID
	return w
}

// replica is another process on w's database: its own ledger poster and
// services, sharing nothing in memory with w's.
func (w *world) replica() *subscriptions.Service {
	w.t.Helper()
	l := ledger.New(w.db.Pool, ledger.Options{})
	w.t.Cleanup(l.Close)
	p := payments.New(w.db.Pool, l)
	a := apps.New(w.db.Pool, []byte("test secret, 32 bytes long......"))
	return subscriptions.New(w.db.Pool, l, a, p, subscriptions.Options{Sandbox: true})
}

func (w *world) plan(amount, interval string, count, trialDays int) subscriptions.Plan {
	w.t.Helper()
	p, err := w.subs.CreatePlan(w.ctx, subscriptions.PlanParams{AppID: w.appID, Name: "Membership", Amount: amount,
		Currency: "CNY", Option: "subscription", Interval: interval, IntervalCount: count, TrialPeriodDays: trialDays})
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *world) clock(at time.Time) subscriptions.Clock {
	w.t.Helper()
	c, err := w.subs.CreateClock(w.ctx, "", nil, w.appID, at)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *world) topUp(user, amount string) {
	w.t.Helper()
	w.n++
	if _, err := w.checkout.TopUp(w.ctx, user, amount, "CNY", fmt.Sprintf("topup_%s_%d", user, w.n)); err != nil {
		w.t.Fatal(err)
	}
}

// signed makes a subscription to plan (on clock, if not empty) and has
// user sign it.
func (w *world) signed(plan subscriptions.Plan, clock, user string) subscriptions.Subscription {
	w.t.Helper()
	sub, err := w.subs.Create(w.ctx, subscriptions.CreateParams{AppID: w.appID, PlanID: plan.ID, TestClockID: clock,
		Metadata: map[string]string{"member": user}})
	if err != nil {
		w.t.Fatal(err)
	}
	sub, err = w.subs.Sign(w.ctx, sub.ID, user, sub.ClientSecret)
	if err != nil {
		w.t.Fatal(err)
	}
	return sub
}

func (w *world) get(id string) subscriptions.Subscription {
	w.t.Helper()
	sub, err := w.subs.Get(w.ctx, w.appID, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return sub
}

func (w *world) advance(clock string, to time.Time) {
	w.t.Helper()
	c, err := w.subs.Advance(w.ctx, w.appID, clock, to)
	if err != nil {
		w.t.Fatalf("advance to %s: %v", to, err)
	}
	if c.Status != subscriptions.ClockReady || !c.FrozenTime.Equal(to.UTC()) {
		w.t.Fatalf("advanced clock: %+v", c)
	}
}

func (w *world) invoices(subID string) []subscriptions.Invoice {
	w.t.Helper()
	invs, _, err := w.subs.ListInvoices(w.ctx, subscriptions.InvoiceFilter{AppID: w.appID, SubscriptionID: subID, Limit: 100})
	if err != nil {
		w.t.Fatal(err)
	}
	// oldest first
	for i, j := 0, len(invs)-1; i < j; i, j = i+1, j-1 {
		invs[i], invs[j] = invs[j], invs[i]
	}
	return invs
}

// events counts the events of each type about object id.
func (w *world) events(id string) map[string]int {
	w.t.Helper()
	rows, err := w.db.Pool.Query(w.ctx, `SELECT type, count(*) FROM events WHERE object_id = $1 GROUP BY type`, id)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			w.t.Fatal(err)
		}
		out[typ] = n
	}
	return out
}

func (w *world) wallet(user string) int64 {
	w.t.Helper()
	wal, err := w.checkout.GetWallet(w.ctx, user)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, b := range wal.Balances {
		if b.Currency == "CNY" {
			return b.Available
		}
	}
	return 0
}

// balanced fails the test unless the ledger's trial balance is zero.
func (w *world) balanced() {
	w.t.Helper()
	tb, err := w.ledger.TrialBalance(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	if !tb.Balanced {
		w.t.Fatalf("the ledger is out of balance: %+v", tb)
	}
}
