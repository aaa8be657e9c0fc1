package payments_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/checkout"
	"github.com/minipay/minipay/internal/testdb"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/migrations"
	"github.com/minipay/minipay/payments"
)

// world is one database with the services that make and refund payments.
type world struct {
	t        *testing.T
	ctx      context.Context
	db       *testdb.DB
	ledger   *ledger.Ledger
	apps     *apps.Service
	payments *payments.Service
	checkout *checkout.Service
	appID    string
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
	w.appID = w.newApp()
	return w
}

func (w *world) newApp() string {
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
	return a.ID
}

// pay makes a paid session of app for amount through option and returns it.
func (w *world) pay(app, amount, option string) checkout.Session {
	w.t.Helper()
	w.n++
	user := fmt.Sprintf("usr_%d", w.n)
	if _, err := w.checkout.TopUp(w.ctx, user, amount, "CNY", fmt.Sprintf("topup_%d", w.n)); err != nil {
		w.t.Fatal(err)
	}
	s, err := w.checkout.CreateSession(w.ctx, checkout.CreateParams{AppID: app, Amount: amount, Currency: "CNY",
		Option: option, ClientReferenceID: fmt.Sprintf("order-%d", w.n), Metadata: map[string]string{"order": fmt.Sprint(w.n)}})
	if err != nil {
		w.t.Fatal(err)
	}
	if s, err = w.checkout.Confirm(w.ctx, s.ID, user, s.ClientSecret); err != nil {
		w.t.Fatal(err)
	}
	return s
}

func (w *world) balanced() {
	w.t.Helper()
	tb, err := w.ledger.TrialBalance(w.ctx)
	if err != nil || !tb.Balanced {
		w.t.Fatalf("trial balance %+v (%v)", tb, err)
	}
}

func TestCaptureRecordsThePayment(t *testing.T) {
	w := newWorld(t)
	s := w.pay(w.appID, "25.00", "virtual_goods")
	p, err := w.payments.Get(w.ctx, w.appID, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Amount != 2500 || p.Fee != 750 || p.Customer != s.Customer || p.UserID != s.UserID || p.Kind() != payments.KindCheckoutSession ||
		p.Rule.Option != "virtual_goods" || p.Rule.BPS != 3000 || p.ClientReferenceID != s.ClientReferenceID || p.Metadata["order"] == "" ||
		p.RefundUntil.Sub(p.CapturedAt) != 14*24*time.Hour || p.AvailableOn.Sub(p.CapturedAt) != 7*24*time.Hour || p.Status() != payments.StatusPaid {
		t.Fatalf("payment %+v", p)
	}
	if _, err := w.payments.Get(w.ctx, w.newApp(), s.ID); !errors.Is(err, payments.ErrNotFound) {
		t.Fatalf("another app reads the payment: %v", err)
	}
	// The session shows the payment's state, and its version grows with it.
	if _, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: s.ID, Amount: "5.00"}); err != nil {
		t.Fatal(err)
	}
	after, err := w.checkout.GetSession(w.ctx, w.appID, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.PaymentStatus != checkout.PaymentPartiallyRefunded || after.AmountRefunded != 500 || after.Version != s.Version+1 {
		t.Fatalf("session after a refund: status %s refunded %d version %d (was %d)", after.PaymentStatus, after.AmountRefunded, after.Version, s.Version)
	}
	w.balanced()
}

