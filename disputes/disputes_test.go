package disputes_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/disputes"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/webhooks"
)

// TestOpenWithdrawsEvenIntoTheRed opens a dispute of a whole virtual-goods
// payment: the developer got 70 % of it, the dispute withdraws 100 %, so
// the developer's pending balance goes negative, and the platform's
// disputes account holds the whole amount. Everything the opening changes
// commits together: the dispute, the payment's held amount, the balance
// transaction, the event.
func TestOpenWithdrawsEvenIntoTheRed(t *testing.T) {
	w := newWorld(t)
	p := w.pay(w.appID, "25.00", "virtual_goods")
	if got := w.devPending(w.devID); got != 1750 {
		t.Fatalf("developer's pending balance after the payment %d", got)
	}
	d := w.open(p, "") // everything by default
	if d.Amount != 2500 || d.Status != disputes.StatusNeedsResponse || d.PaymentID != p.ID || d.Customer != p.Customer ||
		d.AppID != w.appID || d.Version != 1 || d.EvidenceDueBy.Sub(d.Created) != disputes.EvidenceWindow || d.Open() != true {
		t.Fatalf("dispute %+v", d)
	}
	if got := w.devPending(w.devID); got != -750 {
		t.Fatalf("developer's pending balance %d, want -7.50", got)
	}
	if got := w.balance(chart.Disputes("CNY")); got != 2500 {
		t.Fatalf("disputes account %d, want 25.00", got)
	}
	after := w.payment(p.ID)
	if after.AmountDisputed != 2500 || after.Remaining() != 0 || after.Version != p.Version+1 || after.AmountRefunded != 0 {
		t.Fatalf("payment after the dispute %+v", after)
	}
	if n := w.count(`SELECT count(*) FROM balance_transactions WHERE type = 'dispute' AND source_id = $1 AND amount = -2500 AND net = -2500 AND payment_id = $2`, d.ID, p.ID); n != 1 {
		t.Fatalf("%d withdrawal balance transactions", n)
	}
	var raw []byte
	if err := w.db.Pool.QueryRow(w.ctx, `SELECT data FROM events WHERE type = $1 AND object_id = $2`, webhooks.DisputeCreated, d.ID).Scan(&raw); err != nil {
		t.Fatalf("dispute.created: %v", err)
	}
	var ev struct{ Object map[string]any }
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Object["amount"] != "25.00" || ev.Object["status"] != "needs_response" || ev.Object["payment"] != p.ID || ev.Object["user_id"] != nil {
		t.Fatalf("event object %v", ev.Object)
	}
	// The developer's balance shows the withdrawal; nothing of the host's user id.
	bal, err := w.settle.Balance(w.ctx, w.devID)
	if err != nil || len(bal.Pending) != 1 || bal.Pending[0].Amount != -750 {
		t.Fatalf("balance %+v, %v", bal, err)
	}
	if _, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: p.ID, Amount: "1.00"}); !errors.Is(err, payments.ErrRefundTooLarge) {
		t.Fatalf("a refund of the disputed amount: %v", err)
	}
	w.balanced()
}

