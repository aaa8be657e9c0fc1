package bench

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/internal/cpustat"
)

// CPU time per operation is the figure to compare two builds by on a
// machine that others share: throughput and latency move with their load,
// CPU spent on each operation much less. A benchmark samples the CPU time
// of its own process, of the processes it names (a server it started) and
// of the PostgreSQL backends connected to its database, before and after a
// measurement. PostgreSQL must run on this machine (/proc is read); where it
// does not, the figures are left out.
//
// With them it reads the server's WAL counters (pg_stat_wal, the whole
// server's, which the benchmark's database dominates while it runs): bytes
// of WAL per operation, and WAL syncs per second. When the CPU is not busy
// and the p99 still fails, the syncs tell a disk that slows down (fewer
// syncs a second for the same bytes: each one takes longer) from one that
// keeps up.

// cpuMeter samples CPU time, and the server's WAL beside it.
type cpuMeter struct {
	pool *pgxpool.Pool // lists the backends of the benchmark's database
	pids []int         // further processes, such as a server
}

// cpuSample is the CPU time used so far, per side, and the server's WAL.
type cpuSample struct {
	self, others, db time.Duration
	ok               bool
	wal              walSample
}

// walSample is the server's WAL written and synced so far, at a time.
type walSample struct {
	bytes, syncs int64
	at           time.Time
	ok           bool
}

func newCPUMeter(pool *pgxpool.Pool, pids ...int) *cpuMeter {
	return &cpuMeter{pool: pool, pids: pids}
}

func (m *cpuMeter) sample(ctx context.Context) cpuSample {
	var (
		s   cpuSample
		err error
	)
	s.wal = m.sampleWAL(ctx)
	if s.self, err = cpustat.Self(); err != nil {
		return s
	}
	for _, pid := range m.pids {
		d, err := cpustat.Process(pid)
		if err != nil {
			return s
		}
		s.others += d
	}
	rows, err := m.pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return s
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return s
		}
		name, err := cpustat.Name(pid)
		if err != nil || !strings.HasPrefix(name, "postgres") {
			return s // not on this machine
		}
		d, err := cpustat.Process(pid)
		if err != nil {
			return s
		}
		s.db += d
	}
	s.ok = rows.Err() == nil
	return s
}

// sampleWAL reads the server's WAL counters; a server without
// pg_stat_wal (before PostgreSQL 14) gives none.
func (m *cpuMeter) sampleWAL(ctx context.Context) walSample {
	w := walSample{at: time.Now()}
	err := m.pool.QueryRow(ctx, `SELECT wal_bytes::int8, wal_sync FROM pg_stat_wal`).Scan(&w.bytes, &w.syncs)
	w.ok = err == nil
	return w
}

// perOp returns the CPU per operation between two samples, in µs, as
// figures for a result: the total, the database's and the rest; then the
// WAL's bytes per operation and syncs per second.
func perOp(before, after cpuSample, ops int64, unit string) []KV {
	if ops <= 0 {
		return nil
	}
	var kvs []KV
	if before.ok && after.ok {
		us := func(d time.Duration) float64 { return round(float64(d.Microseconds())/float64(ops), 1) }
		db := after.db - before.db
		app := after.self - before.self + after.others - before.others
		kvs = append(kvs, KV{"cpu_us_per_" + unit, us(db + app)}, KV{"db_cpu_us_per_" + unit, us(db)},
			KV{"app_cpu_us_per_" + unit, us(app)})
	}
	if w0, w1 := before.wal, after.wal; w0.ok && w1.ok && w1.at.After(w0.at) {
		kvs = append(kvs, KV{"wal_bytes_per_" + unit, round(float64(w1.bytes-w0.bytes)/float64(ops), 0)},
			KV{"wal_syncs_per_s", round(float64(w1.syncs-w0.syncs)/w1.at.Sub(w0.at).Seconds(), 0)})
	}
	return kvs
}
