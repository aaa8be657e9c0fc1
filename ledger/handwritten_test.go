package ledger

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// handOp prepares tr as Post does and makes it ready for a test to write
// by hand, bypassing the poster's queues: its result goes to its done
// channel, which holds one.
func handOp(tb testing.TB, ctx context.Context, l *Ledger, tr Transfer) *op {
	tb.Helper()
	o, err := l.prepare(ctx, tr)
	if err != nil {
		tb.Fatal(err)
	}
	o.ctx, o.done = ctx, make(chan opResult, 1)
	return o
}

// groupConn is a connection for a group a test writes by hand, released
// when the test ends.
func groupConn(tb testing.TB, ctx context.Context, pool *pgxpool.Pool) *pgx.Conn {
	tb.Helper()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(conn.Release)
	return conn.Conn()
}
