package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrLockTimeout is returned by Up when another process held the migration
// lock for longer than the wait (five minutes): a migration that slow, or a
// process stuck while holding it.
var ErrLockTimeout = errors.New("migrations: timed out waiting for the migration lock")

// xactLocker serializes migrations with a transaction-level advisory lock,
// taken by a transaction that stays open while goose migrates on other
// connections and rolled back to release it.
//
// A session-level lock (pg_advisory_lock) would serve as long as every
// statement reaches the same server connection. Through a transaction
// pooler (PgBouncer's pool_mode = transaction) consecutive statements of
// one client may run on different server connections: the lock would stay
// behind on whichever one took it, and the unlock would miss it. An open
// transaction keeps its server connection until it ends, and, like a
// session, ends with the connection of a process that dies, so a crashed
// migrator never leaves the lock held.
type xactLocker struct {
	id   int64
	poll time.Duration // between attempts while another process holds it
	wait time.Duration // in all, before ErrLockTimeout
	tx   *sql.Tx       // holds the lock between Lock and Unlock
}

// Lock waits until this process holds the lock. Each attempt is a
// transaction of its own, ended when the lock is taken elsewhere: a waiting
// process holds no connection while it waits, so that behind a pooler with
// a few server connections the waiters cannot take them all from the
// process that holds the lock and needs one to migrate.
func (l *xactLocker) Lock(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(l.wait)
	for {
		tx, err := l.try(ctx, db)
		if err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		if tx != nil {
			l.tx = tx
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (%v)", ErrLockTimeout, l.wait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("migration lock: %w", ctx.Err())
		case <-time.After(l.poll):
		}
	}
}

// try takes the lock in a new transaction and returns it, or nil when
// another process holds the lock.
func (l *xactLocker) try(ctx context.Context, db *sql.DB) (*sql.Tx, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	// The transaction sits idle while the migrations run; a server-wide
	// idle_in_transaction_session_timeout must not end it (and the lock).
	var locked bool
	_, err = tx.ExecContext(ctx, `SET LOCAL idle_in_transaction_session_timeout = 0`)
	if err == nil {
		err = tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1)`, l.id).Scan(&locked)
	}
	if err != nil || !locked {
		_ = tx.Rollback()
		return nil, err
	}
	return tx, nil
}

// Unlock ends the transaction holding the lock.
func (l *xactLocker) Unlock(context.Context, *sql.DB) error {
	if l.tx == nil {
		return nil
	}
	err := l.tx.Rollback()
	l.tx = nil
	if err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("migration unlock: %w", err)
	}
	return nil
}
