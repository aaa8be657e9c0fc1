package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// On a Citus cluster a group's transaction spans nodes: the transfers,
// postings and no_overdraft balances are on the coordinator, the balance
// shard rows of the other accounts (the platform's fee account, developers'
// pending accounts) on the worker that holds the group's shard. Citus
// commits it in two phases: it prepares the workers' parts, commits the
// coordinator's, then commits the prepared parts. Between the last two a
// reader sees a wallet debited and the fee account not yet credited, and
// Citus has no snapshot that spans nodes.
//
// So every group on Citus holds the fence, a session-level advisory lock,
// in shared mode from its transaction's first statement, before it locks
// anything, until its COMMIT has returned, when every node has committed
// (or its ROLLBACK: the lock is lifted in the pipeline that ends the
// transaction, endGroup). A read that must see the ledger whole (the trial
// balance, the audit, settlement's reconciliation) begins its transaction
// under the fence held exclusively, which waits for the groups in flight
// and holds new ones at their start; it takes its snapshots there, on the
// coordinator and on every worker, and lifts the fence. Its reads then see
// each group whole or not at all, however long they take.
//
// On a single PostgreSQL a transaction is one node's and nothing takes the
// fence.
const fenceKey int64 = 0x6d696e6970617903 // "minipay\x03"

const (
	fenceSharedSQL   = `SELECT pg_advisory_lock_shared($1)`
	unfenceSharedSQL = `SELECT pg_advisory_unlock_shared($1)`
)

// citusFlag learns whether the database is a Citus coordinator, once it
// could ask; after that, every group and account read only loads it.
type citusFlag struct {
	mu    sync.Mutex
	state atomic.Int32 // 0: not known yet, 1: plain PostgreSQL, 2: Citus
}

func (c *citusFlag) get(ctx context.Context, q querier) (bool, error) {
	if s := c.state.Load(); s != 0 {
		return s == 2, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.state.Load(); s != 0 {
		return s == 2, nil
	}
	var on bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')`).Scan(&on); err != nil {
		return false, fmt.Errorf("ledger: is the database Citus: %w", err)
	}
	if on {
		c.state.Store(2)
	} else {
		c.state.Store(1)
	}
	return on, nil
}

// BeginWhole begins a transaction whose snapshot sees the ledger whole: on
// a Citus cluster it is taken under the fence (above), on every node; on a
// single PostgreSQL it is an ordinary transaction. Use repeatable read, or
// the snapshot lasts one statement. On Citus it uses one connection per
// worker, so it may write the coordinator's tables after reading the
// workers'. Commit or Rollback ends it and returns its connection to the
// pool.
func (l *Ledger) BeginWhole(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	citus, err := l.poster.citus.get(ctx, l.db)
	if err != nil {
		return nil, err
	}
	if !citus {
		return l.db.BeginTx(ctx, opts)
	}
	for {
		conn, err := l.db.Acquire(ctx)
		if err != nil {
			return nil, fmt.Errorf("ledger: begin whole: %w", err)
		}
		tx, err := beginFenced(ctx, conn.Conn(), opts)
		if err == nil {
			return &wholeTx{Tx: tx, conn: conn}, nil
		}
		conn.Release()
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55P03" { // lock_not_available
			return nil, fmt.Errorf("ledger: begin whole: take the fence: %w", err)
		}
		if err := l.endLeakedFences(ctx); err != nil {
			return nil, fmt.Errorf("ledger: begin whole: %w", err)
		}
	}
}

// fenceWait bounds one wait for the fence. Groups queue behind a reader
// that waits for it, so a reader that does not get it soon steps back,
// lets them through, ends any session that holds it while idle (a leak,
// below) and tries again.
const fenceWait = 2 * time.Second

// endLeakedFences ends the sessions that hold the fence outside any
// transaction. A group takes the fence inside its transaction and lifts it
// in the pipeline that ends it, so a session idle with the fence is one
// whose COMMIT failed and skipped the lift, behind a pooler in transaction
// mode that then pooled the session (docs/scaling.md); nothing would ever
// lift it.
func (l *Ledger) endLeakedFences(ctx context.Context) error {
	var ended int
	err := l.db.QueryRow(ctx, `
		SELECT count(pg_terminate_backend(a.pid)) FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid
		WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1
			AND k.classid::int8 = $1 AND k.objid::int8 = $2
			AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND a.state = 'idle' AND a.state_change < now() - interval '1 second'`,
		uint64(fenceKey)>>32, fenceKey&0xffffffff).Scan(&ended)
	if err != nil {
		return fmt.Errorf("end sessions that hold the fence while idle: %w", err)
	}
	if ended > 0 {
		l.log.Warn("ledger: ended sessions that held the fence while idle, left by failed commits behind a transaction-mode pooler",
			"sessions", ended)
	}
	return nil
}

// beginFenced takes the fence, begins the transaction and takes its
// snapshots with a read of every shard of ledger_balance_shards, then lifts
// the fence. The transaction uses one connection per worker (sequential
// mode), so its later reads on a worker are in the snapshot taken there
// under the fence, and it may write the coordinator's tables after reading
// the workers' (Citus refuses that after a parallel read). It is one
// simple-protocol message, so that a pooler in transaction mode runs it on
// one server connection; the fence is taken in a transaction of its own,
// committed before the reader's begins, because an isolation level can
// only be set before a transaction's first query. A connection that failed
// on the way may still hold the fence and is closed, which drops it.
func beginFenced(ctx context.Context, conn *pgx.Conn, opts pgx.TxOptions) (pgx.Tx, error) {
	begin := "BEGIN"
	if opts.IsoLevel != "" {
		begin += " ISOLATION LEVEL " + string(opts.IsoLevel)
	}
	if opts.AccessMode != "" {
		begin += " " + string(opts.AccessMode)
	}
	opts.BeginQuery = fmt.Sprintf(`BEGIN; SET LOCAL lock_timeout = %[3]d; SELECT pg_advisory_lock(%[1]d); COMMIT;
		%[2]s; SET LOCAL citus.multi_shard_modify_mode TO sequential;
		SELECT count(*) FROM ledger_balance_shards; SELECT pg_advisory_unlock(%[1]d)`,
		fenceKey, begin, fenceWait.Milliseconds())
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		closeConn(conn)
		return nil, err
	}
	return tx, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// wholeTx is a transaction on a connection acquired for it, which ending
// the transaction returns to the pool.
type wholeTx struct {
	pgx.Tx
	conn *pgxpool.Conn
	once sync.Once
}

func (t *wholeTx) Commit(ctx context.Context) error {
	defer t.release()
	return t.Tx.Commit(ctx)
}

func (t *wholeTx) Rollback(ctx context.Context) error {
	defer t.release()
	return t.Tx.Rollback(ctx)
}

func (t *wholeTx) release() { t.once.Do(t.conn.Release) }
