package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/internal/pgdb"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/subscriptions"
)

// The renewals workload: benchSubscriptions monthly subscriptions
// (--subscriptions overrides the count) of renewalApps apps, all due now,
// every tenth wallet empty so that dunning runs for it.
const (
	benchSubscriptions = 1_000_000
	renewalApps        = 10_000
	latSample          = 1 << 16
)

// benchRenewals seeds due subscriptions with set-based SQL, written as
// signing would have left them a month ago (wallets funded by top-ups
// through the ledger's tables, audited), then measures one pass of the
// renewer: every subscription moved to its next period with an open
// invoice, every invoice charged through the ledger's poster, the short
// wallets' failures recorded for their retries.
func benchRenewals(ctx context.Context, o Options) (*Result, error) {
	n := benchSubscriptions
	if o.Subscriptions < 0 {
		return nil, fmt.Errorf("--subscriptions: want a positive count, got %d", o.Subscriptions)
	}
	if o.Subscriptions > 0 {
		n = o.Subscriptions
	}
	nApps := min(renewalApps, n)
	dbURL, drop, err := freshDatabase(ctx, o.DatabaseURL, "renewals", o.Keep)
	if err != nil {
		return nil, err
	}
	defer drop()
	pool, _, err := pgdb.Setup(ctx, dbURL, 32)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	var (
		groupsMu sync.Mutex
		groups   []int
		inLedger time.Duration
	)
	l := ledger.New(pool, ledger.Options{Workers: o.Workers, Linger: o.Linger, Observe: func(s ledger.BatchStats) {
		groupsMu.Lock()
		groups = append(groups, s.Ops)
		inLedger += s.Duration
		groupsMu.Unlock()
	}})
	defer l.Close()
	fmt.Fprintf(o.Stderr, "seeding %d due subscriptions of %d apps…\n", n, nApps)
	seedStart := time.Now()
	due, err := seedRenewals(ctx, pool, l, n, nApps, o.AnchorSpread)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	audit, err := l.Audit(ctx)
	if err != nil || !audit.OK() {
		return nil, fmt.Errorf("seeded ledger fails its audit: %+v %v", audit, err)
	}
	fmt.Fprintf(o.Stderr, "seeded in %s; the ledger audits clean (%d transfers)\n", time.Since(seedStart).Round(time.Millisecond), audit.Transfers)
	groupsMu.Lock()
	groups, inLedger = nil, 0
	groupsMu.Unlock()

	var (
		latMu sync.Mutex
		lat   []time.Duration
		seen  int
	)
	svc := subscriptions.New(pool, l, apps.New(pool, []byte("bench secret, 32 bytes long.....")), payments.New(pool, l),
		subscriptions.Options{Log: discardLog(), ObserveCharge: func(d time.Duration) {
			latMu.Lock()
			// A uniform sample of at most latSample charges (reservoir
			// sampling): a million would hold 8 MB for the whole run.
			if seen++; len(lat) < latSample {
				lat = append(lat, d)
			} else if j := rand.IntN(seen); j < latSample {
				lat[j] = d
			}
			latMu.Unlock()
		}})
	stopProfile, err := profile(o.CPUProfile)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	resetPeakRSS()
	peak := watchHeap()
	cpu := newCPUMeter(pool)
	before := cpu.sample(ctx)
	start := time.Now()
	st, err := svc.RenewDue(ctx, due.Add(time.Second))
	elapsed := time.Since(start)
	after := cpu.sample(ctx)
	stopProfile()
	heapPeak := peak()
	rssPeak := peakRSS()
	if err != nil {
		return nil, err
	}
	if err := writeHeapProfile(o.MemProfile); err != nil {
		return nil, err
	}
	short := (n + 9) / 10
	if st.Paid != n-short || st.Failed != short {
		return nil, fmt.Errorf("renewed %d paid and %d failed, want %d and %d", st.Paid, st.Failed, n-short, short)
	}
	if audit, err = l.Audit(ctx); err != nil || !audit.OK() {
		return nil, fmt.Errorf("ledger after the renewals fails its audit: %+v %v", audit, err)
	}
	renewals := st.Paid + st.Failed
	pcts := latencies{lat}.percentiles(0.5, 0.99)
	slices.Sort(groups)
	groupMean := 0.0
	for _, g := range groups {
		groupMean += float64(g)
	}
	if len(groups) > 0 {
		groupMean /= float64(len(groups))
	}
	res := &Result{Kind: "renewals", Unit: "renewals", Clients: 1, Duration: elapsed,
		Throughput: float64(renewals) / elapsed.Seconds(), P50: pcts[0], P99: pcts[1]}
	share := func(d time.Duration) float64 { return round(d.Seconds()/elapsed.Seconds(), 3) }
	res.Extra = append(res.Extra,
		KV{"subscriptions", n}, KV{"apps", nApps}, KV{"paid", st.Paid}, KV{"failed", st.Failed},
		KV{"step_share", share(st.StepTime)}, KV{"ledger_share", share(st.ChargeTime)}, KV{"dunning_share", share(st.FailTime)},
		KV{"ledger_group_s", round(inLedger.Seconds(), 2)}, KV{"groups", len(groups)},
		KV{"group_mean", round(groupMean, 1)}, KV{"group_p50", pick(groups, 0.5)}, KV{"group_p99", pick(groups, 0.99)},
		KV{"group_max", pick(groups, 1)},
		KV{"peak_heap_mb", round(float64(heapPeak)/(1<<20), 1)}, KV{"peak_rss_mb", round(float64(rssPeak)/(1<<10), 1)},
		KV{"target", ">= 10,000 renewals/s, peak RSS < 300 MB"})
	res.Extra = append(res.Extra, perOp(before, after, int64(renewals), "renewal")...)
	res.Notes = append(res.Notes,
		"a renewal is a subscription moved to its next period with its invoice, and that invoice charged (paid, or failed and scheduled for its retry)",
		"ledger_share: time spent charging through the ledger's poster; step_share: opening periods and invoices; dunning_share: recording failed charges",
		"p50/p99: one charge, from its hand-over to the ledger to its answer")
	if o.NoBaseline {
		return res, nil
	}
	c, split, ok, err := measureRenewalCeiling(ctx, pool, dbURL, n, o.Duration/2)
	if err != nil {
		return nil, err
	}
	if ok {
		res.Extra = append(res.Extra,
			KV{"ceiling_tps", round(c.tps(), 1)},
			KV{"ceiling_tps_1_stream", round(c.one, 1)},
			KV{"ceiling_tps_2_streams", round(c.two, 1)},
			KV{"ceiling_ratio", round(res.Throughput/c.tps(), 3)})
		res.Notes = append(res.Notes, "ceiling: a paid renewal's rows ("+renewalCeilingRows+") written set-based by the database itself, "+
			"1,000 renewals a transaction, by one stream and by two; ceiling_ratio is throughput over the better")
		res.Extra = append(res.Extra, split...)
		if len(split) > 0 {
			res.Notes = append(res.Notes, "ceiling_db_us_*: the database's CPU per renewal in each of the ceiling's statements, run one by one on 3 blocks")
		}
	}
	return res, nil
}

