package subscriptions_test

import (
	"testing"
	"time"

	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/settlement"
	"github.com/minipay/minipay/subscriptions"
	"github.com/minipay/minipay/webhooks"
)

// TestYearOfMonthlyRenewals compresses a year of a monthly plan into a test
// clock: twelve charges on the anchor day, the fourth failed for want of
// funds and paid by its first retry a day later without moving the
// schedule, a partial refund of the last, and a settlement run that pays
// the developer exactly what the invoices, fees and refund add up to, to
// the minor unit, and reconciles with the ledger.
//
// The clock runs in the past (the last charge ten days ago), so that the
// payments have matured for a settlement run now and the last is still
// within its refund window.
func TestYearOfMonthlyRenewals(t *testing.T) {
	w := newWorld(t)
	now := time.Now().UTC().Truncate(time.Second)
	start := subscriptions.Boundary(now.AddDate(0, 0, -10), subscriptions.IntervalMonth, 1, -11)
	clock := w.clock(start)
	plan := w.plan("30.00", "month", 1, 0)
	w.topUp("u1", "90.00") // the first three periods
	sub := w.signed(plan, clock.ID, "u1")
	due := func(k int) time.Time { return subscriptions.Boundary(start, subscriptions.IntervalMonth, 1, k) }

	w.advance(clock.ID, due(3))
	if got := w.get(sub.ID); got.Status != subscriptions.StatusPastDue {
		t.Fatalf("the fourth charge did not fail: %+v", got)
	}
	w.topUp("u1", "270.00") // the rest of the year
	w.advance(clock.ID, due(3).AddDate(0, 0, 1))
	got := w.get(sub.ID)
	if got.Status != subscriptions.StatusActive || !got.PeriodStart.Equal(due(3)) || !got.PeriodEnd.Equal(due(4)) {
		t.Fatalf("after the paid retry: %+v", got)
	}
	w.advance(clock.ID, due(11).Add(time.Hour))

	invs := w.invoices(sub.ID)
	if len(invs) != 12 {
		t.Fatalf("%d invoices in a year", len(invs))
	}
	for k, inv := range invs {
		if inv.Status != subscriptions.InvoicePaid || !inv.PeriodStart.Equal(due(k)) || !inv.PeriodEnd.Equal(due(k+1)) || *inv.Fee != 450 {
			t.Fatalf("invoice %d: %+v", k, inv)
		}
		wantAttempts, wantPaid := 1, due(k)
		if k == 3 {
			wantAttempts, wantPaid = 2, due(3).AddDate(0, 0, 1)
		}
		if inv.AttemptCount != wantAttempts || !inv.PaidAt.Equal(wantPaid) {
			t.Fatalf("invoice %d: %d attempts, paid at %s", k, inv.AttemptCount, inv.PaidAt)
		}
	}
	if w.wallet("u1") != 0 {
		t.Fatalf("wallet %d after a year", w.wallet("u1"))
	}
	ev := w.events(sub.ID)
	if ev[webhooks.SubscriptionActivated] != 1 || ev[webhooks.SubscriptionRenewalUpcoming] != 11 || ev[webhooks.SubscriptionPastDue] != 1 ||
		ev[webhooks.SubscriptionUpdated] != 1 || ev[webhooks.SubscriptionCanceled] != 0 {
		t.Fatalf("subscription events: %v", ev)
	}
	if ev := w.events(invs[3].ID); ev[webhooks.InvoicePaymentFailed] != 1 || ev[webhooks.InvoicePaid] != 1 {
		t.Fatalf("the fourth invoice's events: %v", ev)
	}

	last := invs[11]
	ref, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: last.ID, Amount: "10.00"})
	if err != nil {
		t.Fatal(err)
	}
	if ref.Amount != 1000 || ref.FeeRefunded != 150 {
		t.Fatalf("refund %+v", ref)
	}
	if inv, err := w.subs.GetInvoice(w.ctx, w.appID, last.ID); err != nil || inv.AmountRefunded != 1000 || inv.Public().Version <= last.Public().Version {
		t.Fatalf("refunded invoice: %+v %v", inv, err)
	}

	run, _, err := w.settle.Settle(w.ctx, time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	const want = 12*(3000-450) - (1000 - 150)
	payouts, _, err := w.settle.ListPayouts(w.ctx, settlement.PayoutFilter{DeveloperID: w.devID, RunID: run.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != "completed" || len(payouts) != 1 || payouts[0].Amount != want || len(run.Totals) != 1 ||
		run.Totals[0].Net != want || run.Totals[0].Gross != 12*3000 || run.Totals[0].PaymentCount != 12 || run.Totals[0].RefundCount != 1 {
		t.Fatalf("settlement run %+v, payouts %+v, want a payout of %d", run, payouts, want)
	}
	bal, err := w.settle.Balance(w.ctx, w.devID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range append(bal.Pending, bal.Available...) {
		if m.Amount != 0 {
			t.Fatalf("the developer still has %+v after the run", bal)
		}
	}
	w.balanced()
}
