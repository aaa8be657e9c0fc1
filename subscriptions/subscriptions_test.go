package subscriptions_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/subscriptions"
	"github.com/minipay/minipay/webhooks"
)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 9, 30, 0, 0, time.UTC) }

// TestBoundaryKeepsTheAnchorDay: a month is a calendar month from the
// anchor day; a short month takes its last day and the anchor comes back
// after it (31 Jan → 28 Feb → 31 Mar), so periods never drift.
func TestBoundaryKeepsTheAnchorDay(t *testing.T) {
	for _, c := range []struct {
		anchor   time.Time
		interval string
		count    int
		want     []time.Time
	}{
		{date(2027, 1, 31), "month", 1, []time.Time{date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30),
			date(2027, 5, 31), date(2027, 6, 30), date(2027, 7, 31), date(2027, 8, 31), date(2027, 9, 30), date(2027, 10, 31),
			date(2027, 11, 30), date(2027, 12, 31), date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 31)}},
		{date(2027, 1, 30), "month", 1, []time.Time{date(2027, 1, 30), date(2027, 2, 28), date(2027, 3, 30)}},
		{date(2027, 8, 31), "month", 6, []time.Time{date(2027, 8, 31), date(2028, 2, 29), date(2028, 8, 31), date(2029, 2, 28)}},
		{date(2028, 2, 29), "year", 1, []time.Time{date(2028, 2, 29), date(2029, 2, 28), date(2030, 2, 28), date(2031, 2, 28), date(2032, 2, 29)}},
		{date(2027, 12, 30), "week", 2, []time.Time{date(2027, 12, 30), date(2028, 1, 13), date(2028, 1, 27)}},
		{date(2027, 2, 27), "day", 1, []time.Time{date(2027, 2, 27), date(2027, 2, 28), date(2027, 3, 1)}},
	} {
		for k, want := range c.want {
			if got := subscriptions.Boundary(c.anchor, c.interval, c.count, k); !got.Equal(want) {
				t.Errorf("%s every %d %s, period %d starts %s, want %s", c.anchor.Format("2006-01-02"), c.count, c.interval, k,
					got.Format(time.RFC3339), want.Format(time.RFC3339))
			}
		}
	}
}

