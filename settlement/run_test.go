package settlement_test

import (
	"github.com/minipay/minipay/internal/testdb"

	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/settlement"
)

// TestMismatchPaysNothing tampers with a balance transaction, then with
// the ledger behind settlement's back: each run is marked mismatch, says
// what differs, and pays and marks nothing.
func TestMismatchPaysNothing(t *testing.T) {
	w := newWorld(t)
	dev, app := w.app("")
	other, otherApp := w.app("")
	w.pay(app, "30.00", "CNY", "goods", false)
	w.pay(otherApp, "40.00", "CNY", "goods", false)
	if _, err := w.db.Pool.Exec(w.ctx, `UPDATE balance_transactions SET amount = amount + 100, net = net + 100
		WHERE developer_id = $1`, dev); err != nil {
		t.Fatal(err)
	}
	before := w.counts()
	run := w.settleNow()
	if run.Status != settlement.RunMismatch || run.PayoutCount != 0 {
		t.Fatalf("tampered run: %+v", run)
	}
	joined := strings.Join(run.Mismatch, "\n")
	if !strings.Contains(joined, dev) || !strings.Contains(joined, "29.82 CNY") || !strings.Contains(joined, "30.82 CNY") {
		t.Fatalf("mismatch does not say what differs:\n%s", joined)
	}
	after := w.counts()
	if after[0] != before[0] || after[1] != 0 || after[3] != before[3] {
		t.Fatalf("a mismatched run changed money: %v -> %v", before, after)
	}
	if len(w.report(run.ID, false)) != 1 {
		t.Fatal("a mismatched run's report has rows")
	}

	// Undo the tampering: the next run pays both developers.
	if _, err := w.db.Pool.Exec(w.ctx, `UPDATE balance_transactions SET amount = amount - 100, net = net - 100
		WHERE developer_id = $1`, dev); err != nil {
		t.Fatal(err)
	}
	run2 := w.settleNow()
	w.checkRun(run2)
	w.wantPayouts(dev, "CNY", "29.82")
	w.wantPayouts(other, "CNY", "39.76")

	// Money moved into a pending balance outside checkout: mismatch.
	if _, err := w.ledger.Post(w.ctx, ledger.Transfer{ID: "sneaky", Code: "adjustment", Postings: []ledger.Posting{
		{Account: "platform:fees:CNY", Debit: 500}, {Account: "dev:" + other + ":pending:CNY", Credit: 500}}}); err != nil {
		t.Fatal(err)
	}
	w.pay(app, "10.00", "CNY", "goods", false)
	run3 := w.settleNow()
	if run3.Status != settlement.RunMismatch || !strings.Contains(strings.Join(run3.Mismatch, "\n"), "dev:"+other+":pending:CNY") {
		t.Fatalf("ledger tampering not caught: %+v", run3)
	}
	w.wantPayouts(dev, "CNY", "29.82")
}

// TestConcurrentSettleOneRun asks for the same cutoff from many goroutines
// and two service instances: one run, every developer paid once.
func TestConcurrentSettleOneRun(t *testing.T) {
	w := newWorld(t)
	var devs []string
	for i := 0; i < 5; i++ {
		dev, app := w.app("")
		w.pay(app, "12.00", "USD", "goods", false)
		devs = append(devs, dev)
	}
	second := settlement.New(w.db.Pool, w.ledger)
	cutoff := time.Now()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = map[string]int{}
	)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := w.settle
			if i%2 == 1 {
				svc = second
			}
			run, _, err := svc.Settle(w.ctx, cutoff, true)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids[run.ID+" "+run.Status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Fatalf("runs: %v", ids)
	}
	for _, d := range devs {
		w.wantPayouts(d, "USD", "11.93")
	}
}

// TestSettleRefusesBadCutoff: a cutoff in the future would pay money that
// has not matured.
func TestSettleRefusesBadCutoff(t *testing.T) {
	w := newWorld(t)
	for _, c := range []time.Time{{}, time.Now().Add(time.Hour)} {
		if _, _, err := w.settle.Settle(w.ctx, c, true); !errors.Is(err, settlement.ErrCutoffInvalid) {
			t.Fatalf("cutoff %v: %v", c, err)
		}
	}
	if c := w.counts(); c[4] != 0 {
		t.Fatal("a refused cutoff created a run")
	}
}

