// Package leader elects one process among minipay's replicas to run a job
// that must not run twice at once, such as advancing settlement runs or
// renewing subscriptions. Every replica may ask; one at a time runs.
//
// The election is a PostgreSQL session-level advisory lock held on a
// connection of its own for as long as the job runs, so a process that dies
// (even by SIGKILL) gives the job up with its connection, and the next
// replica to ask takes it over. Jobs must still be safe to run twice in a
// row (the lock says who runs now, not what the last runner finished).
package leader

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Run runs fn as the leader of the job named key. With wait it waits
// until no other process runs the job; without, it returns at once with
// ran false when another process does. fn's error is returned as is.
func Run(ctx context.Context, pool *pgxpool.Pool, key int64, wait bool, fn func(context.Context) error) (ran bool, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("leader lock %x: %w", key, err)
	}
	defer conn.Release()
	if wait {
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
			return false, fmt.Errorf("leader lock %x: %w", key, err)
		}
	} else {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
			return false, fmt.Errorf("leader lock %x: %w", key, err)
		}
		if !ok {
			return false, nil
		}
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key); err != nil {
			conn.Conn().Close(context.Background()) // the lock goes with the connection
		}
	}()
	return true, fn(ctx)
}
