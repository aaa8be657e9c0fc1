package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minipay/minipay/ledger"
)

// TestWholeReadsUnderLoad reads the trial balance and audits the ledger
// again and again while two ledgers (as two replicas) post transfers that
// move money between a wallet (balanced on the coordinator, on Citus) and
// accounts whose balances are shard rows (on the workers, on Citus). Every
// read must find the ledger balanced: on Citus that holds only because
// the reads take the fence (fence.go), since a group's two-phase commit
// makes its coordinator part visible before its workers' parts.
func TestWholeReadsUnderLoad(t *testing.T) {
	l1, db := newLedger(t, ledger.Options{})
	l2 := ledger.New(db.Pool, ledger.Options{Workers: 3})
	defer l2.Close()
	ctx := ctxT(t)
	bank := mustAccount(t, l1, "bank", "CNY", ledger.DebitNormal, false)
	fees := mustAccount(t, l1, "fees", "CNY", ledger.CreditNormal, false)
	dev := mustAccount(t, l1, "dev", "CNY", ledger.CreditNormal, false)
	const wallets, rounds = 16, 60
	var ws []ledger.Account
	for i := range wallets {
		ws = append(ws, mustAccount(t, l1, fmt.Sprintf("wallet%d", i), "CNY", ledger.CreditNormal, true))
	}

	var (
		wg   sync.WaitGroup
		done atomic.Bool
	)
	for i, w := range ws {
		l := []*ledger.Ledger{l1, l2}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				if _, err := l.Post(ctx, transfer(fmt.Sprintf("top-%d-%d", i, r), "topup", 100, bank.ID, w.ID)); err != nil {
					t.Errorf("topup: %v", err)
					return
				}
				_, err := l.Post(ctx, ledger.Transfer{ID: fmt.Sprintf("pay-%d-%d", i, r), Code: "payment", Postings: []ledger.Posting{
					{Account: w.ID, Debit: 100},
					{Account: dev.ID, Credit: 97},
					{Account: fees.ID, Credit: 3},
				}})
				if err != nil {
					t.Errorf("payment: %v", err)
					return
				}
			}
		}()
	}
	reads := 0
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for !done.Load() {
			tb, err := l2.TrialBalance(ctx)
			if err != nil {
				t.Errorf("trial balance: %v", err)
				return
			}
			if !tb.Balanced {
				t.Errorf("trial balance read %d under load is unbalanced: %+v", reads, tb)
				return
			}
			if reads%10 == 0 {
				if a, err := l1.Audit(ctx); err != nil || !a.OK() {
					t.Errorf("audit under load: %+v, %v", a, err)
					return
				}
			}
			reads++
		}
	}()
	wg.Wait()
	done.Store(true)
	readers.Wait()
	t.Logf("%d trial balances read under load, all balanced", reads)

	if got := mustGet(t, l1, fees.ID).Balance(); got != wallets*rounds*3 {
		t.Errorf("fees = %d, want %d", got, wallets*rounds*3)
	}
	if got := mustGet(t, l2, dev.ID).Balance(); got != wallets*rounds*97 {
		t.Errorf("dev = %d, want %d", got, wallets*rounds*97)
	}
	accts, err := l1.GetAccounts(ctx, []string{bank.ID, ws[0].Code})
	if err != nil || len(accts) != 2 || accts[0].Balance() != wallets*rounds*100 || accts[1].Balance() != 0 {
		t.Errorf("bank and wallet0: %+v, %v", accts, err)
	}
	mustAudit(t, l1)
}

// TestBeginWholeEndsOnItsConnection holds that a whole-ledger transaction
// gives its connection back when it ends, however it ends: a leak would
// starve the pool.
func TestBeginWholeEndsOnItsConnection(t *testing.T) {
	l, db := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	for i := range int(db.Pool.Config().MaxConns) * 2 {
		tx, err := l.BeginWhole(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM ledger_accounts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		_ = tx.Rollback(ctx) // ending twice is harmless
	}
	if n := db.Pool.Stat().AcquiredConns(); n != 0 {
		t.Fatalf("%d connections still acquired", n)
	}
}

// hotAccountsSpread holds, on Citus, that a hot account's balance shard
// rows are spread over the workers: the poster's workers write their own
// shard rows, and the table is distributed by shard. With 16 poster
// workers on consecutive shard numbers, all landing on one of two workers
// has a chance of about 1 in 30,000.
func hotAccountsSpread(t *testing.T) {
	l, db := newLedger(t, ledger.Options{Workers: 16})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	fees := mustAccount(t, l, "fees", "CNY", ledger.CreditNormal, false)
	var wg sync.WaitGroup
	for i := range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.Post(ctx, transfer(fmt.Sprintf("fee-%d", i), "fee", 5, bank.ID, fees.ID)); err != nil {
				t.Errorf("post: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := mustGet(t, l, fees.Code).Balance(); got != 256*5 {
		t.Fatalf("fees = %d, want %d", got, 256*5)
	}
	var seq int64
	if err := db.Pool.QueryRow(ctx, `SELECT seq FROM ledger_accounts WHERE id = $1`, fees.ID).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Pool.Query(ctx, `SELECT DISTINCT shard FROM ledger_balance_shards WHERE account_seq = $1`, seq)
	if err != nil {
		t.Fatal(err)
	}
	shards, err := pgx.CollectRows(rows, pgx.RowTo[int16])
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[int]int{}
	for _, s := range shards {
		var port int
		err := db.Pool.QueryRow(ctx, `SELECT nodeport FROM citus_shards
			WHERE shardid = get_shard_id_for_distribution_column('ledger_balance_shards', $1::int2)`, s).Scan(&port)
		if err != nil {
			t.Fatal(err)
		}
		nodes[port]++
	}
	if _, ok := nodes[db.Citus.Coordinator.Port]; ok || len(nodes) < 2 {
		t.Fatalf("the fee account's %d shard rows are on nodes %v (coordinator %d): want them over both workers",
			len(shards), nodes, db.Citus.Coordinator.Port)
	}
	t.Logf("the fee account's %d shard rows: %v rows by worker port", len(shards), nodes)
}

// fenceLeakIsEnded leaves the fence held by a session outside any
// transaction, as a failed COMMIT behind a transaction-mode pooler can:
// a whole-ledger read must end that session and go on, not wait forever
// (and hold every group behind it).
func fenceLeakIsEnded(t *testing.T) {
	l, db := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	fees := mustAccount(t, l, "fees", "CNY", ledger.CreditNormal, false)
	if _, err := l.Post(ctx, transfer("t1", "fee", 5, bank.ID, fees.ID)); err != nil {
		t.Fatal(err)
	}
	leak, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close(context.Background())
	if _, err := leak.Exec(ctx, `SELECT pg_advisory_lock_shared($1)`, ledger.FenceKey); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tb, err := l.TrialBalance(ctx)
	if err != nil || !tb.Balanced {
		t.Fatalf("trial balance with the fence leaked: %+v, %v", tb, err)
	}
	if _, err := leak.Exec(ctx, `SELECT 1`); err == nil {
		t.Fatal("the session that held the fence while idle still runs")
	}
	// Groups go on too.
	if _, err := l.Post(ctx, transfer("t2", "fee", 5, bank.ID, fees.ID)); err != nil {
		t.Fatal(err)
	}
	t.Logf("a leaked fence was ended in %v", time.Since(start).Round(10*time.Millisecond))
}
