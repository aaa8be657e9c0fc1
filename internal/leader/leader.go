// Package leader elects one process among minipay's replicas to run a job
// that must not run twice at once, such as advancing settlement runs,
// renewing subscriptions or losing overdue disputes. Every replica may ask;
// one at a time runs.
//
// The election is a PostgreSQL transaction-level advisory lock, taken by a
// transaction that stays open while the job runs on other connections and
// rolled back to end it. A session-level lock would do on a direct
// connection, but through a transaction pooler (PgBouncer's pool_mode =
// transaction) the unlock could reach another server connection than the
// lock, leaving the job taken for good; a transaction keeps its server
// connection until it ends. Like a session, it ends with the connection of
// a process that dies (even by SIGKILL), so the next replica to ask takes
// the job over. Jobs must still be safe to run twice in a row: the lock
// says who runs now, not what the last runner finished.
package leader

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Poll is how often a process waiting to lead tries again.
const Poll = 250 * time.Millisecond

// Run runs fn as the leader of the job named key. With wait it waits until
// no other process runs the job; without, it returns at once with ran
// false when another process does. fn's error is returned as is.
//
// A waiting process tries again every Poll rather than block inside a
// transaction, so that behind a pooler with few server connections the
// waiters hold none that the leader needs.
func Run(ctx context.Context, pool *pgxpool.Pool, key int64, wait bool, fn func(context.Context) error) (ran bool, err error) {
	for {
		release, led, err := try(ctx, pool, key)
		if err != nil {
			return false, err
		}
		if led {
			defer release()
			return true, fn(ctx)
		}
		if !wait {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("leader lock %x: %w", key, ctx.Err())
		case <-time.After(Poll):
		}
	}
}

// try takes the job named key if no other process holds it, and returns
// the function that gives it up.
func try(ctx context.Context, pool *pgxpool.Pool, key int64) (release func(), led bool, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("leader lock %x: %w", key, err)
	}
	// A failed rollback closes the connection, and the lock goes with it.
	release = func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }
	// The transaction sits idle while the job runs; a server-wide
	// idle_in_transaction_session_timeout must not end it (and the lock).
	_, err = tx.Exec(ctx, `SET LOCAL idle_in_transaction_session_timeout = 0`)
	if err == nil {
		err = tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, key).Scan(&led)
	}
	if err != nil || !led {
		release()
		if err != nil {
			return nil, false, fmt.Errorf("leader lock %x: %w", key, err)
		}
		return nil, false, nil
	}
	return release, true, nil
}
