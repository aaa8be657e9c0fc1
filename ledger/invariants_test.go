package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/ledger"
)

// TestInvariantsUnderConcurrency attacks invariants 1–3: many goroutines post
// random transfers (two and three postings, pending and posted, with holds
// posted and voided) between a few accounts, several of them no_overdraft,
// while a watcher keeps reading the no_overdraft balances. Afterwards every
// balance must equal the sum of its postings, every transfer must balance and
// the trial balance must be zero; at no moment may a no_overdraft account
// have been below zero.
func TestInvariantsUnderConcurrency(t *testing.T) {
	l, db := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	var accounts, guarded []string
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	for i := 0; i < 6; i++ {
		a := mustAccount(t, l, fmt.Sprintf("wallet:%d", i), "CNY", ledger.CreditNormal, true)
		accounts = append(accounts, a.ID)
		guarded = append(guarded, a.ID)
	}
	for i := 0; i < 3; i++ {
		a := mustAccount(t, l, fmt.Sprintf("open:%d", i), "CNY", ledger.CreditNormal, false)
		accounts = append(accounts, a.ID)
	}
	fees := mustAccount(t, l, "fees", "CNY", ledger.CreditNormal, false)
	for i, id := range guarded {
		if _, err := l.Post(ctx, transfer(fmt.Sprintf("fund%d", i), "topup", 5000, bank.ID, id)); err != nil {
			t.Fatal(err)
		}
	}

	var negative atomic.Int64
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() { // the watcher: no_overdraft balances, read directly, never below zero
		defer watch.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int64
			err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger_accounts WHERE no_overdraft
				AND credits_posted - debits_posted - debits_pending < 0`).Scan(&n)
			if err != nil && ctx.Err() == nil {
				t.Errorf("watch: %v", err)
				return
			}
			negative.Add(n)
		}
	}()

	const workers, perWorker = 32, 150
	var posted, refused atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < perWorker; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				from := accounts[rng.IntN(len(accounts))]
				to := accounts[rng.IntN(len(accounts))]
				for to == from {
					to = accounts[rng.IntN(len(accounts))]
				}
				amount := int64(rng.IntN(900) + 1)
				tr := transfer(id, "move", amount, from, to)
				if i%3 == 0 { // three postings, one of them the hot fee account
					fee := amount/10 + 1
					tr.Postings = []ledger.Posting{{Account: from, Debit: amount + fee}, {Account: to, Credit: amount}, {Account: fees.ID, Credit: fee}}
				}
				tr.Pending = i%5 == 0
				_, err := l.Post(ctx, tr)
				switch {
				case err == nil:
					posted.Add(1)
				case errors.Is(err, ledger.ErrInsufficientFunds):
					refused.Add(1)
					continue
				default:
					t.Errorf("post %s: %v", id, err)
					return
				}
				if tr.Pending {
					if rng.IntN(2) == 0 {
						_, err = l.PostPending(ctx, id)
					} else {
						_, err = l.VoidPending(ctx, id)
					}
					if err != nil {
						t.Errorf("resolve %s: %v", id, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	if negative.Load() != 0 {
		t.Fatalf("a no_overdraft account was seen below zero %d times", negative.Load())
	}
	if posted.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("the attack was too gentle: %d posted, %d refused", posted.Load(), refused.Load())
	}
	audit := mustAudit(t, l)
	t.Logf("%d posted, %d refused for insufficient funds; %d transfers stored", posted.Load(), refused.Load(), audit.Transfers)
	checkBalancesFromPostings(t, db.Pool, l)
}

// checkBalancesFromPostings recomputes every account from its postings in the
// test's own SQL, independently of Audit, and compares.
func checkBalancesFromPostings(t *testing.T, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, l *ledger.Ledger) {
	t.Helper()
	ctx := ctxT(t)
	rows, err := q.Query(ctx, `
		SELECT a.id, coalesce(sum(p.debits_posted), 0)::bigint, coalesce(sum(p.credits_posted), 0)::bigint
		FROM ledger_accounts a LEFT JOIN ledger_postings p ON p.account_seq = a.seq GROUP BY a.id`)
	if err != nil {
		t.Fatal(err)
	}
	type sums struct{ d, c int64 }
	want := map[string]sums{}
	var id string
	var s sums
	if _, err := pgx.ForEachRow(rows, []any{&id, &s.d, &s.c}, func() error { want[id] = s; return nil }); err != nil {
		t.Fatal(err)
	}
	var totalD, totalC int64
	for id, s := range want {
		a := mustGet(t, l, id)
		if a.DebitsPosted != s.d || a.CreditsPosted != s.c {
			t.Errorf("account %s: columns %d/%d, postings %d/%d", a.Code, a.DebitsPosted, a.CreditsPosted, s.d, s.c)
		}
		if a.NoOverdraft && a.Available() < 0 {
			t.Errorf("account %s overdrawn: %d", a.Code, a.Available())
		}
		totalD += s.d
		totalC += s.c
	}
	if totalD != totalC {
		t.Errorf("trial balance: debits %d, credits %d", totalD, totalC)
	}
}

// TestSameIDConcurrently posts one transfer id from many goroutines at once,
// with the same content: it lands once, everyone gets the same transfer, and
// all but one are told theirs was a replay. A different transfer under the
// same id is refused.
func TestSameIDConcurrently(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l, "wallet", "CNY", ledger.CreditNormal, true)
	for round := 0; round < 5; round++ {
		id := fmt.Sprintf("dup-%d", round)
		var wg sync.WaitGroup
		created := make(chan time.Time, 50)
		var written atomic.Int32
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tr, err := l.Post(ctx, transfer(id, "topup", 100, bank.ID, wallet.ID))
				if err != nil {
					t.Errorf("post: %v", err)
					return
				}
				if !tr.Replayed {
					written.Add(1)
				}
				created <- tr.Created
			}()
		}
		wg.Wait()
		close(created)
		if n := written.Load(); n != 1 {
			t.Fatalf("%d posts of %s were not replays, want 1", n, id)
		}
		first := <-created
		for c := range created {
			if !c.Equal(first) {
				t.Fatalf("replays saw different transfers: %v vs %v", c, first)
			}
		}
	}
	if w := mustGet(t, l, wallet.ID); w.Balance() != 500 {
		t.Fatalf("wallet = %d, want 500 (each id once)", w.Balance())
	}
	_, err := l.Post(ctx, transfer("dup-0", "topup", 101, bank.ID, wallet.ID))
	if !errors.Is(err, ledger.ErrIdempotencyConflict) {
		t.Fatalf("same id, other amount: %v", err)
	}
	tr := transfer("dup-0", "topup", 100, bank.Code, wallet.Code) // same accounts named by code
	if got, err := l.Post(ctx, tr); err != nil || !got.Replayed {
		t.Fatalf("same content named by code is a replay: %v, replayed %v", err, got.Replayed)
	}
	mustAudit(t, l)
}

// TestSameIDAcrossLedgers races two Ledger instances (as two replicas would
// be) on the same ids: each id still lands exactly once.
func TestSameIDAcrossLedgers(t *testing.T) {
	l1, db := newLedger(t, ledger.Options{})
	l2 := ledger.New(db.Pool, ledger.Options{})
	defer l2.Close()
	ctx := ctxT(t)
	bank := mustAccount(t, l1, "bank", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l1, "wallet", "CNY", ledger.CreditNormal, true)
	other := mustAccount(t, l1, "other", "CNY", ledger.CreditNormal, false)
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		for _, l := range []*ledger.Ledger{l1, l2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := l.Post(ctx, transfer(fmt.Sprintf("x%d", i), "topup", 1, bank.ID, wallet.ID)); err != nil {
					t.Errorf("post: %v", err)
				}
				if _, err := l.Post(ctx, transfer(fmt.Sprintf("y%d", i), "move", 1, bank.ID, other.ID)); err != nil {
					t.Errorf("post: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	if w := mustGet(t, l1, wallet.ID); w.Balance() != 200 {
		t.Fatalf("wallet = %d, want 200", w.Balance())
	}
	mustAudit(t, l1)
}

// TestRowsAreImmutable tries to change ledger history behind the ledger's
// back (invariant 4): the database refuses.
func TestRowsAreImmutable(t *testing.T) {
	l, db := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	a := mustAccount(t, l, "a", "CNY", ledger.DebitNormal, false)
	b := mustAccount(t, l, "b", "CNY", ledger.CreditNormal, false)
	if _, err := l.Post(ctx, transfer("t1", "c", 10, a.ID, b.ID)); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`UPDATE ledger_transfers SET code = 'x'`,
		`DELETE FROM ledger_transfers`,
		`TRUNCATE ledger_transfers CASCADE`,
		`UPDATE ledger_postings SET debits_posted = 1000`,
		`DELETE FROM ledger_postings`,
		`TRUNCATE ledger_postings`,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err == nil {
			t.Errorf("%s succeeded", sql)
		}
	}
	tr, err := l.GetTransfer(ctx, "t1")
	if err != nil || tr.Code != "c" || tr.Postings[0].Debit != 10 {
		t.Fatalf("history changed: %+v %v", tr, err)
	}
	// The balance columns cannot be pushed past no_overdraft by hand either.
	w := mustAccount(t, l, "w", "CNY", ledger.CreditNormal, true)
	if _, err := db.Pool.Exec(ctx, `UPDATE ledger_accounts SET debits_posted = 1 WHERE id = $1`, w.ID); err == nil {
		t.Errorf("database let a no_overdraft account go negative")
	}
}
