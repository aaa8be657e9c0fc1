package pgdb_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/internal/pgcluster"
	"github.com/minipay/minipay/internal/pgdb"
	"github.com/minipay/minipay/internal/testdb"
	"github.com/minipay/minipay/migrations"
)

// TestThroughTransactionPooler opens and migrates a database through
// PgBouncer in transaction pooling mode: without the pooler's statement
// mode Open refuses at once and says what to add; with it, three processes'
// worth of pools migrate at once over two server connections, each
// migration is applied once, and no advisory lock is left behind.
func TestThroughTransactionPooler(t *testing.T) {
	pgcluster.NeedPgBouncer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := testdb.NewEmpty(t)
	cfg, err := pgx.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	b := pgcluster.NewBouncer(t, int(cfg.Port), 2)
	pooled := b.URL(cfg.Database)

	plain := strings.Replace(pooled, "&default_query_exec_mode=cache_describe", "", 1)
	if _, err := pgdb.Open(ctx, plain, 4); err == nil || !strings.Contains(err.Error(), "default_query_exec_mode=cache_describe") {
		t.Fatalf("Open through the pooler without its statement mode: %v; want a refusal naming default_query_exec_mode", err)
	}

	// Other clients' short transactions keep the server connections busy,
	// so one client's consecutive statements land on different ones, as
	// they do under load.
	churn, stopChurn := context.WithCancel(ctx)
	defer stopChurn()
	var churned sync.WaitGroup
	for range 2 {
		churned.Add(1)
		go func() {
			defer churned.Done()
			conn, err := pgx.Connect(churn, pooled)
			if err != nil {
				return
			}
			defer conn.Close(context.Background())
			for churn.Err() == nil {
				_, _ = conn.Exec(churn, `SELECT pg_sleep(0.01)`)
			}
		}()
	}

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied int
		errs    []error
	)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, done, err := pgdb.Setup(ctx, pooled, 4)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			applied += len(done)
			pool.Close()
		}()
	}
	wg.Wait()
	stopChurn()
	churned.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("migrate through the pooler: %v\n%s", err, b.Log())
	}
	if want := len(mustStatus(t, ctx, db)); applied != want {
		t.Errorf("migrations applied %d times in all, want each of %d once", applied, want)
	}
	var locks int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&locks); err != nil {
		t.Fatal(err)
	}
	if locks != 0 {
		t.Errorf("%d advisory locks left behind on the server", locks)
	}
	if n, err := b.ServerConnections(ctx, cfg.Database); err != nil || n > b.PoolSize {
		t.Errorf("the pooler holds %d server connections (%v), want at most %d", n, err, b.PoolSize)
	}
}

func mustStatus(t *testing.T, ctx context.Context, db *testdb.DB) []migrations.State {
	t.Helper()
	st, err := pgdb.Status(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if !s.Applied {
			t.Errorf("migration %s not applied", s.Name)
		}
	}
	return st
}
