package ledger_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/minipay/minipay/ledger"
)

// TestReplicasSpendOneWallet has two Ledger instances (two replicas) spend
// one no_overdraft wallet at once, each reading balances without locks and
// guarding its write: exactly the funded amount is spent, the rest is
// refused, and the ledger audits clean.
func TestReplicasSpendOneWallet(t *testing.T) {
	var retried atomic.Int64
	observe := func(s ledger.BatchStats) {
		if s.Attempts > 1 {
			retried.Add(1)
		}
	}
	l1, db := newLedger(t, ledger.Options{Observe: observe})
	l2 := ledger.New(db.Pool, ledger.Options{Observe: observe})
	defer l2.Close()
	ctx := ctxT(t)
	bank := mustAccount(t, l1, "bank", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l1, "wallet", "CNY", ledger.CreditNormal, true)
	shop := mustAccount(t, l1, "shop", "CNY", ledger.CreditNormal, false)
	if _, err := l1.Post(ctx, transfer("fund", "topup", 1000, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	var paid, refused atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		for r, l := range []*ledger.Ledger{l1, l2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := l.Post(ctx, transfer(fmt.Sprintf("pay%d-%d", r, i), "payment", 5, wallet.ID, shop.ID))
				switch {
				case err == nil:
					paid.Add(1)
				case errors.Is(err, ledger.ErrInsufficientFunds):
					refused.Add(1)
				default:
					t.Errorf("pay: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	if paid.Load() != 200 || refused.Load() != 200 {
		t.Fatalf("paid %d, refused %d; want 200 and 200", paid.Load(), refused.Load())
	}
	if w := mustGet(t, l1, wallet.ID); w.Balance() != 0 {
		t.Fatalf("wallet = %d, want 0", w.Balance())
	}
	mustAudit(t, l1)
	t.Logf("%d groups retried after a conflict", retried.Load())
}
