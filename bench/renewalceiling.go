package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/chart"
)

// The renewals' ceiling is what this database can write of a paid
// renewal's rows when nothing but the rows is asked of it, as the ledger's
// ceiling is for a transfer (ceiling.go): for 1,000 of the benchmark's
// subscriptions a transaction, read with their plans, wallets and
// developers' accounts, it writes each one's transfer and three postings,
// the wallet's balance in place and the developer's and the fee account's
// through a balance shard, the paid invoice, the subscription moved to its
// next period, the payment, the balance transaction and the two events
// (invoice.paid and subscription.updated, their data the rows as JSON),
// all set-based and generated inside the server, durably committed. No
// lock is read, nothing is decided, no client encodes anything. Wallets
// are credited what they are charged in the same update (a top-up folded
// in, no row more), so that the no_overdraft constraint holds whatever the
// stream renews. It runs after the measured pass, on the same tables at
// the same size, with one stream and with two (each its own blocks of
// subscriptions, in order, and its own balance shard), and leaves each
// renewed subscription a period further on.

// renewalCeilingBatch is how many subscriptions one transaction renews.
const renewalCeilingBatch = 1000

// renewalCeilingParts are the statements of a ceiling renewal of one
// block, in order, each named for what it writes. The first selects the
// block (s); the others read s. In the ceiling's one statement they are
// data-modifying CTEs of one WITH; run one by one (renewalCeilingSplit)
// s is a temporary table. Variables (:name) are pgbench's: blk the block,
// batch its size, fee the fee account's internal key, shard the stream's
// balance shard.
var renewalCeilingParts = []struct{ name, sql string }{
	{"read", `SELECT s.id, s.app_id, s.developer_id, s.user_id, s.customer, s.period_index + 1 AS k,
		s.current_period_end AS ps, s.current_period_end + interval '1 month' AS pe,
		p.amount, p.amount * 15 / 100 AS fee, w.seq AS wallet, d.seq AS dev,
		'in_C' || upper(left(md5(s.id || s.current_period_end::text), 26)) AS inv,
		nextval('ledger_transfers_seq') AS seq
	FROM subscriptions s
	JOIN subscription_plans p ON p.id = s.plan_id
	JOIN ledger_accounts w ON w.code = ` + chart.WalletSQL("s.user_id", "'CNY'") + `
	JOIN ledger_accounts d ON d.code = ` + chart.DeveloperPendingSQL("s.developer_id", "'CNY'") + `
	WHERE s.id IN (SELECT 'sub_bench' || lpad(i::text, 8, '0')
		FROM generate_series(:blk * :batch, :blk * :batch + :batch - 1) i)`},
	{"transfer", `INSERT INTO ledger_transfers (seq, id, code, kind, content_hash, metadata, created_at)
	SELECT seq, 'pay_' || inv, 'payment', 'posted', sha256(convert_to(inv, 'UTF8')),
		jsonb_build_object('minipay_app', app_id, 'minipay_option', 'subscription', 'minipay_invoice', inv), now()
	FROM s`},
	{"postings", `INSERT INTO ledger_postings (transfer_seq, idx, account_seq, debits_posted, credits_posted, debits_pending, credits_pending, created_at)
	SELECT s.seq, v.idx, v.acct, v.dp, v.cp, 0, 0, now()
	FROM s CROSS JOIN LATERAL (VALUES (0::int2, s.wallet, s.amount, 0::int8), (1::int2, s.dev, 0::int8, s.amount - s.fee),
		(2::int2, :fee::int8, 0::int8, s.fee)) AS v(idx, acct, dp, cp)`},
	{"wallet", `UPDATE ledger_accounts a SET debits_posted = a.debits_posted + x.dp, credits_posted = a.credits_posted + x.dp
	FROM (SELECT wallet, sum(amount)::int8 AS dp FROM s GROUP BY wallet) x WHERE a.seq = x.wallet`},
	{"balance_shards", `INSERT INTO ledger_balance_shards AS b (account_seq, shard, debits_posted, credits_posted, debits_pending, credits_pending)
	SELECT acct, :shard, 0, sum(cp)::int8, 0, 0
	FROM (SELECT dev AS acct, amount - fee AS cp FROM s UNION ALL SELECT :fee::int8, fee FROM s) x
	GROUP BY acct ORDER BY acct
	ON CONFLICT (account_seq, shard) DO UPDATE SET credits_posted = b.credits_posted + excluded.credits_posted`},
	{"invoice", `INSERT INTO subscription_invoices (id, subscription_id, app_id, developer_id, amount, currency, status, attempt_count,
		period_start, period_end, fee, created_at, paid_at, version)
	SELECT inv, id, app_id, developer_id, amount, 'CNY', 'paid', 1, ps, pe, fee, now(), now(), 1 FROM s`},
	{"subscription", `UPDATE subscriptions x SET status = 'active', period_index = s.k, current_period_start = s.ps, current_period_end = s.pe,
		latest_invoice = s.inv, next_action_at = s.pe - interval '1 day', version = x.version + 1
	FROM s WHERE x.id = s.id`},
	{"payment", `INSERT INTO payments (id, app_id, developer_id, user_id, customer, currency, amount, fee, option, option_version,
		fee_bps, fee_fixed, refund_until, available_on, captured_at)
	SELECT inv, app_id, developer_id, user_id, customer, 'CNY', amount, fee, 'subscription', 'subscription@2026-01-01T00:00:00Z',
		1500, '0', now() + interval '14 days', now() + interval '7 days', now() FROM s`},
	{"balance_transaction", `INSERT INTO balance_transactions (id, developer_id, app_id, type, currency, amount, fee, net, source_id, payment_id, available_on)
	SELECT 'txn_C' || lpad(seq::text, 25, '0'), developer_id, app_id, 'payment', 'CNY', amount, fee, amount - fee, inv, inv,
		now() + interval '7 days' FROM s`},
	// The events' data are the invoice and the subscription as written:
	// in the one statement the CTEs' RETURNING (invoices, moved), one by
	// one the tables themselves.
	{"events", `INSERT INTO events (id, type, developer_id, app_id, object_id, object_version, data)
	SELECT 'evt_C' || lpad((2 * s.seq)::text, 25, '0'), 'invoice.paid', i.developer_id, i.app_id, i.id, i.version,
		jsonb_build_object('object', to_jsonb(i))
	FROM invoices i JOIN s ON s.inv = i.id
	UNION ALL
	SELECT 'evt_C' || lpad((2 * s.seq + 1)::text, 25, '0'), 'subscription.updated', u.developer_id, u.app_id, u.id, u.version,
		jsonb_build_object('object', to_jsonb(u) - 'client_secret' - 'request_hash')
	FROM moved u JOIN s ON s.id = u.id`},
}

