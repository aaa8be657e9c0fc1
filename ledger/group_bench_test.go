package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
)

// BenchmarkGroup measures one group commit of 256 transfers, without
// clients around it: the database cost of the poster's write path.
func BenchmarkGroup(b *testing.B) {
	for _, size := range []int{16, 64, 256} {
		b.Run(fmt.Sprint(size), func(b *testing.B) { benchGroup(b, size) })
	}
}

func benchGroup(b *testing.B, size int) {
	db := testdb.New(b)
	l := New(db.Pool, Options{})
	defer l.Close()
	ctx := context.Background()
	bank, _ := l.CreateAccount(ctx, AccountSpec{Code: "bank", Currency: "CNY", NormalBalance: DebitNormal})
	fee, _ := l.CreateAccount(ctx, AccountSpec{Code: "fee", Currency: "CNY", NormalBalance: CreditNormal})
	var wallets []Account
	for i := 0; i < 2000; i++ {
		w, _ := l.CreateAccount(ctx, AccountSpec{Code: fmt.Sprintf("w%d", i), Currency: "CNY", NormalBalance: CreditNormal, NoOverdraft: true})
		if _, err := l.Post(ctx, Transfer{ID: fmt.Sprintf("f%d", i), Code: "topup", Postings: []Posting{{Account: bank.ID, Debit: 1e12}, {Account: w.ID, Credit: 1e12}}}); err != nil {
			b.Fatal(err)
		}
		wallets = append(wallets, w)
	}
	b.ResetTimer()
	var stats BatchStats
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		ops := make([]*op, size)
		for i := range ops {
			w := wallets[(n*size+i*7)%len(wallets)]
			o, err := l.prepare(ctx, Transfer{ID: fmt.Sprintf("t%d-%d", n, i), Code: "payment", Postings: []Posting{{Account: w.ID, Debit: 100}, {Account: fee.ID, Credit: 100}}})
			if err != nil {
				b.Fatal(err)
			}
			o.ctx, o.done = ctx, make(chan opResult, 1)
			ops[i] = o
		}
		b.StartTimer()
		start := time.Now()
		res, failed, err := l.poster.commitGroup(ops, 1, false, &stats)
		if err != nil || len(failed) > 0 || res[0].err != nil {
			b.Fatal(err, failed)
		}
		_ = start
	}
	b.ReportMetric(float64(stats.Read.Microseconds())/float64(b.N), "read-µs/op")
	b.ReportMetric(float64(stats.Write.Microseconds())/float64(b.N), "write-µs/op")
	b.ReportMetric(float64(stats.Commit.Microseconds())/float64(b.N), "commit-µs/op")
}