// TestSignChargesTheFirstPeriod: without a trial, signing pays the first
// period at once: a paid invoice that is a payment (balance transaction,
// holding period), the subscription active, and the events, together. A
// wallet that cannot pay leaves it incomplete with nothing written.
func TestSignChargesTheFirstPeriod(t *testing.T) {
	w := newWorld(t)
	plan := w.plan("30.00", "month", 1, 0)
	sub, err := w.subs.Create(w.ctx, subscriptions.CreateParams{AppID: w.appID, PlanID: plan.ID})
	if err != nil {
		t.Fatal(err)
	}
	w.topUp("u1", "29.99")
	if _, err := w.subs.Sign(w.ctx, sub.ID, "u1", sub.ClientSecret); !errors.Is(err, subscriptions.ErrInsufficientFunds) {
		t.Fatalf("sign with 29.99: %v", err)
	}
	if got := w.get(sub.ID); got.Status != subscriptions.StatusIncomplete || got.UserID != "" || len(w.invoices(sub.ID)) != 0 ||
		len(w.events(sub.ID)) != 0 {
		t.Fatalf("after a refused signature: %+v, %d invoices", got, len(w.invoices(sub.ID)))
	}
	w.topUp("u1", "0.01")
	signed, err := w.subs.Sign(w.ctx, sub.ID, "u1", sub.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	invs := w.invoices(sub.ID)
	if signed.Status != subscriptions.StatusActive || len(invs) != 1 || invs[0].Status != subscriptions.InvoicePaid ||
		*invs[0].Fee != 450 || !invs[0].PeriodStart.Equal(signed.PeriodStart) || signed.LatestInvoice != invs[0].ID {
		t.Fatalf("signed %+v, invoices %+v", signed, invs)
	}
	if got := w.get(sub.ID); got.Version != signed.Version || got.Status != signed.Status || !got.PeriodEnd.Equal(signed.PeriodEnd) {
		t.Fatalf("read back %+v, signed %+v", got, signed)
	}
	pay, err := w.payments.Get(w.ctx, w.appID, invs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if pay.Amount != 3000 || pay.Fee != 450 || pay.Rule.Option != "subscription" || pay.Customer != signed.Customer ||
		pay.AvailableOn.Sub(pay.CapturedAt) != 7*24*time.Hour || pay.RefundUntil.Sub(pay.CapturedAt) != 14*24*time.Hour {
		t.Fatalf("payment %+v", pay)
	}
	if w.wallet("u1") != 0 {
		t.Fatalf("wallet %d", w.wallet("u1"))
	}
	if ev := w.events(sub.ID); ev[webhooks.SubscriptionActivated] != 1 || len(ev) != 1 {
		t.Fatalf("events of the subscription: %v", ev)
	}
	if ev := w.events(invs[0].ID); ev[webhooks.InvoicePaid] != 1 || len(ev) != 1 {
		t.Fatalf("events of the invoice: %v", ev)
	}
	if _, err := w.subs.Sign(w.ctx, sub.ID, "u1", sub.ClientSecret); !errors.Is(err, subscriptions.ErrAlreadySigned) {
		t.Fatalf("signed twice: %v", err)
	}
	if _, err := w.subs.Sign(w.ctx, sub.ID, "u1", "sub_x_secret_y"); !errors.Is(err, subscriptions.ErrClientSecret) {
		t.Fatalf("wrong secret: %v", err)
	}
	w.balanced()
}

// TestSignedOnceUnderConcurrency: many signatures of one subscription at
// once, by one user or several, charge it once.
func TestSignedOnceUnderConcurrency(t *testing.T) {
	w := newWorld(t)
	plan := w.plan("10.00", "month", 1, 0)
	sub, err := w.subs.Create(w.ctx, subscriptions.CreateParams{AppID: w.appID, PlanID: plan.ID})
	if err != nil {
		t.Fatal(err)
	}
	replica := w.replica()
	const n = 8
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("u%d", i%3)
		if i < 3 {
			w.topUp(user, "10.00")
		}
		svc := []*subscriptions.Service{w.subs, replica}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := svc.Sign(w.ctx, sub.ID, user, sub.ClientSecret)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, subscriptions.ErrAlreadySigned):
			default:
				t.Errorf("sign: %v", err)
			}
		}()
	}
	wg.Wait()
	var paid int
	if err := w.db.Pool.QueryRow(w.ctx, `SELECT count(*) FROM payments WHERE id LIKE 'in_%'`).Scan(&paid); err != nil {
		t.Fatal(err)
	}
	if ok != 1 || paid != 1 || len(w.invoices(sub.ID)) != 1 {
		t.Fatalf("%d signatures succeeded, %d payments", ok, paid)
	}
	total := w.wallet("u0") + w.wallet("u1") + w.wallet("u2")
	if total != 2000 {
		t.Fatalf("the users have %d left of 30.00, want 20.00", total)
	}
	w.balanced()
}

// TestTrialThenFirstCharge: a trial starts trialing with no charge; at
// trial_end the first period is charged and the schedule is anchored there.
func TestTrialThenFirstCharge(t *testing.T) {
	w := newWorld(t)
	start := date(2027, 1, 10)
	clock := w.clock(start)
	plan := w.plan("12.00", "month", 1, 7)
	w.topUp("u1", "12.00")
	sub := w.signed(plan, clock.ID, "u1")
	trialEnd := start.AddDate(0, 0, 7)
	if sub.Status != subscriptions.StatusTrialing || !sub.TrialEnd.Equal(trialEnd) || !sub.PeriodEnd.Equal(trialEnd) ||
		len(w.invoices(sub.ID)) != 0 || w.wallet("u1") != 1200 {
		t.Fatalf("trial: %+v", sub)
	}
	w.advance(clock.ID, trialEnd.Add(-time.Second))
	if ev := w.events(sub.ID); ev[webhooks.SubscriptionRenewalUpcoming] != 1 || w.get(sub.ID).Status != subscriptions.StatusTrialing {
		t.Fatalf("before the trial's end: %v", ev)
	}
	w.advance(clock.ID, trialEnd)
	got := w.get(sub.ID)
	invs := w.invoices(sub.ID)
	if got.Status != subscriptions.StatusActive || len(invs) != 1 || invs[0].Status != subscriptions.InvoicePaid ||
		!invs[0].PeriodStart.Equal(trialEnd) || !got.PeriodEnd.Equal(date(2027, 2, 17)) || w.wallet("u1") != 0 {
		t.Fatalf("after the trial: %+v %+v", got, invs)
	}
	if ev := w.events(sub.ID); ev[webhooks.SubscriptionActivated] != 1 || ev[webhooks.SubscriptionUpdated] != 1 {
		t.Fatalf("events: %v", ev)
	}
}

