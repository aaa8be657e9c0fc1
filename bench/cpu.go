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

// cpuMeter samples CPU time.
type cpuMeter struct {
	pool *pgxpool.Pool // lists the backends of the benchmark's database
	pids []int         // further processes, such as a server
}

// cpuSample is the CPU time used so far, per side.
type cpuSample struct {
	self, others, db time.Duration
	ok               bool
}

func newCPUMeter(pool *pgxpool.Pool, pids ...int) *cpuMeter {
	return &cpuMeter{pool: pool, pids: pids}
}

func (m *cpuMeter) sample(ctx context.Context) cpuSample {
	var (
		s   cpuSample
		err error
	)
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

// perOp returns the CPU per operation between two samples, in µs, as
// figures for a result: the total, the database's and the rest.
func perOp(before, after cpuSample, ops int64, unit string) []KV {
	if !before.ok || !after.ok || ops <= 0 {
		return nil
	}
	us := func(d time.Duration) float64 { return round(float64(d.Microseconds())/float64(ops), 1) }
	db := after.db - before.db
	app := after.self - before.self + after.others - before.others
	return []KV{
		{"cpu_us_per_" + unit, us(db + app)},
		{"db_cpu_us_per_" + unit, us(db)},
		{"app_cpu_us_per_" + unit, us(app)},
	}
}
