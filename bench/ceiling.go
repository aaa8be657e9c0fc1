package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The ceiling is what this database can write of the ledger's rows when
// nothing but the rows is asked of it: the transfers, postings and balance
// changes of the benchmark's workload (refunds, payments, payments with a
// fee to the hot fee account, no_overdraft wallets updated in place, the
// other accounts through balance shards), generated inside the server and
// written set-based, 1,000 transfers a transaction, durably committed. No
// locks are read, nothing is decided, no client encodes anything: a ledger
// that reached it would spend nothing on anything but the rows. It is
// measured with one stream and with two (each its own wallets and shard, as
// the poster's workers have), and the better of the two is the ceiling.

const ceilingBatch = 1000

// ceilingScript writes one transaction of ceilingBatch transfers. The
// variables name the accounts' internal keys: wallets w0 … w0+wn-1 and
// merchants m0 … m0+mn-1 (each a contiguous range, checked by
// ceilingAccounts), the fee account fee; streams is how many clients run it.
const ceilingScript = `BEGIN;
WITH t AS MATERIALIZED (
	SELECT nextval('ledger_transfers_seq') AS seq, g % 3 AS k,
		:w0 + (floor(random() * (:wn / :streams))::int8 * :streams + :client_id % :streams) AS w,
		:m0 + floor(random() * :mn)::int8 AS m,
		100 + floor(random() * 10000)::int8 AS amt
	FROM generate_series(1, :batch) g),
p AS MATERIALIZED (
	SELECT t.seq, v.idx, v.acct, v.dp, v.cp, v.wallet
	FROM t CROSS JOIN LATERAL (VALUES
		(0::int2, CASE t.k WHEN 0 THEN t.m ELSE t.w END, t.amt, 0::int8, t.k <> 0),
		(1::int2, CASE t.k WHEN 0 THEN t.w ELSE t.m END, 0::int8, CASE t.k WHEN 2 THEN t.amt - t.amt * 3 / 100 ELSE t.amt END, t.k = 0),
		(2::int2, :fee::int8, 0::int8, t.amt * 3 / 100, false)) AS v(idx, acct, dp, cp, wallet)
	WHERE v.idx < 2 OR t.k = 2),
ins_t AS (
	INSERT INTO ledger_transfers (seq, id, code, kind, content_hash, created_at)
	SELECT seq, 'ceiling-' || seq, CASE k WHEN 0 THEN 'refund' ELSE 'payment' END, 'posted',
		'\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'::bytea, now()
	FROM t),
ins_p AS (
	INSERT INTO ledger_postings (transfer_seq, idx, account_seq, debits_posted, credits_posted, debits_pending, credits_pending, created_at)
	SELECT seq, idx, acct, dp, cp, 0, 0, now() FROM p),
upd_w AS (
	UPDATE ledger_accounts a SET debits_posted = a.debits_posted + s.dp, credits_posted = a.credits_posted + s.cp
	FROM (SELECT acct, sum(dp)::int8 AS dp, sum(cp)::int8 AS cp FROM p WHERE wallet GROUP BY acct) s
	WHERE a.seq = s.acct)
INSERT INTO ledger_balance_shards AS s (account_seq, shard, debits_posted, credits_posted, debits_pending, credits_pending)
SELECT acct, 60 + :client_id % :streams, sum(dp), sum(cp), 0, 0 FROM p WHERE NOT wallet GROUP BY acct ORDER BY acct
ON CONFLICT (account_seq, shard) DO UPDATE SET
	debits_posted = s.debits_posted + excluded.debits_posted, credits_posted = s.credits_posted + excluded.credits_posted;
COMMIT;
`

// ceilingResult is the ceiling in transfers per second, with each stream
// count's figure.
type ceilingResult struct {
	one, two float64
}

func (c ceilingResult) tps() float64 { return max(c.one, c.two) }

// measureCeiling runs the ceiling script with one stream, then two, for d
// each, on the database of dbURL whose baseline accounts pool can read.
func measureCeiling(ctx context.Context, pool *pgxpool.Pool, dbURL string, d time.Duration) (ceilingResult, error) {
	vars, err := ceilingAccounts(ctx, pool)
	if err != nil {
		return ceilingResult{}, err
	}
	var res ceilingResult
	for _, streams := range []int{1, 2} {
		s := script{name: "ceiling", weight: 1, body: ceilingScript}
		args := append([]string{"-D", "streams=" + strconv.Itoa(streams), "-D", "batch=" + strconv.Itoa(ceilingBatch)}, vars...)
		tps, err := pgbenchArgs(ctx, dbURL, streams, max(d, time.Second), args, s)
		if err != nil {
			return ceilingResult{}, fmt.Errorf("ceiling, %d streams: %w", streams, err)
		}
		if streams == 1 {
			res.one = tps * ceilingBatch
		} else {
			res.two = tps * ceilingBatch
		}
	}
	return res, nil
}

// ceilingAccounts returns pgbench -D arguments naming the baseline's
// accounts by internal key, after checking that the wallets and the
// merchants each hold a contiguous range of keys.
func ceilingAccounts(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	var args []string
	for _, r := range []struct{ prefix, lo, n string }{{"bw", "w0", "wn"}, {"bm", "m0", "mn"}} {
		var lo, hi, n int64
		err := pool.QueryRow(ctx, `SELECT min(seq), max(seq), count(*) FROM ledger_accounts WHERE id ~ ('^' || $1 || '[0-9]+$')`, r.prefix).
			Scan(&lo, &hi, &n)
		if err != nil {
			return nil, fmt.Errorf("ceiling accounts: %w", err)
		}
		if n == 0 || hi-lo+1 != n {
			return nil, fmt.Errorf("ceiling accounts: %s accounts are not one range of keys (%d..%d, %d accounts)", r.prefix, lo, hi, n)
		}
		args = append(args, "-D", r.lo+"="+strconv.FormatInt(lo, 10), "-D", r.n+"="+strconv.FormatInt(n, 10))
	}
	var fee int64
	if err := pool.QueryRow(ctx, `SELECT seq FROM ledger_accounts WHERE id = 'bfee'`).Scan(&fee); err != nil {
		return nil, fmt.Errorf("ceiling accounts: %w", err)
	}
	return append(args, "-D", "fee="+strconv.FormatInt(fee, 10)), nil
}