// TestDunningRunsOut: a renewal the wallet cannot pay makes the
// subscription past_due and is tried 1, 3, 5 and 7 days after its due
// date; after the last the invoice is void and the subscription canceled
// for payment_failed. Each step writes its event.
func TestDunningRunsOut(t *testing.T) {
	w := newWorld(t)
	start := date(2027, 3, 31)
	clock := w.clock(start)
	plan := w.plan("20.00", "month", 1, 0)
	w.topUp("u1", "20.00")
	sub := w.signed(plan, clock.ID, "u1")
	due := date(2027, 4, 30)
	w.advance(clock.ID, due)
	got := w.get(sub.ID)
	invs := w.invoices(sub.ID)
	if got.Status != subscriptions.StatusPastDue || len(invs) != 2 || invs[1].Status != subscriptions.InvoiceOpen ||
		invs[1].AttemptCount != 1 || !invs[1].NextPaymentAttempt.Equal(due.AddDate(0, 0, 1)) {
		t.Fatalf("after the failed renewal: %+v %+v", got, invs[1])
	}
	for i, days := range []int{1, 3, 5} {
		w.advance(clock.ID, due.AddDate(0, 0, days))
		inv := w.invoices(sub.ID)[1]
		next := []int{3, 5, 7}[i]
		if inv.AttemptCount != i+2 || !inv.NextPaymentAttempt.Equal(due.AddDate(0, 0, next)) || w.get(sub.ID).Status != subscriptions.StatusPastDue {
			t.Fatalf("after the retry on day %d: %+v", days, inv)
		}
	}
	w.advance(clock.ID, due.AddDate(0, 0, 7))
	got = w.get(sub.ID)
	inv := w.invoices(sub.ID)[1]
	if got.Status != subscriptions.StatusCanceled || got.CancellationReason != subscriptions.ReasonPaymentFailed ||
		inv.Status != subscriptions.InvoiceVoid || inv.AttemptCount != 5 || !inv.NextPaymentAttempt.IsZero() {
		t.Fatalf("after the last retry: %+v %+v", got, inv)
	}
	if ev := w.events(inv.ID); ev[webhooks.InvoicePaymentFailed] != 5 || ev[webhooks.InvoicePaid] != 0 {
		t.Fatalf("invoice events: %v", ev)
	}
	if ev := w.events(sub.ID); ev[webhooks.SubscriptionPastDue] != 1 || ev[webhooks.SubscriptionCanceled] != 1 {
		t.Fatalf("subscription events: %v", ev)
	}
	// Nothing more happens to it, however far the clock goes.
	w.advance(clock.ID, due.AddDate(0, 3, 0))
	if n := len(w.invoices(sub.ID)); n != 2 {
		t.Fatalf("%d invoices after the end", n)
	}
	if _, err := w.subs.Cancel(w.ctx, subscriptions.CancelParams{AppID: w.appID, SubscriptionID: sub.ID}); !errors.Is(err, subscriptions.ErrCanceled) {
		t.Fatalf("cancel of a canceled one: %v", err)
	}
}

