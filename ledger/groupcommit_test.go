package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/internal/testdb"
	"github.com/minipay/minipay/ledger"
)

// groupRecorder keeps the statistics of every group the poster commits.
type groupRecorder struct {
	mu     sync.Mutex
	groups []ledger.BatchStats
}

func (r *groupRecorder) observe(s ledger.BatchStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.groups = append(r.groups, s)
}

func (r *groupRecorder) largest() ledger.BatchStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var max ledger.BatchStats
	for _, g := range r.groups {
		if g.Ops > max.Ops {
			max = g
		}
	}
	return max
}

func (r *groupRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.groups)
}

// after returns the first group recorded after the first n, waiting a
// little for it, as waitLargest does.
func (r *groupRecorder) after(t *testing.T, n int) ledger.BatchStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.count() <= n {
		if time.Now().After(deadline) {
			t.Fatal("no group recorded")
		}
		time.Sleep(time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.groups[n]
}

// waitLargest waits a little for a group of at least n transfers: the
// poster reports a group after its callers have their results.
func (r *groupRecorder) waitLargest(n int) ledger.BatchStats {
	deadline := time.Now().Add(5 * time.Second)
	for {
		g := r.largest()
		if g.Ops >= n || time.Now().After(deadline) {
			return g
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blockPoster holds a row lock on a no_overdraft account so that the
// poster's next group touching it waits; with one worker, transfers
// submitted meanwhile queue up and form one group when release is called.
func blockPoster(t *testing.T, pool *pgxpool.Pool, l *ledger.Ledger, account, other string) (release func()) {
	t.Helper()
	ctx := ctxT(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM ledger_accounts WHERE id = $1 FOR UPDATE`, account); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Post(ctx, transfer(fmt.Sprintf("blocker-%d", time.Now().UnixNano()), "block", 1, account, other))
		done <- err
	}()
	waitForLockWait(t, pool)
	return func() {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("blocker: %v", err)
		}
	}
}

// waitForLockWait waits until some backend is waiting for a row lock.
func waitForLockWait(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var pid int
		err := pool.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' LIMIT 1`).Scan(&pid)
		if err == nil {
			return pid
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the poster never waited for the lock")
	return 0
}

// TestOneBadTransferFailsAlone puts good transfers and every kind of bad one
// into one group: the good ones are written together, each bad one fails
// with its own error.
func TestOneBadTransferFailsAlone(t *testing.T) {
	rec := &groupRecorder{}
	// One worker, so the jobs that queue up behind the blocker form one group.
	l, db := newLedger(t, ledger.Options{Observe: rec.observe, Workers: 1})
	ctx := ctxT(t)
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE side_effects (id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l, "wallet", "CNY", ledger.CreditNormal, true)
	shop := mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, false)
	lock := mustAccount(t, l, "lock", "CNY", ledger.DebitNormal, true) // no_overdraft: the poster locks it
	if _, err := l.Post(ctx, transfer("fund", "topup", 1000, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Post(ctx, transfer("taken", "topup", 5, bank.ID, shop.ID)); err != nil {
		t.Fatal(err)
	}
	errGuard := errors.New("session is not open")
	errSQL := errors.New("any database error")
	type job struct {
		tr     ledger.Transfer
		attach []ledger.Statement
		want   error
	}
	var jobs []job
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("good%d", i)
		jobs = append(jobs, job{tr: transfer(id, "payment", 10, wallet.ID, shop.ID),
			attach: []ledger.Statement{{SQL: `INSERT INTO side_effects VALUES ($1)`, Args: []any{id}}}})
	}
	jobs = append(jobs,
		job{tr: transfer("broke", "payment", 5000, wallet.ID, shop.ID), want: ledger.ErrInsufficientFunds,
			attach: []ledger.Statement{{SQL: `INSERT INTO side_effects VALUES ('broke')`}}},
		job{tr: transfer("taken", "topup", 6, bank.ID, shop.ID), want: ledger.ErrIdempotencyConflict},
		job{tr: transfer("guarded", "payment", 10, wallet.ID, shop.ID), want: errGuard,
			attach: []ledger.Statement{
				{SQL: `INSERT INTO side_effects VALUES ('guarded')`},
				{SQL: `UPDATE side_effects SET id = id WHERE id = 'no such row'`, Check: ledger.ExpectRows(1, errGuard)},
			}},
		// A Check fails, and a later statement of the same transfer
		// either errors (when good0 ran first) or takes good0's row (when
		// it ran first): it fails once, with its Check's error, and good0
		// is not blamed for the duplicate it ran into.
		job{tr: transfer("guarded-then-broken", "payment", 10, wallet.ID, shop.ID), want: errGuard,
			attach: []ledger.Statement{
				{SQL: `UPDATE side_effects SET id = id WHERE id = 'no such row'`, Check: ledger.ExpectRows(1, errGuard)},
				{SQL: `INSERT INTO side_effects VALUES ('good0')`}, // duplicate key
			}},
		job{tr: transfer("sqlerror", "payment", 10, wallet.ID, shop.ID), want: errSQL,
			attach: []ledger.Statement{
				{SQL: `INSERT INTO side_effects VALUES ('sqlerror')`},
				{SQL: `INSERT INTO side_effects VALUES ('sqlerror')`}, // duplicate key: the database refuses
			}},
	)
	release := blockPoster(t, db.Pool, l, lock.ID, bank.ID)
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = l.Post(ctx, j.tr, j.attach...)
		}()
	}
	time.Sleep(300 * time.Millisecond) // let every job reach the queue
	release()
	wg.Wait()

	if g := rec.waitLargest(len(jobs) / 2); g.Ops < len(jobs)/2 {
		t.Fatalf("largest group had %d transfers; the jobs were not committed together", g.Ops)
	}
	for i, j := range jobs {
		var pgErr *pgconn.PgError
		switch {
		case j.want == nil:
			if errs[i] != nil {
				t.Errorf("%s: %v", j.tr.ID, errs[i])
			}
		case j.want == errSQL:
			if !errors.As(errs[i], &pgErr) || pgErr.Code != "23505" {
				t.Errorf("%s: err = %v, want the unique violation", j.tr.ID, errs[i])
			}
		case !errors.Is(errs[i], j.want):
			t.Errorf("%s: err = %v, want %v", j.tr.ID, errs[i], j.want)
		}
	}
	// Attached statements commit exactly with their transfers.
	var effects, transfers int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM side_effects`).Scan(&effects); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger_transfers WHERE code = 'payment'`).Scan(&transfers); err != nil {
		t.Fatal(err)
	}
	if effects != 20 || transfers != 20 {
		t.Fatalf("%d side effects and %d payments committed, want 20 and 20", effects, transfers)
	}
	if w := mustGet(t, l, wallet.ID); w.Balance() != 800 {
		t.Fatalf("wallet = %d, want 800", w.Balance())
	}
	mustAudit(t, l)
}

// TestFailedCheckThenErrorAlone: a transfer alone in its group whose Check
// fails and whose next statement then errors fails with the Check's error;
// it once made the poster panic, counting the transfer as failed twice.
func TestFailedCheckThenErrorAlone(t *testing.T) {
	l, db := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE side_effects (id text PRIMARY KEY); INSERT INTO side_effects VALUES ('taken')`); err != nil {
		t.Fatal(err)
	}
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	shop := mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, false)
	errGuard := errors.New("guard")
	_, err := l.Post(ctx, transfer("t1", "topup", 10, bank.ID, shop.ID),
		ledger.Statement{SQL: `UPDATE side_effects SET id = id WHERE id = 'no such row'`, Check: ledger.ExpectRows(1, errGuard)},
		ledger.Statement{SQL: `INSERT INTO side_effects VALUES ('taken')`})
	if !errors.Is(err, errGuard) {
		t.Fatalf("err = %v, want the guard's", err)
	}
	if _, err := l.GetTransfer(ctx, "t1"); !errors.Is(err, ledger.ErrTransferNotFound) {
		t.Fatalf("the failed transfer was written: %v", err)
	}
	mustAudit(t, l)
}

// TestFailedCheckDoesNotBlameItsNeighbour: in one group, a transfer whose
// Check fails goes on to insert the row its neighbour inserts next. The
// neighbour's duplicate key is the failed transfer's doing: the neighbour
// is written, the failed transfer fails with its Check's error.
func TestFailedCheckDoesNotBlameItsNeighbour(t *testing.T) {
	l, db := newLedger(t, ledger.Options{Workers: 1})
	ctx := ctxT(t)
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE side_effects (id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	shop := mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, false)
	lock := mustAccount(t, l, "lock", "CNY", ledger.DebitNormal, true)
	errGuard := errors.New("guard")
	release := blockPoster(t, db.Pool, l, lock.ID, bank.ID)
	errs := make(chan error, 2)
	post := func(id string, attach ...ledger.Statement) {
		go func() {
			_, err := l.Post(ctx, transfer(id, "topup", 10, bank.ID, shop.ID), attach...)
			errs <- err
		}()
		time.Sleep(100 * time.Millisecond) // queued in this order
	}
	post("failed", ledger.Statement{SQL: `UPDATE side_effects SET id = id WHERE id = 'no such row'`, Check: ledger.ExpectRows(1, errGuard)},
		ledger.Statement{SQL: `INSERT INTO side_effects VALUES ('x')`})
	post("neighbour", ledger.Statement{SQL: `INSERT INTO side_effects VALUES ('x')`})
	release()
	var got []error
	for i := 0; i < 2; i++ {
		got = append(got, <-errs)
	}
	var guarded, ok int
	for _, err := range got {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, errGuard):
			guarded++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || guarded != 1 {
		t.Fatalf("results %v: want the neighbour written and the guarded transfer refused", got)
	}
	if _, err := l.GetTransfer(ctx, "neighbour"); err != nil {
		t.Fatalf("neighbour: %v", err)
	}
	mustAudit(t, l)
}

// TestGroupsFormUnderLoad checks that concurrent callers share transactions.
func TestGroupsFormUnderLoad(t *testing.T) {
	rec := &groupRecorder{}
	l, _ := newLedger(t, ledger.Options{Observe: rec.observe})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	fees := mustAccount(t, l, "fees", "CNY", ledger.CreditNormal, false)
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if _, err := l.Post(ctx, transfer(fmt.Sprintf("t%d-%d", w, i), "fee", 1, bank.ID, fees.ID)); err != nil {
					t.Errorf("post: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rec.mu.Lock()
	n := len(rec.groups)
	rec.mu.Unlock()
	if n >= 64*20 || rec.largest().Ops < 2 {
		t.Fatalf("%d groups for %d transfers, largest %d: no group commit", n, 64*20, rec.largest().Ops)
	}
	if f := mustGet(t, l, fees.ID); f.Balance() != 64*20 {
		t.Fatalf("hot account = %d, want %d", f.Balance(), 64*20)
	}
	t.Logf("%d transfers in %d groups", 64*20, n)
}

// TestCrashMidGroup kills the poster's database connection while a group is
// in flight, once while it waits to lock accounts and once while it writes.
// Callers either succeed or get an error; retrying everything with the same
// ids leaves each transfer written exactly once.
func TestCrashMidGroup(t *testing.T) {
	for _, stage := range []struct {
		name  string
		block string
	}{
		{"reading", `SELECT 1 FROM ledger_accounts WHERE code = 'wallet' FOR UPDATE`},
		{"writing", `LOCK TABLE ledger_postings IN SHARE MODE`},
	} {
		t.Run(stage.name, func(t *testing.T) {
			l, db := newLedger(t, ledger.Options{Workers: 2})
			ctx := ctxT(t)
			bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
			wallet := mustAccount(t, l, "wallet", "CNY", ledger.CreditNormal, true)
			tx, err := db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, stage.block); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 30)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = l.Post(ctx, transfer(fmt.Sprintf("c%d", i), "topup", 10, bank.ID, wallet.ID))
				}()
			}
			pid := waitForLockWait(t, db.Pool)
			var killed bool
			if err := db.Pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&killed); err != nil || !killed {
				t.Fatalf("terminate %d: %v %v", pid, killed, err)
			}
			_ = tx.Rollback(ctx)
			wg.Wait()
			failed := 0
			for _, err := range errs {
				if err != nil {
					failed++
				}
			}
			t.Logf("%d of %d callers saw an error", failed, len(errs))
			for i := range errs { // the callers retry everything, as a client would
				if _, err := l.Post(ctx, transfer(fmt.Sprintf("c%d", i), "topup", 10, bank.ID, wallet.ID)); err != nil {
					t.Fatalf("retry c%d: %v", i, err)
				}
			}
			if w := mustGet(t, l, wallet.ID); w.Balance() != 300 {
				t.Fatalf("wallet = %d after retries, want 300", w.Balance())
			}
			mustAudit(t, l)
		})
	}
}

// TestDeadlockInAttachedStatementsRetries has two replicas' groups lock two
// rows of a caller's table in opposite orders in their attached
// statements. PostgreSQL breaks the deadlock by failing one transaction;
// that is no transfer's fault, so its group runs again and both transfers
// are written.
func TestDeadlockInAttachedStatementsRetries(t *testing.T) {
	l, db := newLedger(t, ledger.Options{Workers: 1})
	other := ledger.New(db.Pool, ledger.Options{Workers: 1})
	t.Cleanup(other.Close)
	ctx := ctxT(t)
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE rows_locked (id int PRIMARY KEY, v int NOT NULL);
		INSERT INTO rows_locked VALUES (1, 0), (2, 0)`); err != nil {
		t.Fatal(err)
	}
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	shop := mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, false)
	lockInOrder := func(first, second int) []ledger.Statement {
		return []ledger.Statement{
			{SQL: `UPDATE rows_locked SET v = v + 1 WHERE id = $1`, Args: []any{first}},
			{SQL: `SELECT pg_sleep(0.3)`},
			{SQL: `UPDATE rows_locked SET v = v + 1 WHERE id = $1`, Args: []any{second}},
		}
	}
	errs := make(chan error, 2)
	go func() {
		_, err := l.Post(ctx, transfer("one_then_two", "topup", 10, bank.ID, shop.ID), lockInOrder(1, 2)...)
		errs <- err
	}()
	go func() {
		_, err := other.Post(ctx, transfer("two_then_one", "topup", 10, bank.ID, shop.ID), lockInOrder(2, 1)...)
		errs <- err
	}()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Errorf("a transfer failed for a deadlock it did not cause: %v", err)
		}
	}
	var v1, v2 int
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT v FROM rows_locked WHERE id = 1), (SELECT v FROM rows_locked WHERE id = 2)`).Scan(&v1, &v2); err != nil {
		t.Fatal(err)
	}
	if v1 != 2 || v2 != 2 {
		t.Fatalf("rows updated %d and %d times, want 2 each: each transfer's statements once", v1, v2)
	}
	mustAudit(t, l)
}

// TestGroupStatementsPlannedOnce posts transfers one group at a time over
// one connection: each statement of a group must be planned once for the
// connection (a generic plan), the group's first statement included, not
// again for every group. Planning them for their arrays cost more than
// running them.
func TestGroupStatementsPlannedOnce(t *testing.T) {
	db := testdb.NewWithConns(t, 1)
	l := ledger.New(db.Pool, ledger.Options{Workers: 1})
	defer l.Close()
	ctx := ctxT(t)
	bank, wallet, shop := walletBook(t, l)
	if _, err := l.Post(ctx, transfer("fund", "topup", 1000, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if _, err := l.Post(ctx, transfer(fmt.Sprintf("pay%d", i), "payment", 10, wallet.ID, shop.ID)); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.Pool.Query(ctx, `SELECT statement, custom_plans FROM pg_prepared_statements
		WHERE statement ~ 'now\(\), ARRAY|INSERT INTO ledger_(transfers|postings|balance_shards)|UPDATE ledger_accounts' AND statement !~ 'pg_prepared_statements'`)
	if err != nil {
		t.Fatal(err)
	}
	planned := map[string]int64{}
	var statement string
	var custom int64
	if _, err := pgx.ForEachRow(rows, []any{&statement, &custom}, func() error {
		planned[strings.Join(strings.Fields(statement), " ")] = custom
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(planned) != 5 {
		t.Fatalf("%d of the group's 5 statements prepared: %v", len(planned), planned)
	}
	for s, n := range planned {
		if n != 0 {
			t.Errorf("planned %d times for its parameters: %.60s", n, s)
		}
	}
}
