package ledger_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/minipay/minipay/ledger"
)

// walletBook makes a bank, a no_overdraft wallet and a shop in l.
func walletBook(t *testing.T, l *ledger.Ledger) (bank, wallet, shop ledger.Account) {
	t.Helper()
	return mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false),
		mustAccount(t, l, "wallet", "CNY", ledger.CreditNormal, true),
		mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, false)
}

// TestCachedBalancesNeverDecideAlone has a second replica spend from a
// wallet whose balances the first replica's worker holds in its cache: the
// first must not overspend on the stale balances (its guarded write fails
// and the retry locks and reads), and its cache must then be set aside, so
// that the next groups read, and pay what the wallet can pay.
func TestCachedBalancesNeverDecideAlone(t *testing.T) {
	seen := &groupRecorder{}
	l1, db := newLedger(t, ledger.Options{Workers: 1, Observe: seen.observe})
	l2 := ledger.New(db.Pool, ledger.Options{})
	defer l2.Close()
	ctx := ctxT(t)
	bank, wallet, shop := walletBook(t, l1)
	post := func(l *ledger.Ledger, id string, amount int64, from, to string, attach ...ledger.Statement) (ledger.BatchStats, error) {
		t.Helper()
		before := seen.count()
		_, err := l.Post(ctx, transfer(id, "payment", amount, from, to), attach...)
		if l != l1 {
			return ledger.BatchStats{}, err
		}
		return seen.after(t, before), err
	}
	balance := func(want int64) {
		t.Helper()
		if got := mustGet(t, l1, wallet.ID).Balance(); got != want {
			t.Fatalf("wallet = %d, want %d", got, want)
		}
	}

	if _, err := post(l1, "fund", 100, bank.ID, wallet.ID); err != nil {
		t.Fatal(err)
	}
	s, err := post(l1, "pay1", 10, wallet.ID, shop.ID)
	if err != nil || s.Cached != 1 || s.Attempts != 1 {
		t.Fatalf("pay 10 of 100: %+v, %v; want the wallet's balances from the cache, one attempt", s, err)
	}
	balance(90)

	// The other replica spends 60: the first's cache still says 90. Paying
	// 50 on it passes in Go; the guarded write must fail and the retry,
	// which locks and reads 30, refuse.
	if _, err := post(l2, "other1", 60, wallet.ID, shop.ID); err != nil {
		t.Fatal(err)
	}
	s, err = post(l1, "pay2", 50, wallet.ID, shop.ID)
	if !errors.Is(err, ledger.ErrInsufficientFunds) || s.Cached != 1 || s.Attempts < 2 {
		t.Fatalf("pay 50 of 30 on a cached 90: %+v, %v; want ErrInsufficientFunds after a retry", s, err)
	}
	balance(30)

	// A stale cache is set aside: the next groups read. The other replica
	// tops up 100 meanwhile, and the first pays 120 of 130.
	if _, err := post(l2, "other2", 100, bank.ID, wallet.ID); err != nil {
		t.Fatal(err)
	}
	s, err = post(l1, "pay3", 120, wallet.ID, shop.ID)
	if err != nil || s.Cached != 0 {
		t.Fatalf("pay 120 of 130 after a stale hit: %+v, %v; want paid on a read", s, err)
	}
	balance(10)
	mustAudit(t, l1)
}

// TestCachedBalancesRefuseOnlyOnARead has the cache understate a wallet
// (another replica topped it up): a transfer the cache says it cannot pay
// must be judged on a fresh read, and paid.
func TestCachedBalancesRefuseOnlyOnARead(t *testing.T) {
	l1, db := newLedger(t, ledger.Options{Workers: 1})
	l2 := ledger.New(db.Pool, ledger.Options{})
	defer l2.Close()
	ctx := ctxT(t)
	bank, wallet, shop := walletBook(t, l1)
	if _, err := l1.Post(ctx, transfer("fund", "topup", 100, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := l2.Post(ctx, transfer("other", "topup", 100, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := l1.Post(ctx, transfer("pay", "payment", 150, wallet.ID, shop.ID)); err != nil {
		t.Fatalf("pay 150 of 200 while the cache says 100: %v", err)
	}
	if got := mustGet(t, l1, wallet.ID).Balance(); got != 50 {
		t.Fatalf("wallet = %d, want 50", got)
	}
	mustAudit(t, l1)
}

// TestFailedGroupLeavesCacheAsCommitted fails a group on its attached
// statement after the poster applied its debit: the cache must keep the
// committed balance, so the next transfer is written on it at the first
// attempt (a cache holding the failed group's balance would fail its
// guard and be set aside).
func TestFailedGroupLeavesCacheAsCommitted(t *testing.T) {
	seen := &groupRecorder{}
	l, _ := newLedger(t, ledger.Options{Workers: 1, Observe: seen.observe})
	ctx := ctxT(t)
	bank, wallet, shop := walletBook(t, l)
	if _, err := l.Post(ctx, transfer("fund", "topup", 100, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	errRefused := errors.New("refused by the caller's check")
	failing := ledger.Statement{SQL: "SELECT 1", Check: func(pgconn.CommandTag) error { return errRefused }}
	if _, err := l.Post(ctx, transfer("failed", "payment", 30, wallet.ID, shop.ID), failing); !errors.Is(err, errRefused) {
		t.Fatalf("post with a failing statement: %v, want its error", err)
	}
	before := seen.count()
	if _, err := l.Post(ctx, transfer("next", "payment", 100, wallet.ID, shop.ID)); err != nil {
		t.Fatalf("pay 100 of 100: %v", err)
	}
	if s := seen.after(t, before); s.Cached != 1 || s.Attempts != 1 {
		t.Fatalf("the transfer after a failed group: %+v, want the committed balance from the cache at the first attempt", s)
	}
	if got := mustGet(t, l, wallet.ID).Balance(); got != 0 {
		t.Fatalf("wallet = %d, want 0", got)
	}
	mustAudit(t, l)
}