// TestIncompleteExpires: unsigned for 23 hours, a subscription expires and
// can no longer be signed.
func TestIncompleteExpires(t *testing.T) {
	w := newWorld(t)
	start := date(2027, 5, 1)
	clock := w.clock(start)
	plan := w.plan("5.00", "week", 1, 0)
	sub, err := w.subs.Create(w.ctx, subscriptions.CreateParams{AppID: w.appID, PlanID: plan.ID, TestClockID: clock.ID})
	if err != nil {
		t.Fatal(err)
	}
	w.advance(clock.ID, start.Add(23*time.Hour-time.Second))
	if got := w.get(sub.ID); got.Status != subscriptions.StatusIncomplete {
		t.Fatalf("before 23 h: %s", got.Status)
	}
	w.advance(clock.ID, start.Add(23*time.Hour))
	if got := w.get(sub.ID); got.Status != subscriptions.StatusIncompleteExpired || w.events(sub.ID)[webhooks.SubscriptionUpdated] != 1 {
		t.Fatalf("after 23 h: %+v", got)
	}
	w.topUp("u1", "5.00")
	if _, err := w.subs.Sign(w.ctx, sub.ID, "u1", sub.ClientSecret); !errors.Is(err, subscriptions.ErrExpired) {
		t.Fatalf("sign an expired one: %v", err)
	}
	if _, err := w.subs.Cancel(w.ctx, subscriptions.CancelParams{AppID: w.appID, SubscriptionID: sub.ID}); !errors.Is(err, subscriptions.ErrCanceled) {
		t.Fatalf("cancel an expired one: %v", err)
	}
}

// TestCancel: the user cancels at period end (only the user who signed);
// the subscription runs to its end and is not charged again. The
// developer cancels now, voiding an unpaid invoice.
func TestCancel(t *testing.T) {
	w := newWorld(t)
	start := date(2027, 1, 31)
	clock := w.clock(start)
	plan := w.plan("8.00", "month", 1, 0)
	w.topUp("u1", "100.00")
	sub := w.signed(plan, clock.ID, "u1")
	if _, err := w.subs.Cancel(w.ctx, subscriptions.CancelParams{UserID: "u2", SubscriptionID: sub.ID}); !errors.Is(err, subscriptions.ErrNotSubscriber) {
		t.Fatalf("another user cancels: %v", err)
	}
	c, err := w.subs.Cancel(w.ctx, subscriptions.CancelParams{UserID: "u1", SubscriptionID: sub.ID})
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != subscriptions.StatusActive || !c.CancelAtPeriodEnd || c.CancellationReason != subscriptions.ReasonUser {
		t.Fatalf("user's cancel: %+v", c)
	}
	if again, err := w.subs.Cancel(w.ctx, subscriptions.CancelParams{UserID: "u1", SubscriptionID: sub.ID}); err != nil || again.Version != c.Version {
		t.Fatalf("user cancels again: %v %+v", err, again)
	}
	w.advance(clock.ID, date(2027, 2, 28))
	got := w.get(sub.ID)
	if got.Status != subscriptions.StatusCanceled || !got.CanceledAt.Equal(date(2027, 2, 28)) || len(w.invoices(sub.ID)) != 1 ||
		w.wallet("u1") != 9200 {
		t.Fatalf("at period end: %+v", got)
	}
	if ev := w.events(sub.ID); ev[webhooks.SubscriptionUpdated] != 1 || ev[webhooks.SubscriptionCanceled] != 1 || ev[webhooks.SubscriptionRenewalUpcoming] != 0 {
		t.Fatalf("events: %v", ev)
	}

	// The developer cancels a past_due one now: its open invoice is void.
	w.topUp("u3", "8.00")
	sub2 := w.signed(plan, clock.ID, "u3")
	w.advance(clock.ID, sub2.PeriodEnd)
	if got := w.get(sub2.ID); got.Status != subscriptions.StatusPastDue {
		t.Fatalf("not past due: %+v", got)
	}
	now, err := w.subs.Cancel(w.ctx, subscriptions.CancelParams{AppID: w.appID, SubscriptionID: sub2.ID})
	if err != nil {
		t.Fatal(err)
	}
	invs := w.invoices(sub2.ID)
	if now.Status != subscriptions.StatusCanceled || now.CancellationReason != subscriptions.ReasonDeveloper ||
		invs[1].Status != subscriptions.InvoiceVoid {
		t.Fatalf("developer's cancel: %+v %+v", now, invs[1])
	}
	w.topUp("u3", "100.00")
	w.advance(clock.ID, sub2.PeriodEnd.AddDate(0, 0, 8))
	if w.wallet("u3") != 10000 {
		t.Fatalf("charged after the cancel: %d", w.wallet("u3"))
	}
}