// renewalCeilingScript is the pgbench script of the ceiling: the stream's
// next block renewed by one statement, renewalCeilingParts as CTEs. A
// stream takes its blocks in order (i counts its transactions), as the
// renewer takes due subscriptions (they fall due in the order of their
// numbers); the streams' blocks interleave and never meet (nblocks is a
// multiple of streams), so two never renew one block at once.
var renewalCeilingScript = func() string {
	var b strings.Builder
	b.WriteString("\\set blk (:i * :streams + :client_id) % :nblocks\n")
	b.WriteString("\\set i :i + 1\n")
	b.WriteString("\\set shard 60 + :client_id % :streams\n")
	var ctes []string
	for _, p := range renewalCeilingParts {
		switch p.name {
		case "read":
			ctes = append(ctes, "s AS MATERIALIZED ("+p.sql+")")
		case "invoice":
			ctes = append(ctes, "invoices AS ("+p.sql+" RETURNING *)")
		case "subscription":
			ctes = append(ctes, "moved AS ("+p.sql+" RETURNING x.*)")
		case "events": // the last: the statement the CTEs serve
			b.WriteString("BEGIN;\nWITH " + strings.Join(ctes, ",\n") + "\n" + p.sql + ";\n")
		default:
			ctes = append(ctes, p.name+" AS ("+p.sql+")")
		}
	}
	b.WriteString("COMMIT;\n")
	return b.String()
}()

