package settlement_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/settlement"
)

// TestSettlementMonth settles a compressed month: several developers and
// apps, options with different holding periods, partial refunds before and
// after a settlement, a refund larger than the next period's earnings
// (carried forward, then paid once covered), a developer below the minimum,
// uncaptured and captured holds, four currencies. Every report's totals
// must equal the ledger's movements to the minor unit.
func TestSettlementMonth(t *testing.T) {
	w := newWorld(t)
	devA, appA1 := w.app("")
	_, appA2 := w.app(devA)
	devB, appB := w.app("")
	devC, appC := w.app("")
	devD, appD := w.app("")
	devE, appE := w.app("")

	// Period 1.
	a1 := w.pay(appA1, "100.00", "CNY", "goods", false)
	w.refund(appA1, a1.ID, "10.00") // refunded before settlement
	a2 := w.pay(appA2, "250.00", "USD", "goods", false)
	w.pay(appA2, "3.00", "USD", "tip", false)
	w.pay(appB, "0.50", "CNY", "tip", false) // below the minimum
	d1 := w.pay(appD, "100.00", "CNY", "goods", false)
	w.pay(appC, "1000", "JPY", "goods", false)
	hold := w.pay(appE, "40.00", "CNY", "goods", true) // captured later
	never := w.pay(appE, "7.00", "CNY", "goods", true) // never captured
	vg := w.pay(appC, "5.000", "KWD", "virtual_goods", false)
	run1 := w.settleNow()
	if time.Since(vg.CompletedAt) >= holdVirtual {
		t.Fatal("the machine is too slow for this test's holding period")
	}
	w.checkRun(run1)
	w.wantPayouts(devA, "CNY", "89.46")  // 99.40 - (10.00 - 0.06)
	w.wantPayouts(devA, "USD", "251.50") // 248.50 + 3.00
	w.wantPayouts(devB, "CNY")           // 0.50 carried forward
	w.wantPayouts(devC, "JPY", "994")    // 1000 - 6
	w.wantPayouts(devC, "KWD")           // still held
	w.wantPayouts(devD, "CNY", "99.40")  // 100.00 - 0.60
	w.wantPayouts(devE, "CNY")           // holds never settle uncaptured
	wantTotals(t, run1, "CNY", "carried", "0.50")

	// Period 2: a refund after settlement larger than the new earnings.
	w.refund(appD, d1.ID, "80.00") // 79.52 back from the developer
	w.pay(appD, "10.00", "CNY", "goods", false)
	w.pay(appB, "0.60", "CNY", "tip", false)
	if _, err := w.checkout.Capture(w.ctx, appE, hold.ID); err != nil {
		t.Fatal(err)
	}
	w.refund(appA2, a2.ID, "50.00") // partial refund of a settled payment
	w.pay(appA1, "20.00", "CNY", "goods", false)
	time.Sleep(time.Until(vg.AvailableOn) + 10*time.Millisecond)
	run2 := w.settleNow()
	w.checkRun(run2)
	w.wantPayouts(devA, "CNY", "89.46", "19.88")
	w.wantPayouts(devA, "USD", "251.50") // -49.70: carried forward
	w.wantPayouts(devB, "CNY", "1.10")   // 0.50 carried + 0.60
	w.wantPayouts(devC, "KWD", "3.500")  // 5.000 - 30 %
	w.wantPayouts(devD, "CNY", "99.40")  // -79.52 + 9.94 carried forward
	w.wantPayouts(devE, "CNY", "39.76")  // the captured hold
	wantTotals(t, run2, "CNY", "carried", "-69.58")

	// Period 3: earnings cover what was carried forward.
	w.pay(appD, "200.00", "CNY", "goods", false)
	w.pay(appA2, "100.00", "USD", "goods", false)
	run3 := w.settleNow()
	w.checkRun(run3)
	w.wantPayouts(devD, "CNY", "99.40", "129.22") // -69.58 + 198.80
	w.wantPayouts(devA, "USD", "251.50", "49.70") // -49.70 + 99.40

	// The uncaptured hold is still only held; nothing of it was paid.
	if got := w.balance("dev:" + devE + ":pending:CNY"); got != 0 {
		t.Fatalf("developer E's pending balance %d, want 0 (the hold is not posted)", got)
	}
	_ = never

	// Running a cutoff again returns the same run and changes nothing.
	before := w.counts()
	again, created, err := w.settle.Settle(w.ctx, run2.Cutoff, true)
	if err != nil || created || again.ID != run2.ID || again.Status != settlement.RunCompleted {
		t.Fatalf("rerun: %v %v %+v", err, created, again)
	}
	if after := w.counts(); after != before {
		t.Fatalf("rerun changed the database: %v -> %v", before, after)
	}
	w.audit()
	// Every developer's pending balance is what is still unsettled.
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

// wantPayouts checks a developer's payouts in a currency, oldest first.
func (w *world) wantPayouts(dev, cur string, amounts ...string) {
	w.t.Helper()
	ps, _, err := w.settle.ListPayouts(w.ctx, settlement.PayoutFilter{DeveloperID: dev, Limit: 100})
	if err != nil {
		w.t.Fatal(err)
	}
	var got []string
	for i := len(ps) - 1; i >= 0; i-- {
		if ps[i].Currency == cur {
			got = append(got, ledger.FormatAmount(cur, ps[i].Amount))
		}
	}
	if len(got) != len(amounts) {
		w.t.Fatalf("developer %s %s payouts %v, want %v", dev, cur, got, amounts)
	}
	for i := range got {
		if got[i] != amounts[i] {
			w.t.Fatalf("developer %s %s payouts %v, want %v", dev, cur, got, amounts)
		}
	}
}

func wantTotals(t *testing.T, run settlement.Run, cur, what, want string) {
	t.Helper()
	for _, tt := range run.Totals {
		if tt.Currency == cur && what == "carried" {
			if got := ledger.FormatAmount(cur, tt.CarriedForward); got != want {
				t.Fatalf("run %s %s carried forward %s, want %s", run.ID, cur, got, want)
			}
			return
		}
	}
	t.Fatalf("run %s has no %s totals", run.ID, cur)
}

func (w *world) counts() [5]int {
	w.t.Helper()
	var c [5]int
	err := w.db.Pool.QueryRow(w.ctx, `SELECT (SELECT count(*) FROM ledger_transfers), (SELECT count(*) FROM payouts),
		(SELECT count(*) FROM events), (SELECT count(*) FROM balance_transactions WHERE payout_id IS NULL),
		(SELECT count(*) FROM settlement_runs)`).Scan(&c[0], &c[1], &c[2], &c[3], &c[4])
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// checkRun checks a completed run's reports against the ledger: each
// payout moved exactly its amount out of the developer's pending balance,
// each detail row matches the postings of the ledger transfer behind it,
// and the control totals add up, per currency, to what moved.
func (w *world) checkRun(run settlement.Run) {
	w.t.Helper()
	if run.Status != settlement.RunCompleted {
		w.t.Fatalf("run %s is %s: %v", run.ID, run.Status, run.Mismatch)
	}
	summary := w.report(run.ID, false)
	detail := w.report(run.ID, true)
	type sums struct{ gross, refunds, disputes, fees, net, dNet, dFee, dAmount, payouts int64 }
	per := map[string]*sums{}
	get := func(cur string) *sums {
		if per[cur] == nil {
			per[cur] = &sums{}
		}
		return per[cur]
	}
	payoutNet := map[string]int64{}
	for _, r := range summary[1:] {
		cur := r[5]
		if r[0] == "total" {
			s := get(cur)
			if w.minor(cur, r[9]) != s.net || w.minor(cur, r[6]) != s.gross || w.minor(cur, r[8]) != s.fees ||
				w.minor(cur, r[7]) != s.refunds || w.minor(cur, r[15]) != s.disputes || r[12] != strconv.FormatInt(s.payouts, 10) {
				w.t.Fatalf("run %s %s control totals %v do not add up (%+v)", run.ID, cur, r, *s)
			}
			continue
		}
		po, err := w.settle.GetPayout(w.ctx, "", r[13])
		if err != nil {
			w.t.Fatal(err)
		}
		net := w.minor(cur, r[9])
		if po.Amount != net || po.DeveloperID != r[3] || po.RunID != run.ID ||
			w.minor(cur, r[6])-w.minor(cur, r[7])-w.minor(cur, r[15])-w.minor(cur, r[8]) != net {
			w.t.Fatalf("report row %v, payout %+v", r, po)
		}
		tr, err := w.ledger.GetTransfer(w.ctx, "payout_"+po.ID)
		if err != nil {
			w.t.Fatal(err)
		}
		w.wantPosting(tr, "dev:"+po.DeveloperID+":pending:"+cur, net, 0)
		w.wantPosting(tr, "platform:payouts_in_transit:"+cur, 0, net)
		s := get(cur)
		s.gross += w.minor(cur, r[6])
		s.refunds += w.minor(cur, r[7])
		s.disputes += w.minor(cur, r[15])
		s.fees += w.minor(cur, r[8])
		s.net += net
		s.payouts++
		payoutNet[po.ID] = net
	}
	if len(payoutNet) != run.PayoutCount {
		w.t.Fatalf("run %s: report has %d payouts, run says %d", run.ID, len(payoutNet), run.PayoutCount)
	}
	detailNet := map[string]int64{}
	for _, r := range detail[1:] {
		cur := r[5]
		if r[0] == "total" {
			s := get(cur)
			if w.minor(cur, r[13]) != s.net || w.minor(cur, r[12]) != s.fees || w.minor(cur, r[11]) != s.gross-s.refunds-s.disputes {
				w.t.Fatalf("run %s %s detail totals %v differ from the summary %+v", run.ID, cur, r, *s)
			}
			continue
		}
		amount, fee, net := w.minor(cur, r[11]), w.minor(cur, r[12]), w.minor(cur, r[13])
		devCode, feeCode := "dev:"+r[3]+":pending:"+cur, "platform:fees:"+cur
		switch r[6] {
		case "payment":
			tr, err := w.ledger.GetTransfer(w.ctx, "pay_"+r[9])
			if err != nil {
				w.t.Fatal(err)
			}
			if tr.Status == ledger.StatusPosted && tr.Pending { // a captured hold
				if tr, err = w.ledger.GetTransfer(w.ctx, tr.ResolvedBy); err != nil {
					w.t.Fatal(err)
				}
			}
			w.wantPosting(tr, devCode, 0, net)
			w.wantPosting(tr, feeCode, 0, fee)
		case "refund":
			tr, err := w.ledger.GetTransfer(w.ctx, "refund_"+r[8])
			if err != nil {
				w.t.Fatal(err)
			}
			w.wantPosting(tr, devCode, -net, 0)
			w.wantPosting(tr, feeCode, -fee, 0)
		case "dispute": // the withdrawal: no fee
			tr, err := w.ledger.GetTransfer(w.ctx, "dispute_"+r[8])
			if err != nil {
				w.t.Fatal(err)
			}
			w.wantPosting(tr, devCode, -net, 0)
			w.wantPosting(tr, feeCode, 0, 0)
		case "dispute_reversal", "dispute_fee_return": // the ruling
			tr, err := w.ledger.GetTransfer(w.ctx, "dispute_close_"+r[8])
			if err != nil {
				w.t.Fatal(err)
			}
			w.wantPosting(tr, devCode, 0, net)
			w.wantPosting(tr, feeCode, -fee, 0)
		default:
			w.t.Fatalf("detail row of type %q", r[6])
		}
		if r[10] == "" || r[17] == "{}" {
			w.t.Fatalf("detail row without client_reference_id or metadata: %v", r)
		}
		s := get(cur)
		s.dNet, s.dFee, s.dAmount = s.dNet+net, s.dFee+fee, s.dAmount+amount
		detailNet[r[2]] += net
	}
	for po, net := range payoutNet {
		if detailNet[po] != net {
			w.t.Fatalf("payout %s of %d: its balance transactions sum to %d", po, net, detailNet[po])
		}
	}
}

// wantPosting checks the amount a transfer debits and credits an account
// (by code), 0 meaning no posting on that side.
func (w *world) wantPosting(tr ledger.Transfer, code string, debit, credit int64) {
	w.t.Helper()
	acct := ledger.AccountID(code)
	var d, c int64
	for _, p := range tr.Postings {
		if p.Account == acct {
			d, c = d+p.Debit, c+p.Credit
		}
	}
	if d != debit || c != credit {
		w.t.Fatalf("transfer %s on %s: debit %d credit %d, want %d and %d", tr.ID, code, d, c, debit, credit)
	}
}