// TestWonGivesTheMoneyBack: the developer answers with evidence, the
// platform rules for them, and everything is as before the dispute.
func TestWonGivesTheMoneyBack(t *testing.T) {
	w := newWorld(t)
	p := w.pay(w.appID, "10.00", "goods")
	d := w.open(p, "4.00")
	d, err := w.disputes.Respond(w.ctx, disputes.RespondParams{AppID: w.appID, DisputeID: d.ID,
		Evidence: &disputes.Evidence{Text: "Delivered on 3 May, signed for.", Files: []string{"https://files.example/pod.pdf"}}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != disputes.StatusUnderReview || d.Evidence == nil || d.Evidence.Files[0] != "https://files.example/pod.pdf" ||
		d.RespondedAt.IsZero() || d.Version != 2 {
		t.Fatalf("answered dispute %+v", d)
	}
	d, err = w.disputes.Close(w.ctx, d.ID, disputes.StatusWon)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != disputes.StatusWon || d.Outcome != disputes.StatusWon || d.ClosedBy != disputes.ClosedByRuling || d.ClosedAt.IsZero() ||
		d.Version != 3 || d.Open() {
		t.Fatalf("won dispute %+v", d)
	}
	if got := w.devPending(w.devID); got != 994 {
		t.Fatalf("developer's pending balance %d, want 9.94 again", got)
	}
	if got := w.balance(chart.Disputes("CNY")); got != 0 {
		t.Fatalf("disputes account %d", got)
	}
	after := w.payment(p.ID)
	if after.AmountDisputed != 0 || after.AmountRefunded != 0 || after.Remaining() != 1000 || after.Status() != payments.StatusPaid {
		t.Fatalf("payment after a won dispute %+v", after)
	}
	if n := w.count(`SELECT count(*) FROM balance_transactions WHERE type = 'dispute_reversal' AND source_id = $1 AND net = 400`, d.ID); n != 1 {
		t.Fatalf("%d reinstatements", n)
	}
	if n := w.count(`SELECT count(*) FROM events WHERE object_id = $1`, d.ID); n != 3 {
		t.Fatalf("%d events for created, updated, closed", n)
	}
	// Ruling twice is refused and changes nothing.
	before := w.ledgerState()
	for _, outcome := range []string{disputes.StatusWon, disputes.StatusLost} {
		if _, err := w.disputes.Close(w.ctx, d.ID, outcome); !errors.Is(err, disputes.ErrClosed) {
			t.Fatalf("ruling %s twice: %v", outcome, err)
		}
	}
	if after := w.ledgerState(); after != before {
		t.Fatalf("a refused ruling changed %s to %s", before, after)
	}
	// The payment can be refunded in full again.
	if _, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: p.ID}); err != nil {
		t.Fatal(err)
	}
	w.balanced()
}

// TestLostIsARefund: after a partial refund, a dispute of the rest is
// lost by ruling. The payer gets the amount back, the platform returns its
// fee share pro rata (so the fee comes back whole, to the unit), the
// payment is refunded in full, and the developer bears what a refund
// would have cost them.
func TestLostIsARefund(t *testing.T) {
	w := newWorld(t)
	p := w.pay(w.appID, "10.00", "goods") // fee 0.06
	r, err := w.payments.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: p.ID, Amount: "3.00"})
	if err != nil || r.FeeRefunded != 2 {
		t.Fatalf("refund %+v, %v", r, err)
	}
	feesBefore := w.balance(chart.Fees("CNY"))
	d := w.open(w.payment(p.ID), "")
	if d.Amount != 700 {
		t.Fatalf("the default amount is what was not refunded: %d", d.Amount)
	}
	d, err = w.disputes.Close(w.ctx, d.ID, disputes.StatusLost)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != disputes.StatusLost || d.ClosedBy != disputes.ClosedByRuling || d.FeeRefunded != 4 {
		t.Fatalf("lost dispute %+v", d)
	}
	after := w.payment(p.ID)
	if after.AmountRefunded != 1000 || after.FeeRefunded != 6 || after.AmountDisputed != 0 || after.Status() != payments.StatusRefunded {
		t.Fatalf("payment after a lost dispute %+v", after)
	}
	if got := w.balance(chart.Wallet(p.UserID, "CNY")); got != 1000 {
		t.Fatalf("payer's wallet %d, want all 10.00 back", got)
	}
	if got := w.devPending(w.devID); got != 0 {
		t.Fatalf("developer's pending balance %d, want 0 (9.94 - 2.98 - 6.96)", got)
	}
	if got := feesBefore - w.balance(chart.Fees("CNY")); got != 4 {
		t.Fatalf("fee account returned %d, want 0.04", got)
	}
	if got := w.balance(chart.Disputes("CNY")); got != 0 {
		t.Fatalf("disputes account %d", got)
	}
	// The session the payment paid shows it refunded.
	s, err := w.checkout.GetSession(w.ctx, w.appID, p.ID)
	if err != nil || s.PaymentStatus != "refunded" || s.AmountRefunded != 1000 {
		t.Fatalf("session %+v, %v", s, err)
	}
	if n := w.count(`SELECT count(*) FROM balance_transactions WHERE type = 'dispute_fee_return' AND source_id = $1 AND amount = 0 AND fee = -4 AND net = 4`, d.ID); n != 1 {
		t.Fatalf("%d fee returns", n)
	}
	// Nothing is left to dispute.
	if _, err := w.disputes.Open(w.ctx, disputes.OpenParams{PaymentID: p.ID, UserID: p.UserID, Reason: "other"}); !errors.Is(err, disputes.ErrExceedsRemaining) {
		t.Fatalf("a dispute of a refunded payment: %v", err)
	}
	w.balanced()
}

