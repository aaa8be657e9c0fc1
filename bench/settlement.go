package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/internal/pgdb"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/settlement"
)

// The settlement workload: benchPayments matured payments (--payments
// overrides the count) across benchDevelopers developers, one in a hundred
// half refunded, then one settlement run and its report.
const (
	benchPayments   = 1_000_000
	benchDevelopers = 10_000
	benchPayers     = 1_000
)

// benchSettlement seeds the ledger and balance transactions with set-based
// SQL, written exactly as checkout would write them (and audited), then
// measures one settlement run plus the export of its report.
// benchMinimumPayout is the settlement's minimum payout in the benchmark,
// in minor units of CNY (1.00 CNY).
const benchMinimumPayout = 100

func benchSettlement(ctx context.Context, o Options) (*Result, error) {
	payments := benchPayments
	if o.Payments < 0 {
		return nil, fmt.Errorf("--payments: want a positive count, got %d", o.Payments)
	}
	if o.Payments > 0 {
		payments = o.Payments
	}
	devs := min(benchDevelopers, payments)
	dbURL, drop, err := freshDatabase(ctx, o.DatabaseURL, "settlement", o.Keep)
	if err != nil {
		return nil, err
	}
	defer drop()
	pool, _, err := pgdb.Setup(ctx, dbURL, 32)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	l := ledger.New(pool, ledger.Options{Workers: o.Workers, Linger: o.Linger})
	defer l.Close()
	fmt.Fprintf(o.Stderr, "seeding %d payments across %d developers…\n", payments, devs)
	seedStart := time.Now()
	if err := seedSettlement(ctx, pool, l, payments, devs); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	audit, err := l.Audit(ctx)
	if err != nil || !audit.OK() {
		return nil, fmt.Errorf("seeded ledger fails its audit: %+v %v", audit, err)
	}
	fmt.Fprintf(o.Stderr, "seeded in %s; the ledger audits clean (%d transfers)\n", time.Since(seedStart).Round(time.Millisecond), audit.Transfers)

	// Developers whose net is below the minimum payout are carried
	// forward, not paid: with one payment each, a half-refunded payment of
	// 1.00 CNY nets less than that. The benchmark sets the minimum itself,
	// so that the count it wants follows the one settlement applies.
	var payable int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT developer_id FROM balance_transactions
		GROUP BY developer_id HAVING sum(net) >= $1) d`, benchMinimumPayout).Scan(&payable); err != nil {
		return nil, fmt.Errorf("developers to pay: %w", err)
	}
	svc := settlement.New(pool, l)
	svc.SetOptions(settlement.Options{MinimumPayout: map[string]int64{"CNY": benchMinimumPayout}})
	stopProfile, err := profile(o.CPUProfile)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	resetPeakRSS()
	peak := watchHeap()
	start := time.Now()
	run, _, err := svc.Settle(ctx, time.Now(), true)
	if err != nil {
		stopProfile()
		return nil, err
	}
	runTime := time.Since(start)
	var size countingWriter
	if err := svc.WriteReport(ctx, run.ID, false, &size); err != nil {
		stopProfile()
		return nil, err
	}
	exportTime := time.Since(start) - runTime
	stopProfile()
	heapPeak := peak()
	rssPeak := peakRSS()
	var detail countingWriter
	detailStart := time.Now()
	if err := svc.WriteReport(ctx, run.ID, true, &detail); err != nil {
		return nil, err
	}
	detailTime := time.Since(detailStart)

	if run.Status != settlement.RunCompleted || run.PayoutCount != payable {
		return nil, fmt.Errorf("run %s is %s with %d payouts, want completed with %d: %v", run.ID, run.Status, run.PayoutCount, payable, run.Mismatch)
	}
	if audit, err = l.Audit(ctx); err != nil || !audit.OK() {
		return nil, fmt.Errorf("ledger after the run fails its audit: %+v %v", audit, err)
	}
	total := runTime + exportTime
	res := &Result{Kind: "settlement", Unit: "payments", Clients: 1, Duration: total,
		Throughput: float64(payments) / total.Seconds()}
	res.Extra = append(res.Extra,
		KV{"payments", payments}, KV{"developers", devs}, KV{"payouts", run.PayoutCount},
		KV{"run_s", round(runTime.Seconds(), 2)}, KV{"export_s", round(exportTime.Seconds(), 3)},
		KV{"report_bytes", size.n.Load()},
		KV{"detail_export_s", round(detailTime.Seconds(), 2)}, KV{"detail_bytes", detail.n.Load()},
		KV{"peak_heap_mb", round(float64(heapPeak)/(1<<20), 1)}, KV{"peak_rss_mb", round(float64(rssPeak)/(1<<10), 1)},
		KV{"target", "run+export < 60 s, peak memory < 200 MB"})
	res.Notes = append(res.Notes, "p50/p99 are not measured: one run is one operation; throughput is payments settled and exported per second",
		"peak memory covers the run and the summary export; the detail export is timed separately")
	return res, nil
}

// seedSettlement writes payments (and some refunds) as checkout does: one
// ledger transfer per payment from a wallet to the developer's pending
// balance and the fee account, funded by top-ups, the balances those
// postings imply, the sessions and the developers' balance transactions,
// already matured.
func seedSettlement(ctx context.Context, pool *pgxpool.Pool, l *ledger.Ledger, payments, devs int) error {
	// Accounts through the ledger, so they are exactly what it makes.
	specs := []ledger.AccountSpec{
		{Code: chart.Funding("CNY"), Currency: "CNY", NormalBalance: ledger.DebitNormal},
		{Code: chart.Fees("CNY"), Currency: "CNY", NormalBalance: ledger.CreditNormal},
	}
	for u := 0; u < benchPayers; u++ {
		specs = append(specs, ledger.AccountSpec{Code: chart.Wallet(fmt.Sprintf("bu%d", u), "CNY"), Currency: "CNY", NormalBalance: ledger.CreditNormal, NoOverdraft: true})
	}
	for d := 0; d < devs; d++ {
		specs = append(specs, ledger.AccountSpec{Code: chart.DeveloperPending(benchDev(d), "CNY"), Currency: "CNY", NormalBalance: ledger.CreditNormal})
	}
	if err := ensureAll(ctx, l, specs); err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	args := []any{payments, devs, benchPayers}
	for _, q := range seedSQL {
		n := 0 // each statement takes the parameters it names
		for k := len(args); k > 0 && n == 0; k-- {
			if strings.Contains(q, "$"+strconv.Itoa(k)) {
				n = k
			}
		}
		if _, err := tx.Exec(ctx, q, args[:n]...); err != nil {
			return fmt.Errorf("%w\n%s", err, q)
		}
	}
	return tx.Commit(ctx)
}

func benchDev(d int) string { return fmt.Sprintf("dev_bench%06d", d) }

func ensureAll(ctx context.Context, l *ledger.Ledger, specs []ledger.AccountSpec) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  atomic.Int64
	)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(specs)); i = next.Add(1) - 1 {
				if _, err := l.EnsureAccount(ctx, specs[i]); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// seedSQL is the set-based seed; $1 payments, $2 developers, $3 payers.
// Amounts: 1.00–9.99 CNY, the goods fee (0.6 %, half up); every 100th
// payment is half refunded with its share of the fee, as checkout computes.
var seedSQL = []string{
	`CREATE TEMP TABLE pays ON COMMIT DROP AS
	 SELECT i, 'cs_bench' || lpad(i::text, 10, '0') AS sess,
	        'dev_bench' || lpad((i % $2)::text, 6, '0') AS dev,
	        'app_bench' || lpad((i % $2)::text, 6, '0') AS app,
	        'bu' || (i % $3) AS payer,
	        100 + (i::bigint * 7919) % 900 AS amount,
	        ((100 + (i::bigint * 7919) % 900) * 60 + 5000) / 10000 AS fee,
	        CASE WHEN i % 100 = 0 THEN (100 + (i::bigint * 7919) % 900) / 2 ELSE 0 END AS refunded
	 FROM generate_series(0, $1::int - 1) i`,
	`ALTER TABLE pays ADD COLUMN fee_refunded bigint`,
	`UPDATE pays SET fee_refunded = round(fee::numeric * refunded / amount)::bigint WHERE refunded > 0`,
	// Transfers: a top-up per payer, a payment per session, a refund where refunded.
	`CREATE TEMP TABLE tr ON COMMIT DROP AS
	 SELECT nextval('ledger_transfers_seq') AS seq, id, code, payer, dev, amount, fee, kind FROM (
	   SELECT 'topup_bench_' || payer AS id, 'topup' AS code, payer, NULL::text AS dev,
	          sum(amount) AS amount, 0::bigint AS fee, 't' AS kind FROM pays GROUP BY payer
	   UNION ALL SELECT '` + chart.PaymentPrefix + `' || sess, 'payment', payer, dev, amount, fee, 'p' FROM pays
	   UNION ALL SELECT '` + chart.RefundPrefix + `re_' || sess, 'refund', payer, dev, refunded, fee_refunded, 'r' FROM pays WHERE refunded > 0) x`,
	`INSERT INTO ledger_transfers (seq, id, code, kind, content_hash, metadata, created_at)
	 SELECT seq, id, code, 'posted', sha256(convert_to(id, 'UTF8')), NULL, now() FROM tr`,
	`INSERT INTO ledger_postings (transfer_seq, idx, account_seq, debits_posted, credits_posted, debits_pending, credits_pending, created_at)
	 SELECT p.seq, p.idx, a.seq, p.d, p.c, 0, 0, now() FROM (
	   SELECT seq, 0 AS idx, ` + chart.FundingSQL("'CNY'") + ` AS code, amount AS d, 0::bigint AS c FROM tr WHERE kind = 't'
	   UNION ALL SELECT seq, 1, ` + chart.WalletSQL("payer", "'CNY'") + `, 0, amount FROM tr WHERE kind = 't'
	   UNION ALL SELECT seq, 0, ` + chart.WalletSQL("payer", "'CNY'") + `, amount, 0 FROM tr WHERE kind = 'p'
	   UNION ALL SELECT seq, 1, ` + chart.DeveloperPendingSQL("dev", "'CNY'") + `, 0, amount - fee FROM tr WHERE kind = 'p' AND amount > fee
	   UNION ALL SELECT seq, 2, ` + chart.FeesSQL("'CNY'") + `, 0, fee FROM tr WHERE kind = 'p' AND fee > 0
	   UNION ALL SELECT seq, 0, ` + chart.WalletSQL("payer", "'CNY'") + `, 0, amount FROM tr WHERE kind = 'r'
	   UNION ALL SELECT seq, 1, ` + chart.DeveloperPendingSQL("dev", "'CNY'") + `, amount - fee, 0 FROM tr WHERE kind = 'r' AND amount > fee
	   UNION ALL SELECT seq, 2, ` + chart.FeesSQL("'CNY'") + `, fee, 0 FROM tr WHERE kind = 'r' AND fee > 0) p
	 JOIN ledger_accounts a ON a.code = p.code`,
	// Balances as the poster keeps them: no_overdraft accounts in their own
	// columns, the others in a shard row.
	`CREATE TEMP TABLE sums ON COMMIT DROP AS
	 SELECT account_seq, sum(debits_posted)::bigint AS d, sum(credits_posted)::bigint AS c FROM ledger_postings GROUP BY account_seq`,
	`UPDATE ledger_accounts a SET debits_posted = s.d, credits_posted = s.c FROM sums s WHERE s.account_seq = a.seq AND a.no_overdraft`,
	`INSERT INTO ledger_balance_shards (account_seq, shard, debits_posted, credits_posted, debits_pending, credits_pending)
	 SELECT s.account_seq, 0, s.d, s.c, 0, 0 FROM sums s JOIN ledger_accounts a ON a.seq = s.account_seq WHERE NOT a.no_overdraft`,
	`INSERT INTO checkout_sessions (id, app_id, developer_id, status, capture_method, currency, amount_total,
	   fee, option, option_version, fee_bps, fee_fixed, client_reference_id,
	   client_secret, metadata, user_id, customer, expires_at, completed_at, created_at)
	 SELECT sess, app, dev, 'complete', 'automatic', 'CNY', amount, fee, 'goods', 'goods@2026-01-01T00:00:00Z', 60, '0',
	   'order-' || i, 'secret', jsonb_build_object('order', i::text), payer, 'ou_' || payer,
	   now(), now() - interval '2 days', now() - interval '2 days' FROM pays`,
	`INSERT INTO payments (id, app_id, developer_id, user_id, customer, currency, amount, fee, option, option_version,
	   fee_bps, fee_fixed, amount_refunded, fee_refunded, client_reference_id, metadata, refund_until, available_on, captured_at)
	 SELECT sess, app, dev, payer, 'ou_' || payer, 'CNY', amount, fee, 'goods', 'goods@2026-01-01T00:00:00Z', 60, '0',
	   refunded, coalesce(fee_refunded, 0), 'order-' || i, jsonb_build_object('order', i::text), now() + interval '1 year',
	   now() - interval '1 day', now() - interval '2 days' FROM pays`,
	`INSERT INTO refunds (id, payment_id, app_id, developer_id, currency, amount, fee_refunded, status, created_at)
	 SELECT 're_' || sess, sess, app, dev, 'CNY', refunded, fee_refunded, 'succeeded', now() - interval '1 day' FROM pays WHERE refunded > 0`,
	`INSERT INTO balance_transactions (id, developer_id, app_id, type, currency, amount, fee, net, source_id, payment_id, available_on, created_at)
	 SELECT 'txn_p' || lpad(i::text, 10, '0'), dev, app, 'payment', 'CNY', amount, fee, amount - fee, sess, sess,
	   now() - interval '1 day', now() - interval '2 days' FROM pays
	 UNION ALL
	 SELECT 'txn_r' || lpad(i::text, 10, '0'), dev, app, 'refund', 'CNY', -refunded, -fee_refunded, -(refunded - fee_refunded),
	   're_' || sess, sess, now() - interval '1 day', now() - interval '1 day' FROM pays WHERE refunded > 0`,
	`ANALYZE`,
}

// countingWriter counts what a report writes, without keeping it.
type countingWriter struct{ n atomic.Int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)

// watchHeap samples the Go heap until the returned function is called,
// which returns the peak seen.
func watchHeap() func() uint64 {
	var (
		peakBytes atomic.Uint64
		done      = make(chan struct{})
		stopped   = make(chan struct{})
	)
	go func() {
		defer close(stopped)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakBytes.Load() {
				peakBytes.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return peakBytes.Load()
	}
}

// resetPeakRSS restarts the kernel's peak-RSS count (Linux), so peakRSS
// covers only what follows.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is the process's peak resident set in KiB (VmHWM), 0 if unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			v, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return v
		}
	}
	return 0
}