// TestClockRules: a test clock moves only forward, at most two years at a
// time, belongs to its app, and exists only in a sandbox.
func TestClockRules(t *testing.T) {
	w := newWorld(t)
	start := date(2027, 1, 1)
	clock := w.clock(start)
	for _, c := range []struct {
		to   time.Time
		want error
	}{
		{start.Add(-time.Second), subscriptions.ErrClockBackwards},
		{start, subscriptions.ErrClockBackwards},
		{start.Add(subscriptions.ClockAdvanceMax + time.Second), subscriptions.ErrClockTooFar},
	} {
		if _, err := w.subs.Advance(w.ctx, w.appID, clock.ID, c.to); !errors.Is(err, c.want) {
			t.Errorf("advance to %s: %v, want %v", c.to, err, c.want)
		}
	}
	w.advance(clock.ID, start.Add(subscriptions.ClockAdvanceMax))
	if _, err := w.subs.GetClock(w.ctx, "app_other", clock.ID); !errors.Is(err, subscriptions.ErrClockNotFound) {
		t.Fatalf("another app's clock: %v", err)
	}
	prod := subscriptions.New(w.db.Pool, w.ledger, w.apps, w.payments, subscriptions.Options{})
	if _, err := prod.CreateClock(w.ctx, "", nil, w.appID, start); !errors.Is(err, subscriptions.ErrSandboxOnly) {
		t.Fatalf("a clock outside a sandbox: %v", err)
	}
	if _, err := prod.Advance(w.ctx, w.appID, clock.ID, start.AddDate(3, 0, 0)); !errors.Is(err, subscriptions.ErrSandboxOnly) {
		t.Fatalf("advance outside a sandbox: %v", err)
	}
}

// TestPlanRules: a plan's option must be recurring and enabled for the
// app, its amount within the option's limits.
func TestPlanRules(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct {
		p    subscriptions.PlanParams
		want error
	}{
		{subscriptions.PlanParams{Option: "virtual_goods"}, subscriptions.ErrOptionNotRecurring},
		{subscriptions.PlanParams{Option: "tip"}, nil}, // recurring, but not enabled: catalog's error
		{subscriptions.PlanParams{Amount: "10000.01"}, nil},
		{subscriptions.PlanParams{Interval: "month", IntervalCount: 13}, subscriptions.ErrInvalid},
		{subscriptions.PlanParams{TrialPeriodDays: -1}, subscriptions.ErrInvalid},
	} {
		p := c.p
		p.AppID, p.Name, p.Currency = w.appID, "x", "CNY"
		if p.Option == "" {
			p.Option = "subscription"
		}
		if p.Amount == "" {
			p.Amount = "1.00"
		}
		if p.Interval == "" {
			p.Interval = "day"
		}
		_, err := w.subs.CreatePlan(w.ctx, p)
		if err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.p, err, c.want)
		}
	}
	var n int
	if err := w.db.Pool.QueryRow(w.ctx, `SELECT count(*) FROM subscription_plans`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d plans made by refused requests (%v)", n, err)
	}
}

// TestTwoReplicasRenewAtOnce: two processes renew the same due
// subscriptions at the same moment; each period is charged once.
func TestTwoReplicasRenewAtOnce(t *testing.T) {
	w := newWorld(t)
	plan := w.plan("3.00", "month", 1, 0)
	const n = 60
	var ids []string
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("u%d", i)
		w.topUp(user, "6.00")
		ids = append(ids, w.signed(plan, "", user).ID)
	}
	// A month and a minute from now, as both replicas see it.
	at := time.Now().AddDate(0, 1, 0).Add(time.Minute)
	replicas := []*subscriptions.Service{w.subs, w.replica(), w.replica()}
	var wg sync.WaitGroup
	for _, r := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.RenewDue(w.ctx, at); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i, id := range ids {
		invs := w.invoices(id)
		if len(invs) != 2 || invs[0].Status != subscriptions.InvoicePaid || invs[1].Status != subscriptions.InvoicePaid {
			t.Fatalf("%s: %+v", id, invs)
		}
		if ev := w.events(invs[1].ID); ev[webhooks.InvoicePaid] != 1 {
			t.Fatalf("%s renewal events: %v", id, ev)
		}
		if bal := w.wallet(fmt.Sprintf("u%d", i)); bal != 0 {
			t.Fatalf("u%d has %d left", i, bal)
		}
	}
	var transfers int
	if err := w.db.Pool.QueryRow(w.ctx, `SELECT count(*) FROM payments WHERE id LIKE 'in_%'`).Scan(&transfers); err != nil {
		t.Fatal(err)
	}
	if transfers != 2*n {
		t.Fatalf("%d payments, want %d", transfers, 2*n)
	}
	w.balanced()
}

