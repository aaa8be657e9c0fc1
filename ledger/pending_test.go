package ledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/minipay/minipay/ledger"
)

func TestPendingPostAndVoid(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l, "wallet", "CNY", ledger.CreditNormal, true)
	shop := mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, false)
	if _, err := l.Post(ctx, transfer("fund", "topup", 1000, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	hold := transfer("hold1", "payment", 600, wallet.ID, shop.ID)
	hold.Pending = true
	got, err := l.Post(ctx, hold)
	if err != nil || got.Status != ledger.StatusPending {
		t.Fatalf("hold: %+v, %v", got, err)
	}
	w := mustGet(t, l, wallet.ID)
	if w.Balance() != 1000 || w.Available() != 400 || w.DebitsPending != 600 {
		t.Fatalf("wallet during hold: balance %d available %d", w.Balance(), w.Available())
	}
	// The hold counts against no_overdraft: 500 more does not fit.
	second := transfer("hold2", "payment", 500, wallet.ID, shop.ID)
	if _, err := l.Post(ctx, second); !errors.Is(err, ledger.ErrInsufficientFunds) {
		t.Fatalf("spend past hold: %v", err)
	}
	posted, err := l.PostPending(ctx, "hold1")
	if err != nil || posted.Status != ledger.StatusPosted || posted.ResolvedBy != ledger.ResolutionID("hold1", true) {
		t.Fatalf("post: %+v, %v", posted, err)
	}
	if again, err := l.PostPending(ctx, "hold1"); err != nil || again.Status != ledger.StatusPosted {
		t.Fatalf("posting twice is a no-op: %+v, %v", again, err)
	}
	if _, err := l.VoidPending(ctx, "hold1"); !errors.Is(err, ledger.ErrAlreadyPosted) {
		t.Fatalf("void after post: %v", err)
	}
	w, s := mustGet(t, l, wallet.ID), mustGet(t, l, shop.ID)
	if w.Balance() != 400 || w.Available() != 400 || w.DebitsPending != 0 || s.Balance() != 600 || s.CreditsPending != 0 {
		t.Fatalf("after post: wallet %+v shop %+v", w, s)
	}

	hold3 := transfer("hold3", "payment", 300, wallet.ID, shop.ID)
	hold3.Pending = true
	if _, err := l.Post(ctx, hold3); err != nil {
		t.Fatal(err)
	}
	voided, err := l.VoidPending(ctx, "hold3")
	if err != nil || voided.Status != ledger.StatusVoided {
		t.Fatalf("void: %+v, %v", voided, err)
	}
	if _, err := l.PostPending(ctx, "hold3"); !errors.Is(err, ledger.ErrAlreadyVoided) {
		t.Fatalf("post after void: %v", err)
	}
	if _, err := l.PostPending(ctx, "fund"); !errors.Is(err, ledger.ErrNotPending) {
		t.Fatalf("post of a posted transfer: %v", err)
	}
	if _, err := l.VoidPending(ctx, "nope"); !errors.Is(err, ledger.ErrTransferNotFound) {
		t.Fatalf("void of unknown: %v", err)
	}
	if w := mustGet(t, l, wallet.ID); w.Balance() != 400 || w.Available() != 400 {
		t.Fatalf("after void: %+v", w)
	}
	mustAudit(t, l)
}

func TestPendingTimeout(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l, "wallet", "CNY", ledger.CreditNormal, true)
	shop := mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, false)
	if _, err := l.Post(ctx, transfer("fund", "topup", 1000, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	short := transfer("short", "payment", 700, wallet.ID, shop.ID)
	short.Pending, short.Timeout = true, time.Second
	got, err := l.Post(ctx, short)
	if err != nil || got.ExpiresAt.Sub(got.Created) != time.Second {
		t.Fatalf("hold with timeout: %+v, %v", got, err)
	}
	long := transfer("long", "payment", 100, wallet.ID, shop.ID)
	long.Pending, long.Timeout = true, time.Hour
	if _, err := l.Post(ctx, long); err != nil {
		t.Fatal(err)
	}
	if n, err := l.VoidExpired(ctx, 10); err != nil || n != 0 {
		t.Fatalf("nothing has expired yet: %d, %v", n, err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := l.PostPending(ctx, "short"); !errors.Is(err, ledger.ErrPendingExpired) {
		t.Fatalf("posting an expired hold: %v", err)
	}
	if n, err := l.VoidExpired(ctx, 10); err != nil || n != 1 {
		t.Fatalf("VoidExpired = %d, %v; want 1", n, err)
	}
	if tr, _ := l.GetTransfer(ctx, "short"); tr.Status != ledger.StatusVoided {
		t.Fatalf("expired hold is %s", tr.Status)
	}
	if tr, _ := l.GetTransfer(ctx, "long"); tr.Status != ledger.StatusPending {
		t.Fatalf("live hold is %s", tr.Status)
	}
	if w := mustGet(t, l, wallet.ID); w.Available() != 900 {
		t.Fatalf("available after expiry = %d, want 900", w.Available())
	}
	// A hold posted before its timeout leaves nothing for the sweeper.
	if _, err := l.PostPending(ctx, "long"); err != nil {
		t.Fatal(err)
	}
	if n, err := l.VoidExpired(ctx, 10); err != nil || n != 0 {
		t.Fatalf("VoidExpired after post = %d, %v", n, err)
	}
	mustAudit(t, l)
}

// TestResolveRace posts and voids the same hold from many goroutines: exactly
// one kind of resolution wins and the money moves at most once.
func TestResolveRace(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l, "wallet", "CNY", ledger.CreditNormal, true)
	shop := mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, false)
	if _, err := l.Post(ctx, transfer("fund", "topup", 1000, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 10; round++ {
		id := "hold" + string(rune('a'+round))
		h := transfer(id, "payment", 50, wallet.ID, shop.ID)
		h.Pending = true
		if _, err := l.Post(ctx, h); err != nil {
			t.Fatal(err)
		}
		results := make(chan error, 20)
		for i := 0; i < 20; i++ {
			go func() {
				var err error
				if i%2 == 0 {
					_, err = l.PostPending(ctx, id)
				} else {
					_, err = l.VoidPending(ctx, id)
				}
				results <- err
			}()
		}
		var ok, conflicts int
		for i := 0; i < 20; i++ {
			err := <-results
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ledger.ErrAlreadyPosted), errors.Is(err, ledger.ErrAlreadyVoided):
				conflicts++
			default:
				t.Fatalf("unexpected error: %v", err)
			}
		}
		// Either every post succeeds (the first posts, the rest replay) and
		// every void conflicts, or the reverse.
		if ok != 10 || conflicts != 10 {
			t.Fatalf("round %d: %d ok, %d conflicts", round, ok, conflicts)
		}
	}
	mustAudit(t, l)
	if w := mustGet(t, l, wallet.ID); w.DebitsPending != 0 {
		t.Fatalf("holds left: %+v", w)
	}
}

func TestReverse(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l, "wallet", "CNY", ledger.CreditNormal, true)
	shop := mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, true)
	if _, err := l.Post(ctx, transfer("fund", "topup", 1000, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Post(ctx, transfer("pay", "payment", 800, wallet.ID, shop.ID)); err != nil {
		t.Fatal(err)
	}
	// The top-up's money is spent: reversing it would overdraw the wallet.
	if _, err := l.Reverse(ctx, "fund", nil); !errors.Is(err, ledger.ErrInsufficientFunds) {
		t.Fatalf("reverse spent top-up: %v", err)
	}
	rev, err := l.Reverse(ctx, "pay", map[string]string{"reason": "refund"})
	if err != nil || rev.ReversesID != "pay" || rev.Postings[0].Credit != 800 || rev.Postings[1].Debit != 800 {
		t.Fatalf("reverse: %+v, %v", rev, err)
	}
	if again, err := l.Reverse(ctx, "pay", map[string]string{"reason": "refund"}); err != nil || again.ID != rev.ID {
		t.Fatalf("reversing again returns the first reversal: %+v, %v", again, err)
	}
	if _, err := l.Reverse(ctx, "pay", map[string]string{"reason": "other"}); !errors.Is(err, ledger.ErrIdempotencyConflict) {
		t.Fatalf("second, different reversal: %v", err)
	}
	if w := mustGet(t, l, wallet.ID); w.Balance() != 1000 {
		t.Fatalf("wallet after reversal = %d", w.Balance())
	}
	h := transfer("hold", "payment", 100, wallet.ID, shop.ID)
	h.Pending = true
	if _, err := l.Post(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reverse(ctx, "hold", nil); !errors.Is(err, ledger.ErrNotReversible) {
		t.Fatalf("reverse pending: %v", err)
	}
	if _, err := l.PostPending(ctx, "hold"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reverse(ctx, "hold", nil); err != nil {
		t.Fatalf("reverse posted hold: %v", err)
	}
	if w := mustGet(t, l, wallet.ID); w.Balance() != 1000 {
		t.Fatalf("wallet after reversing posted hold = %d", w.Balance())
	}
	mustAudit(t, l)
}
