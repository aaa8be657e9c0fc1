package ledger

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
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
	fee, wallets, merchants := benchAccounts(b, l)
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
			ops[i] = handOp(b, ctx, l, Transfer{ID: fmt.Sprintf("t%d-%d", n, i), Code: "payment", Postings: []Posting{
				{Account: w.ID, Debit: 100}, {Account: m.ID, Credit: 97}, {Account: fee.ID, Credit: 3}}})
		}
		go0, db0 := cpuNow(b, db.Pool)
		lsn0 := walLSN(b, db.Pool)
		b.StartTimer()
		res, failed, err := l.poster.commitGroup(ops, &worker{shard: 1}, readMode{}, &stats)
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

// BenchmarkPost measures Post end to end, the poster included: clients
// goroutines post the benchmark's mix (a refund, a payment, a payment with
// a fee to the hot fee account) back to back. One op is one transfer, so
// -benchmem gives the allocations per transfer; CPU per transfer is
// reported for this process and the database's backends.
func BenchmarkPost(b *testing.B) {
	for _, clients := range []int{64, 512} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchPost(b, clients) })
	}
}

func benchPost(b *testing.B, clients int) {
	db := testdb.New(b)
	var sizes, groups atomic.Int64
	l := New(db.Pool, Options{Observe: func(s BatchStats) { sizes.Add(int64(s.Ops)); groups.Add(1) }})
	defer l.Close()
	ctx := context.Background()
	fee, wallets, merchants := benchAccounts(b, l)
	transfer := func(n int) Transfer {
		w, m := wallets[(n*7)%len(wallets)].ID, merchants[n%len(merchants)].ID
		id := "t" + strconv.Itoa(n)
		switch n % 3 {
		case 0:
			return Transfer{ID: id, Code: "refund", Postings: []Posting{{Account: m, Debit: 100}, {Account: w, Credit: 100}}}
		case 1:
			return Transfer{ID: id, Code: "payment", Postings: []Posting{{Account: w, Debit: 100}, {Account: m, Credit: 100}}}
		default:
			return Transfer{ID: id, Code: "payment", Postings: []Posting{{Account: w, Debit: 100}, {Account: m, Credit: 97}, {Account: fee.ID, Credit: 3}}}
		}
	}
	sizes.Store(0)
	groups.Store(0)
	go0, db0 := cpuNow(b, db.Pool)
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1) - 1)
				if n >= b.N {
					return
				}
				if _, err := l.Post(ctx, transfer(n)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	go1, db1 := cpuNow(b, db.Pool)
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(per(db1-db0), "db-cpu-µs/transfer")
	b.ReportMetric(per(go1-go0), "go-cpu-µs/transfer")
	if g := groups.Load(); g > 0 {
		b.ReportMetric(float64(sizes.Load())/float64(g), "transfers/group")
	}
}

// benchAccounts makes the group benchmarks' accounts: a fee account, 2,000
// no_overdraft wallets funded far beyond what a run spends, 100 merchants.
func benchAccounts(b *testing.B, l *Ledger) (fee Account, wallets, merchants []Account) {
	ctx := context.Background()
	account := func(code string, normal NormalBalance, noOverdraft bool) Account {
		a, err := l.CreateAccount(ctx, AccountSpec{Code: code, Currency: "CNY", NormalBalance: normal, NoOverdraft: noOverdraft})
		if err != nil {
			b.Fatal(err)
		}
		return a
	}
	bank := account("bank", DebitNormal, false)
	fee = account("fee", CreditNormal, false)
	for i := 0; i < 2000; i++ {
		w := account(fmt.Sprintf("w%d", i), CreditNormal, true)
		if _, err := l.Post(ctx, Transfer{ID: fmt.Sprintf("f%d", i), Code: "topup", Postings: []Posting{{Account: bank.ID, Debit: 1e12}, {Account: w.ID, Credit: 1e12}}}); err != nil {
			b.Fatal(err)
		}
		wallets = append(wallets, w)
	}
	for i := 0; i < 100; i++ {
		merchants = append(merchants, account(fmt.Sprintf("m%d", i), CreditNormal, false))
	}
	return fee, wallets, merchants
}