// measureRenewalCeiling runs the renewals' ceiling with one stream, then
// two, for d each, over the n subscriptions the benchmark seeded, then
// splits its database time by statement (renewalCeilingSplit; split is
// empty where that cannot be read). It needs a block of subscriptions per
// stream; with fewer it measures nothing (ok false).
func measureRenewalCeiling(ctx context.Context, pool *pgxpool.Pool, dbURL string, n int, d time.Duration) (c ceilingResult, split []KV, ok bool, err error) {
	// An even number of blocks, so that the two streams' blocks never meet.
	nblocks := n / renewalCeilingBatch / 2 * 2
	if nblocks < 2 {
		return ceilingResult{}, nil, false, nil
	}
	var fee int64
	if err := pool.QueryRow(ctx, `SELECT seq FROM ledger_accounts WHERE code = `+chart.FeesSQL("'CNY'")).Scan(&fee); err != nil {
		return ceilingResult{}, nil, false, fmt.Errorf("renewals' ceiling: the fee account: %w", err)
	}
	for _, streams := range []int{1, 2} {
		args := []string{"-D", "i=0", "-D", "nblocks=" + strconv.Itoa(nblocks), "-D", "streams=" + strconv.Itoa(streams),
			"-D", "batch=" + strconv.Itoa(renewalCeilingBatch), "-D", "fee=" + strconv.FormatInt(fee, 10)}
		s := script{name: "renewal-ceiling", weight: 1, body: renewalCeilingScript}
		tps, err := pgbenchArgs(ctx, dbURL, streams, max(d, time.Second), args, s)
		if err != nil {
			return ceilingResult{}, nil, false, fmt.Errorf("renewals' ceiling, %d streams: %w", streams, err)
		}
		if streams == 1 {
			c.one = tps * renewalCeilingBatch
		} else {
			c.two = tps * renewalCeilingBatch
		}
	}
	split, _, err = renewalCeilingSplit(ctx, pool, fee, min(nblocks, 3))
	if err != nil {
		return ceilingResult{}, nil, false, err
	}
	return c, split, true, nil
}

// renewalCeilingRows names what the ceiling writes per renewal, for the
// report's note.
var renewalCeilingRows = strings.Join([]string{"transfer", "3 postings", "wallet balance", "2 balance shards",
	"invoice", "subscription", "payment", "balance transaction", "2 events"}, ", ")

// renewalCeilingSplit renews blocks of the ceiling one statement at a time
// (renewalCeilingParts) in transactions it rolls back, and returns the
// database's CPU time per renewal that each statement took, averaged over
// the blocks: where the ceiling's time goes, table by table. The backend
// reads its own CPU time (/proc/self/schedstat, through pg_read_file),
// which needs a superuser and the server on Linux; without them ok is false.
func renewalCeilingSplit(ctx context.Context, pool *pgxpool.Pool, fee int64, blocks int) (us []KV, ok bool, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("renewals' ceiling split: %w", err)
	}
	defer conn.Release()
	const cpuSQL = `SELECT split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::int8`
	var probe int64
	if conn.QueryRow(ctx, cpuSQL).Scan(&probe) != nil {
		return nil, false, nil
	}
	sums := make([]time.Duration, len(renewalCeilingParts))
	for blk := 0; blk < blocks; blk++ {
		vars := strings.NewReplacer(":blk", strconv.Itoa(blk), ":batch", strconv.Itoa(renewalCeilingBatch),
			":fee", strconv.FormatInt(fee, 10), ":shard", "59",
			"FROM invoices i", "FROM subscription_invoices i", "FROM moved u", "FROM subscriptions u")
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for i, p := range renewalCeilingParts {
				sql := vars.Replace(p.sql)
				if p.name == "read" {
					sql = "CREATE TEMP TABLE s ON COMMIT DROP AS " + sql
				}
				var before, after int64
				if err := tx.QueryRow(ctx, cpuSQL).Scan(&before); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, sql); err != nil {
					return fmt.Errorf("%s: %w", p.name, err)
				}
				if err := tx.QueryRow(ctx, cpuSQL).Scan(&after); err != nil {
					return err
				}
				sums[i] += time.Duration(after - before)
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			return nil, false, fmt.Errorf("renewals' ceiling split: %w", err)
		}
	}
	n := float64(blocks * renewalCeilingBatch)
	for i, p := range renewalCeilingParts {
		us = append(us, KV{"ceiling_db_us_" + p.name, round(float64(sums[i].Microseconds())/n, 1)})
	}
	return us, true, nil
}

// errRollback ends a transaction that was only measured.
var errRollback = errors.New("rolled back")