// TestAcceptingLosesAtOnce: the developer accepts; a tip (no fee) goes
// back whole, and the evidence given with the acceptance is kept.
func TestAcceptingLosesAtOnce(t *testing.T) {
	w := newWorld(t)
	p := w.pay(w.appID, "5.00", "tip")
	d := w.open(p, "2.00")
	d, err := w.disputes.Respond(w.ctx, disputes.RespondParams{AppID: w.appID, DisputeID: d.ID, Accept: true,
		Evidence: &disputes.Evidence{Text: "Sorry, sent twice."}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != disputes.StatusLost || d.ClosedBy != disputes.ClosedByAcceptance || d.Evidence == nil || d.RespondedAt.IsZero() || d.FeeRefunded != 0 {
		t.Fatalf("accepted dispute %+v", d)
	}
	if got := w.balance(chart.Wallet(p.UserID, "CNY")); got != 200 {
		t.Fatalf("wallet %d", got)
	}
	if got := w.devPending(w.devID); got != 300 {
		t.Fatalf("developer %d, want 3.00", got)
	}
	// No fee, so nothing of the developer's moves at the ruling.
	if n := w.count(`SELECT count(*) FROM balance_transactions WHERE source_id = $1`, d.ID); n != 1 {
		t.Fatalf("%d balance transactions, want the withdrawal only", n)
	}
	if _, err := w.disputes.Respond(w.ctx, disputes.RespondParams{AppID: w.appID, DisputeID: d.ID, Accept: true}); !errors.Is(err, disputes.ErrClosed) {
		t.Fatalf("answering a closed dispute: %v", err)
	}
	// With the dispute closed, another may be opened for what is left.
	if d2 := w.open(w.payment(p.ID), ""); d2.Amount != 300 {
		t.Fatalf("second dispute %+v", d2)
	}
	w.balanced()
}

// TestDeadlineLoses: a dispute left unanswered past its deadline is lost
// by the job; answering it then is refused, before and after the job ran.
func TestDeadlineLoses(t *testing.T) {
	w := newWorld(t)
	p := w.pay(w.appID, "8.00", "virtual_goods") // fee 2.40
	d := w.open(p, "")
	other := w.open(w.pay(w.appID, "1.00", "goods"), "") // not due
	w.overdue(d.ID)
	answer := disputes.RespondParams{AppID: w.appID, DisputeID: d.ID, Evidence: &disputes.Evidence{Text: "late"}}
	if _, err := w.disputes.Respond(w.ctx, answer); !errors.Is(err, disputes.ErrDeadlinePassed) {
		t.Fatalf("answer after the deadline, before the job: %v", err)
	}
	n, err := w.disputes.LoseOverdue(w.ctx, 100)
	if err != nil || n != 1 {
		t.Fatalf("lost %d, %v", n, err)
	}
	d, err = w.disputes.Get(w.ctx, w.appID, d.ID)
	if err != nil || d.Status != disputes.StatusLost || d.ClosedBy != disputes.ClosedByDeadline || d.FeeRefunded != 240 {
		t.Fatalf("dispute after the deadline %+v, %v", d, err)
	}
	if _, err := w.disputes.Respond(w.ctx, answer); !errors.Is(err, disputes.ErrDeadlinePassed) {
		t.Fatalf("answer after the deadline, after the job: %v", err)
	}
	if o, _ := w.disputes.Get(w.ctx, "", other.ID); o.Status != disputes.StatusNeedsResponse {
		t.Fatalf("a dispute not due was closed: %+v", o)
	}
	if n, err := w.disputes.LoseOverdue(w.ctx, 100); err != nil || n != 0 {
		t.Fatalf("second pass lost %d, %v", n, err)
	}
	if got := w.balance(chart.Wallet(p.UserID, "CNY")); got != 800 {
		t.Fatalf("wallet %d", got)
	}
	w.balanced()
}

// TestRefusals attacks every rule with bad input: each refusal is the
// documented error and changes nothing.
func TestRefusals(t *testing.T) {
	w := newWorld(t)
	p := w.pay(w.appID, "10.00", "goods")
	stranger := w.pay(w.appID, "1.00", "goods")
	old := w.pay(w.appID, "1.00", "goods")
	if _, err := w.db.Pool.Exec(w.ctx, `UPDATE payments SET captured_at = now() - interval '180 days 1 minute' WHERE id = $1`, old.ID); err != nil {
		t.Fatal(err)
	}
	edge := w.pay(w.appID, "1.00", "goods")
	if _, err := w.db.Pool.Exec(w.ctx, `UPDATE payments SET captured_at = now() - interval '179 days 23 hours' WHERE id = $1`, edge.ID); err != nil {
		t.Fatal(err)
	}
	_, otherApp := w.newApp()
	d := w.open(p, "6.00")

	before := w.ledgerState()
	for _, c := range []struct {
		name  string
		p     disputes.OpenParams
		want  error
		param string
	}{
		{"someone else's payment", disputes.OpenParams{PaymentID: p.ID, UserID: stranger.UserID, Reason: "other"}, payments.ErrNotFound, "payment"},
		{"no such payment", disputes.OpenParams{PaymentID: "cs_nothing", UserID: p.UserID, Reason: "other"}, payments.ErrNotFound, "payment"},
		{"not a payment", disputes.OpenParams{PaymentID: "re_1", UserID: p.UserID, Reason: "other"}, payments.ErrNotFound, "payment"},
		{"a second open dispute", disputes.OpenParams{PaymentID: p.ID, UserID: p.UserID, Amount: "1.00", Reason: "other"}, disputes.ErrAlreadyOpen, ""},
		{"after 180 days", disputes.OpenParams{PaymentID: old.ID, UserID: old.UserID, Reason: "other"}, disputes.ErrWindowPassed, ""},
		{"more than is left", disputes.OpenParams{PaymentID: stranger.ID, UserID: stranger.UserID, Amount: "1.01", Reason: "other"}, disputes.ErrExceedsRemaining, "amount"},
		{"zero", disputes.OpenParams{PaymentID: stranger.ID, UserID: stranger.UserID, Amount: "0", Reason: "other"}, disputes.ErrInvalid, "amount"},
		{"negative", disputes.OpenParams{PaymentID: stranger.ID, UserID: stranger.UserID, Amount: "-1.00", Reason: "other"}, ledger.ErrAmountInvalid, "amount"},
		{"too precise", disputes.OpenParams{PaymentID: stranger.ID, UserID: stranger.UserID, Amount: "0.001", Reason: "other"}, ledger.ErrAmountPrecision, "amount"},
		{"no reason", disputes.OpenParams{PaymentID: stranger.ID, UserID: stranger.UserID}, disputes.ErrMissing, "reason"},
		{"unknown reason", disputes.OpenParams{PaymentID: stranger.ID, UserID: stranger.UserID, Reason: "bored"}, disputes.ErrInvalid, "reason"},
		{"no user", disputes.OpenParams{PaymentID: stranger.ID, Reason: "other"}, disputes.ErrMissing, "user_id"},
		{"no payment", disputes.OpenParams{UserID: stranger.UserID, Reason: "other"}, disputes.ErrMissing, "payment"},
		{"long description", disputes.OpenParams{PaymentID: stranger.ID, UserID: stranger.UserID, Reason: "other",
			Description: string(make([]rune, disputes.DescriptionLenMax+1))}, disputes.ErrInvalid, "description"},
	} {
		_, err := w.disputes.Open(w.ctx, c.p)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		var fe interface{ Param() string }
		if c.param != "" && (!errors.As(err, &fe) || fe.Param() != c.param) {
			t.Errorf("%s: %v does not name %s", c.name, err, c.param)
		}
	}
	// Someone else's payment and no payment read alike: nothing is revealed.
	_, e1 := w.disputes.Open(w.ctx, disputes.OpenParams{PaymentID: p.ID, UserID: stranger.UserID, Reason: "other"})
	_, e2 := w.disputes.Open(w.ctx, disputes.OpenParams{PaymentID: "cs_nothing", UserID: p.UserID, Reason: "other"})
	if fmt.Sprint(e1) != "payment: no such payment: "+p.ID || fmt.Sprint(e2) != "payment: no such payment: cs_nothing" {
		t.Errorf("errors differ beyond the id: %q, %q", e1, e2)
	}

	for _, c := range []struct {
		name string
		p    disputes.RespondParams
		want error
	}{
		{"another app answering", disputes.RespondParams{AppID: otherApp, DisputeID: d.ID, Accept: true}, disputes.ErrNotFound},
		{"no such dispute", disputes.RespondParams{AppID: w.appID, DisputeID: "dp_nothing", Accept: true}, disputes.ErrNotFound},
		{"no evidence", disputes.RespondParams{AppID: w.appID, DisputeID: d.ID}, disputes.ErrMissing},
		{"empty evidence", disputes.RespondParams{AppID: w.appID, DisputeID: d.ID, Evidence: &disputes.Evidence{}}, disputes.ErrMissing},
		{"too many files", disputes.RespondParams{AppID: w.appID, DisputeID: d.ID, Evidence: &disputes.Evidence{Text: "x",
			Files: make([]string, disputes.EvidenceFilesMax+1)}}, disputes.ErrInvalid},
		{"an empty file", disputes.RespondParams{AppID: w.appID, DisputeID: d.ID, Evidence: &disputes.Evidence{Text: "x", Files: []string{""}}}, disputes.ErrInvalid},
	} {
		if _, err := w.disputes.Respond(w.ctx, c.p); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	for _, outcome := range []string{"", "draw"} {
		if _, err := w.disputes.Close(w.ctx, d.ID, outcome); !errors.Is(err, disputes.ErrMissing) && !errors.Is(err, disputes.ErrInvalid) {
			t.Errorf("ruling %q: %v", outcome, err)
		}
	}
	if _, err := w.disputes.Close(w.ctx, "dp_nothing", disputes.StatusWon); !errors.Is(err, disputes.ErrNotFound) {
		t.Errorf("ruling no dispute: %v", err)
	}
	if after := w.ledgerState(); after != before {
		t.Fatalf("refusals changed %s to %s", before, after)
	}

	// Answered once, the dispute cannot be answered again.
	answer := disputes.RespondParams{AppID: w.appID, DisputeID: d.ID, Evidence: &disputes.Evidence{Text: "Delivered."}}
	if _, err := w.disputes.Respond(w.ctx, answer); err != nil {
		t.Fatal(err)
	}
	if _, err := w.disputes.Respond(w.ctx, answer); !errors.Is(err, disputes.ErrNotAwaitingResponse) {
		t.Errorf("answering twice: %v", err)
	}
	// Just inside the 180 days is allowed.
	w.open(edge, "")
	w.balanced()
}

// TestInvoicePayments disputes a payment that paid an invoice, captured as
// its owner (subscriptions) captures one: through payments' transfer and
// records alone. Nothing in disputes knows what a payment paid for.
func TestInvoicePayments(t *testing.T) {
	w := newWorld(t)
	user := "usr_subscriber"
	if _, err := w.checkout.TopUp(w.ctx, user, "30.00", "CNY", "topup_subscriber"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	inv := payments.Payment{ID: "in_0001", AppID: w.appID, DeveloperID: w.devID, UserID: user, Customer: "ou_subscriber",
		Currency: "CNY", Amount: 3000, Fee: 450, Rule: payments.FeeRule{Option: "subscription", OptionVersion: "subscription@1", BPS: 1500, Fixed: "0"},
		RefundUntil: now.Add(14 * 24 * time.Hour), AvailableOn: now.Add(7 * 24 * time.Hour), CapturedAt: now}
	if err := w.payments.EnsureAccounts(w.ctx, user, w.devID, "CNY"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ledger.Post(w.ctx, payments.Transfer(inv, false), w.payments.Record(w.ctx, inv)...); err != nil {
		t.Fatal(err)
	}
	d := w.open(w.payment(inv.ID), "10.00")
	d, err := w.disputes.Close(w.ctx, d.ID, disputes.StatusLost)
	if err != nil {
		t.Fatal(err)
	}
	if d.Public().Payment != "in_0001" || d.FeeRefunded != 150 {
		t.Fatalf("lost dispute of an invoice %+v", d.Public())
	}
	if p := w.payment(inv.ID); p.AmountRefunded != 1000 || p.FeeRefunded != 150 {
		t.Fatalf("invoice payment %+v", p)
	}
	if got := w.balance(chart.Wallet(user, "CNY")); got != 1000 {
		t.Fatalf("wallet %d", got)
	}
	var avail time.Time
	if err := w.db.Pool.QueryRow(w.ctx, `SELECT min(available_on) FROM balance_transactions WHERE source_id = $1`, d.ID).Scan(&avail); err != nil ||
		avail.Before(inv.AvailableOn) {
		t.Fatalf("the dispute's balance transactions mature %v, before their payment (%v, %v)", avail, inv.AvailableOn, err)
	}
	w.balanced()
}

// TestList pages and filters, as the API and the console read disputes.
func TestList(t *testing.T) {
	w := newWorld(t)
	_, otherApp := w.newApp()
	a := w.open(w.pay(w.appID, "1.00", "goods"), "")
	b := w.open(w.pay(w.appID, "2.00", "goods"), "")
	c := w.open(w.pay(otherApp, "3.00", "goods"), "")
	if _, err := w.disputes.Close(w.ctx, b.ID, disputes.StatusWon); err != nil {
		t.Fatal(err)
	}
	ids := func(f disputes.Filter) []string {
		t.Helper()
		var out []string
		for {
			page, more, err := w.disputes.List(w.ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range page {
				out = append(out, d.ID)
			}
			if !more {
				return out
			}
			f.StartingAfter = page[len(page)-1].ID
		}
	}
	if got := ids(disputes.Filter{Limit: 1}); fmt.Sprint(got) != fmt.Sprint([]string{c.ID, b.ID, a.ID}) {
		t.Errorf("all, newest first: %v", got)
	}
	if got := ids(disputes.Filter{AppID: w.appID, Limit: 1}); fmt.Sprint(got) != fmt.Sprint([]string{b.ID, a.ID}) {
		t.Errorf("one app's: %v", got)
	}
	if got := ids(disputes.Filter{AppID: w.appID, Status: disputes.StatusNeedsResponse, Limit: 10}); fmt.Sprint(got) != fmt.Sprint([]string{a.ID}) {
		t.Errorf("open ones: %v", got)
	}
	if got := ids(disputes.Filter{PaymentID: c.PaymentID, Limit: 10}); fmt.Sprint(got) != fmt.Sprint([]string{c.ID}) {
		t.Errorf("of a payment: %v", got)
	}
	// Another app's dispute is no cursor in an app's list (as an unknown
	// id is not): the page is empty, and says nothing of the other app.
	if page, more, err := w.disputes.List(w.ctx, disputes.Filter{AppID: w.appID, Limit: 10, StartingAfter: c.ID}); err != nil || len(page) != 0 || more {
		t.Errorf("with another app's cursor: %v, %v", page, err)
	}
	for _, f := range []disputes.Filter{{Limit: 0}, {Limit: 101}, {Limit: 10, Status: "open"}} {
		if _, _, err := w.disputes.List(w.ctx, f); !errors.Is(err, disputes.ErrInvalid) {
			t.Errorf("%+v: %v", f, err)
		}
	}
	if _, err := w.disputes.Get(w.ctx, otherApp, a.ID); !errors.Is(err, disputes.ErrNotFound) {
		t.Errorf("another app reads a dispute: %v", err)
	}
	if got, err := w.disputes.Get(w.ctx, "", a.ID); err != nil || got.ID != a.ID {
		t.Errorf("the platform reads any dispute: %v", err)
	}
}