// TestRefundsAcrossReplicasNeverExceedTheCapture refunds one payment from
// two services (two replicas do not share their in-process locks), many
// at once: the database's guard alone keeps the total within the capture.
func TestRefundsAcrossReplicasNeverExceedTheCapture(t *testing.T) {
	w := newWorld(t)
	s := w.pay(w.appID, "10.00", "virtual_goods")
	replicas := []*payments.Service{w.payments, payments.New(w.db.Pool, w.ledger)}
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		ok, refused int
	)
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := replicas[i%2].Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: s.ID, Amount: "1.00"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, payments.ErrRefundTooLarge), errors.Is(err, payments.ErrAlreadyRefunded), errors.Is(err, payments.ErrRefundContention):
				refused++
			default:
				t.Errorf("refund: %v", err)
			}
		}()
	}
	wg.Wait()
	p, err := w.payments.Get(w.ctx, w.appID, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.AmountRefunded != int64(ok)*100 || p.AmountRefunded > p.Amount || ok+refused != 24 {
		t.Fatalf("%d refunds of 1.00 succeeded, %d refused; payment refunded %d of %d", ok, refused, p.AmountRefunded, p.Amount)
	}
	// Whatever raced, the rest refunds to the unit and the fee comes back whole.
	if p.AmountRefunded < p.Amount {
		if _, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: s.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if p, _ = w.payments.Get(w.ctx, w.appID, s.ID); p.AmountRefunded != p.Amount || p.FeeRefunded != p.Fee || p.Status() != payments.StatusRefunded {
		t.Fatalf("fully refunded payment %+v", p)
	}
	wallet, err := w.ledger.GetAccount(w.ctx, "wallet:"+s.UserID+":CNY")
	if err != nil || wallet.Balance() != 1000 {
		t.Fatalf("wallet after full refund %d (%v)", wallet.Balance(), err)
	}
	w.balanced()
}

// TestRefundLeavesTheDisputedAmount: what an open dispute holds cannot be
// refunded, and a dispute opened while a refund is computed makes the
// refund compute again rather than overdraw the payment.
func TestRefundLeavesTheDisputedAmount(t *testing.T) {
	w := newWorld(t)
	s := w.pay(w.appID, "10.00", "goods")
	// An open dispute holds 6.00 (as package disputes records one).
	if _, err := w.db.Pool.Exec(w.ctx, `UPDATE payments SET amount_disputed = 600, version = version + 1 WHERE id = $1`, s.ID); err != nil {
		t.Fatal(err)
	}
	_, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: s.ID, Amount: "5.00"})
	if !errors.Is(err, payments.ErrRefundTooLarge) {
		t.Fatalf("refund into the disputed amount: %v", err)
	}
	r, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: s.ID})
	if err != nil || r.Amount != 400 {
		t.Fatalf("refund of the rest: %+v, %v", r, err)
	}
	if _, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: s.ID}); !errors.Is(err, payments.ErrRefundTooLarge) {
		t.Fatalf("refund with everything disputed or refunded: %v", err)
	}
	// The database refuses what the code would not: refunded + disputed <= amount.
	if _, err := w.db.Pool.Exec(w.ctx, `UPDATE payments SET amount_disputed = 700 WHERE id = $1`, s.ID); err == nil {
		t.Fatal("the database let refunds and disputes exceed the capture")
	}
	w.balanced()
}

func TestRefundRefusals(t *testing.T) {
	w := newWorld(t)
	tip := w.pay(w.appID, "3.00", "tip")
	if _, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: tip.ID}); !errors.Is(err, payments.ErrNotRefundable) {
		t.Errorf("refund of a tip: %v", err)
	}
	old := w.pay(w.appID, "3.00", "goods")
	if _, err := w.db.Pool.Exec(w.ctx, `UPDATE payments SET refund_until = now() - interval '1 second' WHERE id = $1`, old.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: old.ID}); !errors.Is(err, payments.ErrRefundWindow) {
		t.Errorf("refund after the window: %v", err)
	}
	s := w.pay(w.appID, "3.00", "goods")
	for _, c := range []struct {
		p    payments.RefundParams
		want error
	}{
		{payments.RefundParams{AppID: w.newApp(), PaymentID: s.ID}, payments.ErrNotFound},
		{payments.RefundParams{AppID: w.appID, PaymentID: s.ID, Amount: "-1.00"}, ledger.ErrAmountInvalid},
		{payments.RefundParams{AppID: w.appID, PaymentID: s.ID, Amount: "0.00"}, payments.ErrInvalid},
		{payments.RefundParams{AppID: w.appID, PaymentID: s.ID, Amount: "1.001"}, ledger.ErrAmountPrecision},
		{payments.RefundParams{AppID: w.appID, PaymentID: s.ID, Amount: "3.01"}, payments.ErrRefundTooLarge},
		{payments.RefundParams{AppID: w.appID, PaymentID: ""}, payments.ErrMissing},
	} {
		if _, err := w.payments.Refund(w.ctx, c.p); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.p, err, c.want)
		}
	}
	if n, _ := w.payments.RefundsOf(w.ctx, w.appID, s.ID); len(n) != 0 {
		t.Fatalf("refused refunds left %d refunds", len(n))
	}
	w.balanced()
}

