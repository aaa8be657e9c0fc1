package ledger

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
)

// TestGuardedWriteRefusesMovedBalances moves a wallet's balance between a
// group's unlocked read and its write, as another replica would: the write
// must fail as a whole (nothing of the group lands) and the poster's retry,
// which locks the accounts, must decide on the new balance.
func TestGuardedWriteRefusesMovedBalances(t *testing.T) {
	db := testdb.New(t)
	l := New(db.Pool, Options{})
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	account := func(code string, normal NormalBalance, noOverdraft bool) Account {
		a, err := l.CreateAccount(ctx, AccountSpec{Code: code, Currency: "CNY", NormalBalance: normal, NoOverdraft: noOverdraft})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	bank, wallet, shop := account("bank", DebitNormal, false), account("wallet", CreditNormal, true), account("shop", CreditNormal, false)
	pay := func(id string, amount int64, from, to string) Transfer {
		return Transfer{ID: id, Code: "payment", Postings: []Posting{{Account: from, Debit: amount}, {Account: to, Credit: amount}}}
	}
	if _, err := l.Post(ctx, pay("fund", 100, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	ops := []*op{handOp(t, ctx, l, pay("late", 80, wallet.ID, shop.ID))}
	conn := groupConn(t, ctx, db.Pool)
	st, err := readGroupState(ctx, conn, ops, readMode{})
	if err != nil {
		t.Fatal(err)
	}
	// Another writer spends 50 while the group holds its read: the read
	// took no lock, so this commits at once.
	if _, err := l.Post(ctx, pay("early", 50, wallet.ID, shop.ID)); err != nil {
		t.Fatal(err)
	}
	res, written, err := st.apply(ops)
	if err != nil || len(written) != 1 {
		t.Fatalf("apply on the stale read: written %v, %v", written, err)
	}
	_, _, err = writeGroup(ctx, conn, st, ops, written, res, 1, defaultCopyMin)
	if !errors.Is(err, errBalancesMoved) {
		t.Fatalf("write after the balance moved: %v, want errBalancesMoved", err)
	}
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.GetTransfer(ctx, "late"); !errors.Is(err, ErrTransferNotFound) {
		t.Fatalf("the refused group wrote its transfer: %v", err)
	}
	if got, _ := l.GetAccount(ctx, wallet.ID); got.Balance() != 50 {
		t.Fatalf("wallet = %d after the refused group, want 50", got.Balance())
	}

	// Through the poster: the same transfer is refused for want of funds.
	if _, err := l.Post(ctx, pay("late", 80, wallet.ID, shop.ID)); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("post 80 of 50: %v, want ErrInsufficientFunds", err)
	}
	// And the retry with locks decides on the balance as it is.
	o2 := handOp(t, ctx, l, pay("retried", 30, wallet.ID, shop.ID))
	var stats BatchStats
	l.poster.commit([]*op{o2}, &worker{shard: 1}, &stats)
	if r := <-o2.done; r.err != nil {
		t.Fatalf("post 30 of 50: %v", r.err)
	}
	if got, _ := l.GetAccount(ctx, wallet.ID); got.Balance() != 20 {
		t.Fatalf("wallet = %d, want 20", got.Balance())
	}
}
