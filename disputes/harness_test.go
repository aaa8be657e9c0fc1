package disputes_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/checkout"
	"github.com/minipay/minipay/disputes"
	"github.com/minipay/minipay/internal/testdb"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/settlement"
)

// world is one database with the real services that make, refund and
// dispute payments, as the API wires them.
type world struct {
	t        *testing.T
	ctx      context.Context
	db       *testdb.DB
	ledger   *ledger.Ledger
	apps     *apps.Service
	payments *payments.Service
	checkout *checkout.Service
	disputes *disputes.Service
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
	w.disputes = disputes.New(w.db.Pool, w.ledger, w.payments, disputes.Options{})
	w.settle = settlement.New(w.db.Pool, w.ledger)
	w.devID, w.appID = w.newApp()
	return w
}

// replica is a second process on w's database: its own ledger poster and
// services, sharing nothing in memory with w's.
func (w *world) replica() (*payments.Service, *disputes.Service) {
	w.t.Helper()
	l := ledger.New(w.db.Pool, ledger.Options{})
	w.t.Cleanup(l.Close)
	p := payments.New(w.db.Pool, l)
	return p, disputes.New(w.db.Pool, l, p, disputes.Options{})
}

func (w *world) newApp() (devID, appID string) {
	w.t.Helper()
	d, err := w.apps.CreateDeveloper(w.ctx, apps.DeveloperSpec{Name: "dev"})
	if err != nil {
		w.t.Fatal(err)
	}
	a, _, err := w.apps.CreateApp(w.ctx, apps.AppSpec{DeveloperID: d.ID, Name: "app",
		Options: []string{"goods", "virtual_goods", "tip"}, Currencies: []string{"CNY", "JPY"}})
	if err != nil {
		w.t.Fatal(err)
	}
	return d.ID, a.ID
}

// pay makes a paid session of app for amount through option and returns
// its payment.
func (w *world) pay(app, amount, option string) payments.Payment {
	w.t.Helper()
	w.n++
	user := fmt.Sprintf("usr_%d", w.n)
	if _, err := w.checkout.TopUp(w.ctx, user, amount, "CNY", fmt.Sprintf("topup_%d", w.n)); err != nil {
		w.t.Fatal(err)
	}
	s, err := w.checkout.CreateSession(w.ctx, checkout.CreateParams{AppID: app, Amount: amount, Currency: "CNY", Option: option,
		Metadata: map[string]string{"order": fmt.Sprint(w.n)}})
	if err != nil {
		w.t.Fatal(err)
	}
	if s, err = w.checkout.Confirm(w.ctx, s.ID, user, s.ClientSecret); err != nil {
		w.t.Fatal(err)
	}
	return w.payment(s.ID)
}

func (w *world) payment(id string) payments.Payment {
	w.t.Helper()
	p, err := w.payments.Get(w.ctx, "", id)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *world) open(p payments.Payment, amount string) disputes.Dispute {
	w.t.Helper()
	d, err := w.disputes.Open(w.ctx, disputes.OpenParams{PaymentID: p.ID, UserID: p.UserID, Amount: amount, Reason: "not_received"})
	if err != nil {
		w.t.Fatalf("open a dispute of %s: %v", p.ID, err)
	}
	return d
}

// overdue moves dispute id's deadline into the past, as a week going by
// would.
func (w *world) overdue(id string) {
	w.t.Helper()
	if _, err := w.db.Pool.Exec(w.ctx, `UPDATE disputes SET evidence_due_by = now() - interval '1 second' WHERE id = $1`, id); err != nil {
		w.t.Fatal(err)
	}
}

// balance is an account's posted balance, 0 if it does not exist.
func (w *world) balance(code string) int64 {
	w.t.Helper()
	a, err := w.ledger.GetAccount(w.ctx, code)
	if errors.Is(err, ledger.ErrAccountNotFound) {
		return 0
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return a.Balance()
}

func (w *world) devPending(devID string) int64 {
	return w.balance(chart.DeveloperPending(devID, "CNY"))
}

func (w *world) count(sql string, args ...any) int {
	w.t.Helper()
	var n int
	if err := w.db.Pool.QueryRow(w.ctx, sql, args...).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// balanced checks the ledger's invariants and that every developer's
// pending balance equals its unsettled balance transactions, as settlement
// reconciles them.
func (w *world) balanced() {
	w.t.Helper()
	a, err := w.ledger.Audit(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	if !a.OK() {
		w.t.Fatalf("ledger audit: %+v", a)
	}
	rows, err := w.db.Pool.Query(w.ctx, `SELECT developer_id, sum(net)::int8 FROM balance_transactions
		WHERE payout_id IS NULL AND type <> 'payout' GROUP BY developer_id`)
	if err != nil {
		w.t.Fatal(err)
	}
	nets := map[string]int64{}
	var (
		dev string
		net int64
	)
	for rows.Next() {
		if err := rows.Scan(&dev, &net); err != nil {
			w.t.Fatal(err)
		}
		nets[dev] = net
	}
	if rows.Err() != nil {
		w.t.Fatal(rows.Err())
	}
	for dev, net := range nets {
		if got := w.devPending(dev); got != net {
			w.t.Fatalf("developer %s: pending balance %d, balance transactions %d", dev, got, net)
		}
	}
}

// ledgerState is what a refused call must leave as it was.
func (w *world) ledgerState() string {
	w.t.Helper()
	var s string
	err := w.db.Pool.QueryRow(w.ctx, `SELECT concat_ws(' ', (SELECT count(*) FROM ledger_transfers),
		(SELECT count(*) || '/' || coalesce(sum(version), 0) FROM disputes), (SELECT coalesce(sum(version), 0) FROM payments),
		(SELECT count(*) FROM events), (SELECT count(*) FROM balance_transactions))`).Scan(&s)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