func TestListAndSum(t *testing.T) {
	w := newWorld(t)
	a := w.pay(w.appID, "1.00", "goods")
	b := w.pay(w.appID, "2.00", "goods")
	c := w.pay(w.appID, "4.00", "virtual_goods")
	w.pay(w.newApp(), "8.00", "goods") // another app's
	if _, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: b.ID}); err != nil {
		t.Fatal(err)
	}
	var seen []string
	after := ""
	for {
		page, more, err := w.payments.List(w.ctx, payments.Filter{AppID: w.appID, Limit: 2, StartingAfter: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			seen = append(seen, p.ID)
		}
		if !more {
			break
		}
		after = page[len(page)-1].ID
	}
	if fmt.Sprint(seen) != fmt.Sprint([]string{c.ID, b.ID, a.ID}) {
		t.Fatalf("pages %v, want newest first %v", seen, []string{c.ID, b.ID, a.ID})
	}
	refunded, _, err := w.payments.List(w.ctx, payments.Filter{AppID: w.appID, Status: payments.StatusRefunded, Limit: 10})
	if err != nil || len(refunded) != 1 || refunded[0].ID != b.ID {
		t.Fatalf("refunded: %v, %v", refunded, err)
	}
	future, _, err := w.payments.List(w.ctx, payments.Filter{AppID: w.appID, CapturedFrom: time.Now().Add(time.Hour), Limit: 10})
	if err != nil || len(future) != 0 {
		t.Fatalf("captured from an hour ahead: %v, %v", future, err)
	}
	sums, err := w.payments.Sum(w.ctx, payments.Filter{AppID: w.appID})
	if err != nil || len(sums) != 1 || sums[0].Count != 3 || sums[0].Amount != 700 || sums[0].AmountRefunded != 200 || sums[0].Fee != 1+1+120 {
		t.Fatalf("sums %+v, %v", sums, err)
	}
	if _, _, err := w.payments.List(w.ctx, payments.Filter{AppID: w.appID, Status: "lost", Limit: 10}); !errors.Is(err, payments.ErrInvalid) {
		t.Fatalf("unknown status: %v", err)
	}
}

