package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/internal/cpustat"
	"github.com/minipay/minipay/internal/testdb"
)

// BenchmarkGroup measures one group commit of 16, 64 and 256 payments (a
// no_overdraft wallet to a merchant and the hot fee account), without
// clients around it: the poster's write path. Besides time it reports CPU
// per transfer, of this process and of the database backends (read from
// /proc, so PostgreSQL must run on this machine): on a shared machine CPU
// is the figure to compare two versions by.
//
// The sizes run twice: writing transfers and postings with INSERT … unnest
// and with COPY (copy.go), whatever defaultCopyMin would choose.
func BenchmarkGroup(b *testing.B) {
	for _, by := range []struct {
		name    string
		copyMin int
	}{{"insert", 0}, {"copy", 1}} {
		for _, size := range []int{16, 64, 256} {
			b.Run(fmt.Sprintf("%s/%d", by.name, size), func(b *testing.B) { benchGroup(b, size, by.copyMin) })
		}
	}
}

func benchGroup(b *testing.B, size, copyMin int) {
	db := testdb.New(b)
	l := New(db.Pool, Options{})
	defer l.Close()
	l.poster.copyMin = copyMin
	ctx := context.Background()
	bank, _ := l.CreateAccount(ctx, AccountSpec{Code: "bank", Currency: "CNY", NormalBalance: DebitNormal})
	fee, _ := l.CreateAccount(ctx, AccountSpec{Code: "fee", Currency: "CNY", NormalBalance: CreditNormal})
	var wallets, merchants []Account
	for i := 0; i < 2000; i++ {
		w, _ := l.CreateAccount(ctx, AccountSpec{Code: fmt.Sprintf("w%d", i), Currency: "CNY", NormalBalance: CreditNormal, NoOverdraft: true})
		if _, err := l.Post(ctx, Transfer{ID: fmt.Sprintf("f%d", i), Code: "topup", Postings: []Posting{{Account: bank.ID, Debit: 1e12}, {Account: w.ID, Credit: 1e12}}}); err != nil {
			b.Fatal(err)
		}
		wallets = append(wallets, w)
	}
	for i := 0; i < 100; i++ {
		m, _ := l.CreateAccount(ctx, AccountSpec{Code: fmt.Sprintf("m%d", i), Currency: "CNY", NormalBalance: CreditNormal})
		merchants = append(merchants, m)
	}
	b.ResetTimer()
	var (
		stats        BatchStats
		goCPU, dbCPU time.Duration
		wal          int64
	)
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		ops := make([]*op, size)
		for i := range ops {
			w := wallets[(n*size+i*7)%len(wallets)]
			m := merchants[(n+i)%len(merchants)]
			o, err := l.prepare(ctx, Transfer{ID: fmt.Sprintf("t%d-%d", n, i), Code: "payment", Postings: []Posting{
				{Account: w.ID, Debit: 100}, {Account: m.ID, Credit: 97}, {Account: fee.ID, Credit: 3}}})
			if err != nil {
				b.Fatal(err)
			}
			o.ctx, o.done = ctx, make(chan opResult, 1)
			ops[i] = o
		}
		go0, db0 := cpuNow(b, db.Pool)
		lsn0 := walLSN(b, db.Pool)
		b.StartTimer()
		res, failed, err := l.poster.commitGroup(ops, 1, readMode{}, &stats)
		b.StopTimer()
		if err != nil || len(failed) > 0 || res[0].err != nil {
			b.Fatal(err, failed)
		}
		go1, db1 := cpuNow(b, db.Pool)
		goCPU, dbCPU = goCPU+go1-go0, dbCPU+db1-db0
		wal += walLSN(b, db.Pool) - lsn0
		b.StartTimer()
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 / float64(b.N*size) }
	b.ReportMetric(per(stats.Read), "read-µs/transfer")
	b.ReportMetric(per(stats.Write+stats.Commit), "write-µs/transfer")
	b.ReportMetric(per(dbCPU), "db-cpu-µs/transfer")
	b.ReportMetric(per(goCPU), "go-cpu-µs/transfer")
	b.ReportMetric(float64(wal)/float64(b.N*size), "wal-bytes/transfer")
}

// walLSN returns the server's WAL position: the WAL a group writes is a
// measure of its work that no other load on the machine disturbs (other
// databases on the same server do).
func walLSN(b *testing.B, pool *pgxpool.Pool) int64 {
	var lsn int64
	if err := pool.QueryRow(context.Background(), `SELECT pg_current_wal_lsn() - '0/0'`).Scan(&lsn); err != nil {
		b.Fatal(err)
	}
	return lsn
}

// cpuNow returns the CPU time of this process and of the database's
// backends so far.
func cpuNow(b *testing.B, pool *pgxpool.Pool) (goCPU, dbCPU time.Duration) {
	goCPU, err := cpustat.Self()
	if err != nil {
		b.Fatal(err)
	}
	rows, err := pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		d, err := cpustat.Process(pid)
		if err != nil {
			b.Skipf("PostgreSQL is not on this machine: %v", err)
		}
		dbCPU += d
	}
	return goCPU, dbCPU
}