// pick is the value at fraction p of sorted vs (0 when empty).
func pick(vs []int, p float64) int {
	if len(vs) == 0 {
		return 0
	}
	return vs[int(p*float64(len(vs)-1))]
}

// seedRenewals writes n subscriptions of nApps apps (a plan each), each by
// its own user whose wallet holds one period's amount, but every tenth,
// which is empty. They were signed one after another over spread, the
// last a month ago, as a platform's are (the later a subscription's
// number, the later it was signed), so each falls due at its own time,
// in the order of its number. It returns when the last falls due.
func seedRenewals(ctx context.Context, pool *pgxpool.Pool, l *ledger.Ledger, n, nApps int, spread time.Duration) (time.Time, error) {
	specs := []ledger.AccountSpec{chart.FundingAccount("CNY"), chart.FeesAccount("CNY")}
	for a := 0; a < nApps; a++ {
		specs = append(specs, chart.DeveloperPendingAccount(benchDev(a), "CNY"))
	}
	if err := ensureAll(ctx, l, specs); err != nil {
		return time.Time{}, err
	}
	anchor := subscriptions.Boundary(time.Now().Add(-time.Minute).Truncate(time.Second), subscriptions.IntervalMonth, 1, -1)
	due := subscriptions.Boundary(anchor, subscriptions.IntervalMonth, 1, 1)
	tx, err := pool.Begin(ctx)
	if err != nil {
		return time.Time{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	args := []any{n, nApps, anchor, due, spread.Microseconds()}
	for _, q := range renewalSeedSQL {
		// Each statement takes the parameters it names, renumbered from $1.
		var use []any
		for i := range args {
			if p := "$" + strconv.Itoa(i+1); strings.Contains(q, p) {
				use = append(use, args[i])
				q = strings.ReplaceAll(q, p, "$"+strconv.Itoa(len(use))+"§")
			}
		}
		q = strings.ReplaceAll(q, "§", "")
		if _, err := tx.Exec(ctx, q, use...); err != nil {
			return time.Time{}, fmt.Errorf("%w\n%s", err, q)
		}
	}
	return due, tx.Commit(ctx)
}

// renewalSeedSQL is the set-based seed; $1 subscriptions, $2 apps, $3 the
// last anchor (a month ago), $4 when it falls due, $5 the spread of the
// anchors in µs. Amounts 1.00–9.99 CNY per app's plan. A period ends a
// month after its anchor by PostgreSQL's month arithmetic in UTC, which
// agrees with the renewer's (Boundary) for one month: the same day of the
// next month, or its last day when it has no such day.
var renewalSeedSQL = []string{
	`SET LOCAL TimeZone = 'UTC'`,
	`CREATE TEMP TABLE bsubs ON COMMIT DROP AS
	 SELECT i, 'sub_bench' || lpad(i::text, 8, '0') AS sub, 'bw' || i AS usr, i % $2 AS a,
	        100 + ((i % $2)::bigint * 7919) % 900 AS amount, i % 10 <> 0 AS funded,
	        $3::timestamptz - (($1::int - 1 - i) * $5::bigint / $1::int) * interval '1 microsecond' AS anchor
	 FROM generate_series(0, $1::int - 1) i`,
	`INSERT INTO subscription_plans (id, app_id, developer_id, name, amount, currency, option, interval, interval_count,
	   trial_period_days, active, created_at)
	 SELECT 'plan_bench' || lpad(a::text, 6, '0'), 'app_bench' || lpad(a::text, 6, '0'), 'dev_bench' || lpad(a::text, 6, '0'),
	   'Membership', 100 + (a::bigint * 7919) % 900, 'CNY', 'subscription', 'month', 1, 0, true, now()
	 FROM generate_series(0, $2::int - 1) a`,
	`INSERT INTO ledger_accounts (id, code, currency, normal_balance, no_overdraft)
	 SELECT 'acct_bw' || lpad(i::text, 8, '0'), ` + chart.WalletSQL("usr", "'CNY'") + `, 'CNY', 'credit', true FROM bsubs`,
	`CREATE TEMP TABLE btr ON COMMIT DROP AS
	 SELECT nextval('ledger_transfers_seq') AS seq, 'topup_bench_' || usr AS id, usr, amount FROM bsubs WHERE funded`,
	`INSERT INTO ledger_transfers (seq, id, code, kind, content_hash, metadata, created_at)
	 SELECT seq, id, 'topup', 'posted', sha256(convert_to(id, 'UTF8')), NULL, now() FROM btr`,
	`INSERT INTO ledger_postings (transfer_seq, idx, account_seq, debits_posted, credits_posted, debits_pending, credits_pending, created_at)
	 SELECT t.seq, 0, f.seq, t.amount, 0, 0, 0, now() FROM btr t, ledger_accounts f WHERE f.code = ` + chart.FundingSQL("'CNY'") + `
	 UNION ALL
	 SELECT t.seq, 1, w.seq, 0, t.amount, 0, 0, now() FROM btr t JOIN ledger_accounts w ON w.code = ` + chart.WalletSQL("t.usr", "'CNY'"),
	`UPDATE ledger_accounts w SET credits_posted = t.amount FROM btr t WHERE w.code = ` + chart.WalletSQL("t.usr", "'CNY'"),
	`INSERT INTO ledger_balance_shards (account_seq, shard, debits_posted, credits_posted, debits_pending, credits_pending)
	 SELECT f.seq, 0, (SELECT coalesce(sum(amount), 0) FROM btr), 0, 0, 0 FROM ledger_accounts f WHERE f.code = ` + chart.FundingSQL("'CNY'"),
	`INSERT INTO subscriptions (id, app_id, developer_id, plan_id, status, client_secret, user_id, customer, metadata,
	   billing_anchor, period_index, current_period_start, current_period_end, notice_for, next_action_at, expires_at, created_at)
	 SELECT sub, 'app_bench' || lpad(a::text, 6, '0'), 'dev_bench' || lpad(a::text, 6, '0'), 'plan_bench' || lpad(a::text, 6, '0'),
	   'active', 'secret', usr, 'ou_' || usr, '{}', anchor, 0, anchor, anchor + interval '1 month', anchor + interval '1 month',
	   anchor + interval '1 month', anchor, anchor
	 FROM bsubs`,
	`ANALYZE`,
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