// TestMigrationMovesCapturedSessions upgrades a database of the schema
// before payments existed, with a paid and partly refunded session, a
// manual hold never captured and an open session, and checks that every
// captured session became a payment and reads back as before.
func TestMigrationMovesCapturedSessions(t *testing.T) {
	ctx := context.Background()
	db := testdb.NewEmpty(t)
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	defer sqlDB.Close()
	if err := migrations.UpTo(ctx, sqlDB, 42); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO checkout_sessions (id, app_id, developer_id, status, payment_status, capture_method, currency, amount_total,
			amount_refunded, fee, fee_refunded, option, option_version, fee_bps, fee_fixed, refund_until, available_on,
			client_reference_id, client_secret, metadata, user_id, customer, expires_at, completed_at, captured_at, version)
		 VALUES ('cs_paid', 'app_1', 'dev_1', 'complete', 'partially_refunded', 'automatic', 'CNY', 2500, 500, 15, 3,
			'goods', 'goods@2026-01-01T00:00:00Z', 60, '0', now() + interval '365 days', now() + interval '1 day',
			'order-1', 's', '{"order": "1"}', 'usr_1', 'ou_1', now(), now(), now(), 3),
		        ('cs_held', 'app_1', 'dev_1', 'complete', 'unpaid', 'manual', 'CNY', 900, 0, 6, 0,
			'goods', 'goods@2026-01-01T00:00:00Z', 60, '0', NULL, NULL, NULL, 's', '{}', 'usr_2', 'ou_2', now(), now(), NULL, 2),
		        ('cs_open', 'app_1', 'dev_1', 'open', 'unpaid', 'automatic', 'CNY', 100, 0, NULL, 0,
			'goods', NULL, NULL, NULL, NULL, NULL, NULL, 's', '{}', NULL, NULL, now() + interval '1 hour', NULL, NULL, 1)`,
		`INSERT INTO refunds (id, session_id, app_id, developer_id, currency, amount, fee_refunded) VALUES ('re_1', 'cs_paid', 'app_1', 'dev_1', 'CNY', 500, 3)`,
		`INSERT INTO balance_transactions (id, developer_id, app_id, type, currency, amount, fee, net, source_id, session_id, available_on)
		 VALUES ('txn_1', 'dev_1', 'app_1', 'payment', 'CNY', 2500, 15, 2485, 'cs_paid', 'cs_paid', now())`,
	} {
		if _, err := db.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := migrations.Up(ctx, sqlDB); err != nil {
		t.Fatal(err)
	}
	db.Pool.Reset() // the schema changed under the pool's cached statements
	l := ledger.New(db.Pool, ledger.Options{})
	defer l.Close()
	svc := payments.New(db.Pool, l)
	p, err := svc.Get(ctx, "app_1", "cs_paid")
	if err != nil {
		t.Fatal(err)
	}
	if p.Amount != 2500 || p.AmountRefunded != 500 || p.Fee != 15 || p.FeeRefunded != 3 || p.Customer != "ou_1" || p.UserID != "usr_1" ||
		p.ClientReferenceID != "order-1" || p.Metadata["order"] != "1" || p.RefundUntil.IsZero() || p.Version != 0 {
		t.Fatalf("migrated payment %+v", p)
	}
	for _, id := range []string{"cs_held", "cs_open"} {
		if _, err := svc.Get(ctx, "", id); !errors.Is(err, payments.ErrNotFound) {
			t.Errorf("%s is not captured, yet: %v", id, err)
		}
	}
	if refunds, err := svc.RefundsOf(ctx, "app_1", "cs_paid"); err != nil || len(refunds) != 1 || refunds[0].Amount != 500 {
		t.Fatalf("refunds of the migrated payment: %+v, %v", refunds, err)
	}
	var txnPayment string
	if err := db.Pool.QueryRow(ctx, `SELECT payment_id FROM balance_transactions WHERE id = 'txn_1'`).Scan(&txnPayment); err != nil || txnPayment != "cs_paid" {
		t.Fatalf("balance transaction's payment %q (%v)", txnPayment, err)
	}
	a := apps.New(db.Pool, []byte("test secret, 32 bytes long......"))
	co := checkout.New(db.Pool, l, a, svc, checkout.Options{})
	defer co.Close()
	for id, want := range map[string]string{"cs_paid": "partially_refunded/5.00/3", "cs_held": "unpaid/0.00/2", "cs_open": "unpaid/0.00/1"} {
		s, err := co.GetSession(ctx, "app_1", id)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%s/%s/%d", s.PaymentStatus, s.Public().AmountRefunded, s.Version); got != want {
			t.Errorf("%s reads %s, want %s", id, got, want)
		}
	}
}

func TestFeeShareAddsUpToTheFee(t *testing.T) {
	for _, total := range []int64{1, 3, 7, 100, 999, 2500} {
		for _, fee := range []int64{0, 1, total / 3, total} {
			p := payments.Payment{Amount: total, Fee: fee}
			var returned int64
			for p.AmountRefunded < total {
				part := min(total/3+1, total-p.AmountRefunded)
				share := payments.FeeShare(p, part)
				if share < 0 || share > part {
					t.Fatalf("total %d fee %d: share %d of refund %d", total, fee, share, part)
				}
				p.AmountRefunded += part
				p.FeeRefunded += share
				returned += share
			}
			if returned != fee {
				t.Fatalf("total %d fee %d: refunds returned %d of the fee", total, fee, returned)
			}
		}
	}
}

// TestRefundOfPaymentWithFullMetadata refunds a payment whose metadata has
// every key an app may give: the refund's transfer keeps the payment's
// keys and, in the room a transfer keeps for them, minipay's own, its
// refund's id included.
func TestRefundOfPaymentWithFullMetadata(t *testing.T) {
	w := newWorld(t)
	md := map[string]string{}
	for i := 0; i < ledger.MetadataKeysMax; i++ {
		md[fmt.Sprintf("k%02d", i)] = "v"
	}
	if _, err := w.checkout.TopUp(w.ctx, "usr_full", "5.00", "CNY", "topup_full"); err != nil {
		t.Fatal(err)
	}
	s, err := w.checkout.CreateSession(w.ctx, checkout.CreateParams{AppID: w.appID, Amount: "5.00", Currency: "CNY", Option: "goods", Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.checkout.Confirm(w.ctx, s.ID, "usr_full", s.ClientSecret); err != nil {
		t.Fatal(err)
	}
	r, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: s.ID, Amount: "1.00"})
	if err != nil {
		t.Fatalf("refund of a payment with %d metadata keys: %v", len(md), err)
	}
	tr, err := w.ledger.GetTransfer(w.ctx, "refund_"+r.ID)
	if err != nil || len(tr.Metadata) != ledger.MetadataKeysMax+4 || tr.Metadata["minipay_refund"] != r.ID ||
		tr.Metadata["minipay_session"] != s.ID || tr.Metadata["k49"] != "v" {
		t.Fatalf("refund transfer metadata %v (%v)", tr.Metadata, err)
	}
	w.balanced()
}
