package settlement_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minipay/minipay/checkout"
	"github.com/minipay/minipay/settlement"
)

// TestSettleWhilePaying settles again and again while checkouts keep
// paying developers: each run reconciles every developer's pending
// balance with the unsettled balance transactions, which the payments in
// flight move together. No run may find a difference that is only money
// in flight. On Citus the pending balances are on the workers and the
// transactions on the coordinator, so this holds only because a run reads
// under the ledger's fence. At the end every developer's payouts and
// pending balance add up to what it was paid.
func TestSettleWhilePaying(t *testing.T) {
	w := newWorld(t)
	const devs, payers = 3, 6
	var apps, devIDs []string
	for range devs {
		dev, app := w.app("")
		devIDs, apps = append(devIDs, dev), append(apps, app)
	}
	var (
		stop sync.WaitGroup
		done atomic.Bool
		paid atomic.Int64
	)
	for p := range payers {
		stop.Add(1)
		go func() {
			defer stop.Done()
			user := fmt.Sprintf("payer%d", p)
			if _, err := w.checkout.TopUp(w.ctx, user, "100000.00", "CNY", "topup-"+user); err != nil {
				t.Error(err)
				return
			}
			for i := 0; !done.Load(); i++ {
				s, err := w.checkout.CreateSession(w.ctx, checkout.CreateParams{AppID: apps[(p+i)%devs], Amount: "1.00",
					Currency: "CNY", Option: "goods", ClientReferenceID: fmt.Sprintf("%s-%d", user, i)})
				if err == nil {
					_, err = w.checkout.Confirm(w.ctx, s.ID, user, s.ClientSecret)
				}
				if err != nil {
					t.Error(err)
					return
				}
				paid.Add(1)
			}
		}()
	}
	runs := 0
	var bad *settlement.Run
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline) && !t.Failed() && bad == nil; runs++ {
		if run := w.settleNow(); run.Status != settlement.RunCompleted {
			bad = &run
		}
	}
	done.Store(true)
	stop.Wait() // the payers stop before the test can end
	if bad != nil {
		t.Fatalf("run %d under load: %s %v", runs, bad.Status, bad.Mismatch)
	}
	if final := w.settleNow(); final.Status != settlement.RunCompleted {
		t.Fatalf("last run: %s %v", final.Status, final.Mismatch)
	}
	w.audit()
	var total, want int64
	for _, dev := range devIDs {
		var out int64
		err := w.db.Pool.QueryRow(w.ctx, `SELECT coalesce(sum(amount), 0) FROM payouts WHERE developer_id = $1 AND currency = 'CNY'`, dev).Scan(&out)
		if err != nil {
			t.Fatal(err)
		}
		total += w.balance("dev:"+dev+":pending:CNY") + out
	}
	err := w.db.Pool.QueryRow(w.ctx, `SELECT coalesce(sum(amount - fee), 0) FROM payments WHERE developer_id = ANY($1)`, devIDs).Scan(&want)
	if err != nil {
		t.Fatal(err)
	}
	if total != want || want == 0 {
		t.Fatalf("%d payments: developers hold %d in pending balances and payouts, were paid %d net", paid.Load(), total, want)
	}
	t.Logf("%d settlement runs completed while %d payments were made", runs, paid.Load())
}