// TestRenewalTransferIDs: the ledger transfer of a period's charge is named
// by the invoice, which is named by (subscription, period start): any
// process that charges the period posts the same transfer.
func TestRenewalTransferIDs(t *testing.T) {
	a := subscriptions.InvoiceID("sub_1", date(2027, 1, 31))
	if a != subscriptions.InvoiceID("sub_1", date(2027, 1, 31).In(time.FixedZone("x", 3600))) ||
		a == subscriptions.InvoiceID("sub_1", date(2027, 2, 28)) || a == subscriptions.InvoiceID("sub_2", date(2027, 1, 31)) {
		t.Fatal("invoice ids do not follow (subscription, period start)")
	}
	if payments.KindOf(a) != payments.KindInvoice || !id.Valid("in", a) {
		t.Fatalf("invoice id %q", a)
	}
	// Ordered by period start, whatever the subscription, as ids made
	// later sort after ids made earlier.
	if b := subscriptions.InvoiceID("sub_0", date(2027, 1, 31).Add(time.Millisecond)); b <= a ||
		subscriptions.InvoiceID("sub_9", date(2027, 1, 30)) >= a {
		t.Fatalf("invoice ids do not sort by period start: %s, %s", a, b)
	}
}

// TestPaidRetryCatchesUpShortPeriods: a daily plan past_due for days is,
// once a retry is paid, charged for the periods that fell due meanwhile,
// each on its own day of the original schedule.
func TestPaidRetryCatchesUpShortPeriods(t *testing.T) {
	w := newWorld(t)
	start := date(2027, 6, 1)
	clock := w.clock(start)
	plan := w.plan("1.00", "day", 1, 0)
	w.topUp("u1", "1.00")
	sub := w.signed(plan, clock.ID, "u1")
	w.advance(clock.ID, start.AddDate(0, 0, 2)) // the renewal of day 1 and its retry fail
	if got := w.get(sub.ID); got.Status != subscriptions.StatusPastDue || len(w.invoices(sub.ID)) != 2 {
		t.Fatalf("not past due: %+v", got)
	}
	w.topUp("u1", "10.00")
	w.advance(clock.ID, start.AddDate(0, 0, 4)) // day 1's second retry (day 4) is paid
	invs := w.invoices(sub.ID)
	if len(invs) != 5 {
		t.Fatalf("%d invoices", len(invs))
	}
	for k, inv := range invs {
		if inv.Status != subscriptions.InvoicePaid || !inv.PeriodStart.Equal(start.AddDate(0, 0, k)) {
			t.Fatalf("invoice %d: %+v", k, inv)
		}
	}
	if got := w.get(sub.ID); got.Status != subscriptions.StatusActive || !got.PeriodEnd.Equal(start.AddDate(0, 0, 5)) || w.wallet("u1") != 600 {
		t.Fatalf("after catching up: %+v, wallet %d", got, w.wallet("u1"))
	}
}

// TestRefundWindowRunsByTheClock: an invoice paid on a test clock is
// refundable for the option's window of the clock's time, not of the real
// one: a clock set a year back still refunds what it just charged, and
// refuses once the clock has passed the window.
func TestRefundWindowRunsByTheClock(t *testing.T) {
	w := newWorld(t)
	start := time.Now().UTC().AddDate(-1, 0, 0).Truncate(time.Second)
	clock := w.clock(start)
	w.topUp("u1", "90.00")
	sub := w.signed(w.plan("30.00", "month", 1, 0), clock.ID, "u1")
	first := w.invoices(sub.ID)[0]
	if _, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: first.ID, Amount: "1.00"}); err != nil {
		t.Fatalf("refund within the clock's window: %v", err)
	}
	w.advance(clock.ID, start.AddDate(0, 0, 15))
	if _, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: first.ID, Amount: "1.00"}); !errors.Is(err, payments.ErrRefundWindow) {
		t.Fatalf("refund after the clock passed the window: %v", err)
	}
	w.balanced()
}