// TestResumeAfterInterruption stops a run after its plan and after some of
// its payouts (the context ends, as when serve shuts down), then resumes it
// with a fresh service: every developer is paid exactly once.
func TestResumeAfterInterruption(t *testing.T) {
	for _, point := range []string{"planned", "payout", "paid"} {
		t.Run(point, func(t *testing.T) {
			w := newWorld(t)
			var devs []string
			for i := 0; i < 6; i++ {
				dev, app := w.app("")
				w.pay(app, "5.00", "CNY", "tip", false)
				devs = append(devs, dev)
			}
			ctx, cancel := contextWithCancel(w)
			svc := settlement.New(w.db.Pool, w.ledger)
			n := 0
			svc.SetOptions(settlement.Options{PayConcurrency: 1, Failpoint: func(p string) {
				if p == point {
					if n++; point != "payout" || n == 3 {
						cancel()
					}
				}
			}})
			cutoff := time.Now()
			run, _, err := svc.Settle(ctx, cutoff, true)
			if err == nil && run.Status != settlement.RunRunning {
				t.Fatalf("run finished despite the interruption: %+v", run)
			}
			run, _, err = w.settle.Settle(w.ctx, cutoff, true)
			if err != nil || run.Status != settlement.RunCompleted || run.PayoutCount != len(devs) {
				t.Fatalf("resumed run: %v %+v", err, run)
			}
			w.checkRun(run)
			for _, d := range devs {
				w.wantPayouts(d, "CNY", "5.00")
			}
			w.audit()
		})
	}
}

// TestEarlierCutoffAfterACrashedPlan: a run is planned (its transactions
// marked with payout ids) and the process dies before paying. Then a run
// for an earlier cutoff is asked for. The planned run must be finished
// first: reconciling the earlier run while the later one's marks stand
// without their payouts would count that money as paid out and end the
// earlier run as a false mismatch, paging finance.
func TestEarlierCutoffAfterACrashedPlan(t *testing.T) {
	w := newWorld(t)
	var devs []string
	for i := 0; i < 3; i++ {
		dev, app := w.app("")
		w.pay(app, "5.00", "CNY", "tip", false)
		devs = append(devs, dev)
	}
	earlier := time.Now()
	time.Sleep(5 * time.Millisecond)
	later := time.Now()

	ctx, cancel := contextWithCancel(w)
	crashing := settlement.New(w.db.Pool, w.ledger)
	crashing.SetOptions(settlement.Options{Failpoint: func(p string) {
		if p == "planned" {
			cancel()
		}
	}})
	if run, _, err := crashing.Settle(ctx, later, true); err == nil && run.Status != settlement.RunRunning {
		t.Fatalf("the later run finished despite the crash: %+v", run)
	}

	run, _, err := w.settle.Settle(w.ctx, earlier, true)
	if err != nil || run.Status != settlement.RunCompleted {
		t.Fatalf("the earlier run: %v %+v (mismatch: %v)", err, run, run.Mismatch)
	}
	runs, _, err := w.settle.ListRuns(w.ctx, 10, "")
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs %+v %v", runs, err)
	}
	for _, r := range runs {
		if r.Status != settlement.RunCompleted {
			t.Fatalf("run %s for %s ended %s: %v", r.ID, r.Cutoff, r.Status, r.Mismatch)
		}
	}
	for _, d := range devs {
		w.wantPayouts(d, "CNY", "5.00")
	}
	w.audit()
}

// TestOnCitus runs settlement on a Citus cluster (a coordinator and two
// workers, tables distributed as `minipay migrate` does): a month of
// checkouts, refunds and disputes reconciled to the minor unit, and the
// run's exactly-once and resume guarantees.
func TestOnCitus(t *testing.T) {
	testdb.WithCitus(t)
	t.Run("SettlementMonth", TestSettlementMonth)
	t.Run("SettlementMonthWithDisputes", TestSettlementMonthWithDisputes)
	t.Run("ConcurrentSettleOneRun", TestConcurrentSettleOneRun)
	t.Run("ResumeAfterInterruption", TestResumeAfterInterruption)
	t.Run("MismatchPaysNothing", TestMismatchPaysNothing)
	t.Run("SettleWhilePaying", TestSettleWhilePaying)
}
