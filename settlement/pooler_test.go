package settlement_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/internal/pgcluster"
	"github.com/minipay/minipay/internal/pgdb"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/settlement"
)

// runLockKey is settlement's run lock, as the server sees it.
const runLockKey int64 = 0x6d696e6970617953

// TestRunLockThroughPooler settles through PgBouncer in transaction pooling
// mode, two server connections shared with other clients' transactions:
// every run completes, the run lock is never left behind on a server
// connection (a session lock would be, whenever its unlock reached another
// server connection than the lock), and while someone holds the lock a run
// waits for it rather than advancing.
func TestRunLockThroughPooler(t *testing.T) {
	pgcluster.NeedPgBouncer(t)
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(w.ctx, 2*time.Minute)
	defer cancel()
	cfg, err := pgx.ParseConfig(w.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	b := pgcluster.NewBouncer(t, int(cfg.Port), 2)
	pool, err := pgdb.Open(ctx, b.URL(cfg.Database), 6)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	l := ledger.New(pool, ledger.Options{})
	defer l.Close()
	svc := settlement.New(pool, l)
	_, app := w.app("")
	w.pay(app, "30.00", "CNY", "tip", false)

	churn, stopChurn := context.WithCancel(ctx)
	var churned sync.WaitGroup
	for range 2 {
		churned.Add(1)
		go func() {
			defer churned.Done()
			for churn.Err() == nil {
				_, _ = pool.Exec(churn, `SELECT pg_sleep(0.005)`)
			}
		}()
	}
	cutoff := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 12 {
		run, _, err := svc.Settle(ctx, cutoff.Add(time.Duration(i)*time.Minute), false)
		if err != nil {
			t.Fatal(err)
		}
		if run.Status != settlement.RunCompleted {
			t.Fatalf("run %d: %+v, want completed", i, run)
		}
	}
	stopChurn()
	churned.Wait()
	var locks int
	if err := w.db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&locks); err != nil {
		t.Fatal(err)
	}
	if locks != 0 {
		t.Fatalf("%d advisory locks left on the server after the runs", locks)
	}

	// Someone else holds the lock: a run is created but not advanced.
	holder, err := w.db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, runLockKey); err != nil {
		t.Fatal(err)
	}
	run, _, err := svc.Settle(ctx, cutoff.Add(time.Hour-time.Second), false)
	if err != nil || run.Status != settlement.RunRunning {
		t.Fatalf("run while another process holds the lock: %+v %v, want running", run, err)
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock($1)`, runLockKey); err != nil {
		t.Fatal(err)
	}
	holder.Release()
	run, _, err = svc.Settle(ctx, run.Cutoff, true)
	if err != nil || run.Status != settlement.RunCompleted {
		t.Fatalf("run once the lock is free: %+v %v, want completed", run, err)
	}
}
