package ledger

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
)

// TestSeqPoolNeverGivesANumberTwice takes numbers from one pool on several
// connections at once, in takes that often overrun what the pool holds, and
// checks that no number comes out twice.
func TestSeqPoolNeverGivesANumberTwice(t *testing.T) {
	db := testdb.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var (
		pool seqPool
		mu   sync.Mutex
		seen = map[int64]bool{}
		wg   sync.WaitGroup
	)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := db.Pool.Acquire(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Release()
			for i := range 60 {
				n := 1 + (g*7+i*13)%20
				seqs, err := pool.take(ctx, conn.Conn(), n)
				if err != nil {
					t.Error(err)
					return
				}
				if len(seqs) != n {
					t.Errorf("asked for %d numbers, got %d", n, len(seqs))
				}
				mu.Lock()
				for _, s := range seqs {
					if seen[s] {
						t.Errorf("number %d given twice", s)
					}
					seen[s] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestUnreadGroupNeverCopies: a group that read nothing has no time to
// give COPY's rows, so writeGroup refuses to COPY it rather than write
// rows created at the zero time.
func TestUnreadGroupNeverCopies(t *testing.T) {
	db := testdb.New(t)
	l := New(db.Pool, Options{})
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bank, err := l.CreateAccount(ctx, AccountSpec{Code: "bank", Currency: "CNY", NormalBalance: DebitNormal})
	if err != nil {
		t.Fatal(err)
	}
	shop, err := l.CreateAccount(ctx, AccountSpec{Code: "shop", Currency: "CNY", NormalBalance: CreditNormal})
	if err != nil {
		t.Fatal(err)
	}
	ops := []*op{handOp(t, ctx, l, Transfer{ID: "sale", Code: "payment",
		Postings: []Posting{{Account: bank.ID, Debit: 10}, {Account: shop.ID, Credit: 10}}})}
	conn := groupConn(t, ctx, db.Pool)
	st, err := readGroupState(ctx, conn, ops, readMode{seqs: &seqPool{}})
	if err != nil || !st.deferred {
		t.Fatalf("a group with nothing to read read first (deferred %v): %v", st != nil && st.deferred, err)
	}
	res, written, err := st.apply(ops)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := writeGroup(ctx, conn, st, ops, written, res, 1, 1); err == nil {
		t.Fatal("a group that read nothing was written by COPY")
	}
	if _, err := l.GetTransfer(ctx, "sale"); !errors.Is(err, ErrTransferNotFound) {
		t.Fatalf("the refused group wrote its transfer: %v", err)
	}
}
