package ledger_test

import (
	"testing"

	"github.com/minipay/minipay/ledger"
)

// TestReplayAfterTheMoneyIsGone: posting a transfer again with the same id
// and content returns the first result (invariant 5), even when the
// account it drew from no longer holds enough to pay it a second time. A
// client whose first attempt committed but never heard back retries
// exactly like this; answering insufficient_funds would tell it that money
// which moved did not. (Found by the linearizability check of the chaos
// test: a transfer cut off by a replica's death was refused on retry.)
func TestReplayAfterTheMoneyIsGone(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l, "wallet", "CNY", ledger.CreditNormal, true)
	shop := mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, false)
	if _, err := l.Post(ctx, transfer("topup", "topup", 100, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	first, err := l.Post(ctx, transfer("pay1", "payment", 60, wallet.ID, shop.ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Post(ctx, transfer("pay2", "payment", 40, wallet.ID, shop.ID)); err != nil {
		t.Fatal(err)
	}
	again, err := l.Post(ctx, transfer("pay1", "payment", 60, wallet.ID, shop.ID))
	if err != nil {
		t.Fatalf("replaying pay1 with the wallet empty: %v; want the first result", err)
	}
	if !again.Replayed || again.ID != first.ID || again.Status != ledger.StatusPosted {
		t.Fatalf("replay = %+v, want pay1 as first posted, marked replayed", again)
	}
	if b := mustGet(t, l, wallet.ID).Balance(); b != 0 {
		t.Fatalf("wallet = %d, want 0", b)
	}
	mustAudit(t, l)
}
