package settlement_test

import (
	"testing"
	"time"

	"github.com/minipay/minipay/disputes"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/settlement"
)

// TestSettlementMonthWithDisputes settles a compressed month in which
// disputes are opened, won, lost by ruling, lost to the deadline and
// accepted, before and after the payments they dispute are paid out, some
// while the payment is still held. Each run's report counts the disputes
// in their own column, and every report reconciles with the ledger to the
// minor unit (checkRun); at the end nothing is left unsettled but money
// that nets to zero.
func TestSettlementMonthWithDisputes(t *testing.T) {
	w := newWorld(t)
	ds := disputes.New(w.db.Pool, w.ledger, w.payments, disputes.Options{})
	open := func(paymentID, user, amount string) disputes.Dispute {
		t.Helper()
		d, err := ds.Open(w.ctx, disputes.OpenParams{PaymentID: paymentID, UserID: user, Amount: amount, Reason: "not_as_described"})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	rule := func(d disputes.Dispute, outcome string) {
		t.Helper()
		if _, err := ds.Close(w.ctx, d.ID, outcome); err != nil {
			t.Fatal(err)
		}
	}
	devA, appA := w.app("")
	devB, appB := w.app("")
	devC, appC := w.app("")
	devD, appD := w.app("")
	devE, appE := w.app("")

	// Period 1.
	a1 := w.pay(appA, "100.00", "CNY", "goods", false) // 99.40 net
	w.pay(appA, "50.00", "CNY", "goods", false)        // 49.70
	dA := open(a1.ID, a1.UserID, "40.00")              // open over the run
	b1 := w.pay(appB, "20.00", "CNY", "goods", false)  // 19.88
	dB := open(b1.ID, b1.UserID, "")                   // 20.00: B is 0.12 short
	c1 := w.pay(appC, "10.00", "CNY", "goods", false)  // 9.94
	rule(open(c1.ID, c1.UserID, "5.00"), disputes.StatusLost)
	d1 := w.pay(appD, "10.00", "CNY", "virtual_goods", false) // 7.00, held
	dD := open(d1.ID, d1.UserID, "")                          // matures with its payment
	e1 := w.pay(appE, "10.00", "CNY", "goods", false)         // 9.94, paid out before its dispute
	run1 := w.settleNow()
	if time.Since(d1.CompletedAt) >= holdVirtual {
		t.Fatal("the machine is too slow for this test's holding period")
	}
	w.checkRun(run1)
	w.wantPayouts(devA, "CNY", "109.10") // 99.40 + 49.70 - 40.00 withdrawn
	w.wantPayouts(devB, "CNY")           // -0.12 carried forward
	w.wantPayouts(devC, "CNY", "4.97")   // 9.94 - 5.00 + 0.03 of the fee back
	w.wantPayouts(devD, "CNY")           // still held, withdrawal too
	w.wantPayouts(devE, "CNY", "9.94")
	wantTotals(t, run1, "CNY", "carried", "-0.12")
	w.wantColumn(run1, "CNY", 45_00) // 40.00 + 5.00

	// Period 2: A wins, B loses to the deadline, D accepts once its
	// payment matured, E's settled payment is disputed whole, B sells more.
	rule(dA, disputes.StatusWon)
	if _, err := w.db.Pool.Exec(w.ctx, `UPDATE disputes SET evidence_due_by = now() - interval '1 second' WHERE id = $1`, dB.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := ds.LoseOverdue(w.ctx, 10); err != nil || n != 1 {
		t.Fatalf("deadline: %d, %v", n, err)
	}
	time.Sleep(time.Until(d1.AvailableOn) + 10*time.Millisecond)
	if _, err := ds.Respond(w.ctx, disputes.RespondParams{AppID: appD, DisputeID: dD.ID, Accept: true}); err != nil {
		t.Fatal(err)
	}
	dE := open(e1.ID, e1.UserID, "")
	w.pay(appB, "30.00", "CNY", "goods", false) // 29.82
	run2 := w.settleNow()
	w.checkRun(run2)
	w.wantPayouts(devA, "CNY", "109.10", "40.00") // reinstated
	w.wantPayouts(devB, "CNY", "29.82")           // -0.12 + 0.12 fee back + 29.82
	w.wantPayouts(devD, "CNY")                    // 7.00 - 10.00 + 3.00: nothing
	w.wantPayouts(devE, "CNY", "9.94")            // -10.00 carried forward
	wantTotals(t, run2, "CNY", "carried", "-10.00")
	w.wantColumn(run2, "CNY", -40_00+20_00) // A's reinstatement, B's withdrawal

	// Period 3: E loses; the fee comes back and E's next sale covers the rest.
	rule(dE, disputes.StatusLost)
	w.pay(appE, "20.00", "CNY", "goods", false) // 19.88
	run3 := w.settleNow()
	w.checkRun(run3)
	w.wantPayouts(devE, "CNY", "9.94", "9.94") // -10.00 + 0.06 + 19.88
	w.wantColumn(run3, "CNY", 10_00)

	// What each payer got back, and the platform's disputes account is empty.
	for _, c := range []struct {
		user string
		want int64
	}{{a1.UserID, 0}, {b1.UserID, 20_00}, {c1.UserID, 5_00}, {d1.UserID, 10_00}, {e1.UserID, 10_00}} {
		if got := w.balance("wallet:" + c.user + ":CNY"); got != c.want {
			t.Errorf("wallet of %s: %d, want %d", c.user, got, c.want)
		}
	}
	if got := w.balance("platform:disputes:CNY"); got != 0 {
		t.Fatalf("disputes account %d", got)
	}
	w.audit()
	for _, dev := range []string{devA, devB, devC, devD, devE} {
		bal, err := w.settle.Balance(w.ctx, dev)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range append(bal.Pending, bal.Available...) {
			if m.Amount != 0 {
				t.Errorf("developer %s has %d %s unsettled after the month", dev, m.Amount, m.Currency)
			}
		}
	}
}

// wantColumn checks a run's disputes total, on the run and in its report.
func (w *world) wantColumn(run settlement.Run, cur string, want int64) {
	w.t.Helper()
	for _, tt := range run.Totals {
		if tt.Currency == cur && tt.Disputes != want {
			w.t.Fatalf("run %s %s disputes %d, want %d", run.ID, cur, tt.Disputes, want)
		}
	}
	summary := w.report(run.ID, false)
	if summary[0][15] != "disputes" {
		w.t.Fatalf("summary header %v", summary[0])
	}
	last := summary[len(summary)-1]
	if last[0] != "total" || last[5] != cur || last[15] != ledger.FormatAmount(cur, want) {
		w.t.Fatalf("run %s total row %v, want disputes %s", run.ID, last, ledger.FormatAmount(cur, want))
	}
}
