package settlement

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/ledger"
)

// Reconciliation reads the ledger's tables directly, read-only, inside the
// run's own repeatable-read transaction: the balance transactions and the
// ledger must be compared in one snapshot, or money committing meanwhile
// would look like a difference. Package chart names the ledger transfers
// behind balance transactions: "pay_<payment>" (with "pay_<payment>:post"
// when a hold was captured), "refund_<refund>", "dispute_<dispute>" for a
// dispute's withdrawal and "dispute_close_<dispute>" for its ruling (the
// reinstatement of a dispute won, the fee share returned of one lost); a
// dispute lost without a fee share moves nothing of the developer's and
// has no balance transaction.

// diffsMax bounds the differences a mismatch lists.
const diffsMax = 20

// balanceDiffsSQL compares every developer's pending balance in the ledger
// with the net of its unsettled balance transactions: they move together,
// in one database transaction, so they are equal unless something moved
// money behind settlement's back, or a balance transaction was altered.
var balanceDiffsSQL = `
	WITH txn AS (
		SELECT ` + chart.DeveloperPendingSQL("developer_id", "currency") + ` AS code, currency, sum(net) AS net
		FROM balance_transactions WHERE payout_id IS NULL AND type <> 'payout'
		GROUP BY developer_id, currency
	), acct AS (
		SELECT a.code, a.currency,
			a.credits_posted - a.debits_posted + coalesce(sum(s.credits_posted - s.debits_posted), 0) AS balance
		FROM ledger_accounts a LEFT JOIN ledger_balance_shards s ON s.account_seq = a.seq
		WHERE a.code LIKE 'dev:%:pending:%'
		GROUP BY a.id, a.code, a.currency, a.credits_posted, a.debits_posted
	)
	SELECT coalesce(acct.code, txn.code), coalesce(acct.currency, txn.currency),
		coalesce(acct.balance, 0)::text, coalesce(txn.net, 0)::text, count(*) OVER ()
	FROM acct FULL JOIN txn ON txn.code = acct.code
	WHERE coalesce(acct.balance, 0) <> coalesce(txn.net, 0)
	ORDER BY 1 LIMIT $1`

// postingDiffsSQL compares, per developer and currency, the net and fees of
// the balance transactions a run takes with the postings of the ledger
// transfers behind them, on the developer's pending account and the
// platform's fee account.
var postingDiffsSQL = `
	WITH e AS (
		SELECT developer_id, currency, type, source_id, net, fee FROM balance_transactions
		WHERE payout_id IS NULL AND type <> 'payout' AND available_on <= $1
	), refs AS (
		SELECT developer_id, currency, CASE type
			WHEN '` + TxnPayment + `' THEN '` + chart.PaymentPrefix + `'
			WHEN '` + TxnRefund + `' THEN '` + chart.RefundPrefix + `'
			WHEN '` + TxnDispute + `' THEN '` + chart.DisputePrefix + `'
			WHEN '` + TxnDisputeReversal + `' THEN '` + chart.DisputeClosePrefix + `'
			WHEN '` + TxnDisputeFeeReturn + `' THEN '` + chart.DisputeClosePrefix + `'
			END || source_id AS tid FROM e
		UNION ALL
		SELECT developer_id, currency, '` + chart.PaymentPrefix + `' || source_id || '` + ledger.ResolutionID("", true) + `' FROM e WHERE type = 'payment'
	), led AS (
		SELECT r.developer_id, r.currency,
			coalesce(sum(p.credits_posted - p.debits_posted)
				FILTER (WHERE a.code = ` + chart.DeveloperPendingSQL("r.developer_id", "r.currency") + `), 0) AS net,
			coalesce(sum(p.credits_posted - p.debits_posted) FILTER (WHERE a.code = ` + chart.FeesSQL("r.currency") + `), 0) AS fee
		FROM refs r
		JOIN ledger_transfers t ON t.id = r.tid
		JOIN ledger_postings p ON p.transfer_seq = t.seq
		JOIN ledger_accounts a ON a.seq = p.account_seq
		GROUP BY r.developer_id, r.currency
	), want AS (
		SELECT developer_id, currency, sum(net) AS net, sum(fee) AS fee FROM e GROUP BY developer_id, currency
	)
	SELECT coalesce(want.developer_id, led.developer_id), coalesce(want.currency, led.currency),
		coalesce(want.net, 0)::text, coalesce(led.net, 0)::text, coalesce(want.fee, 0)::text, coalesce(led.fee, 0)::text,
		count(*) OVER ()
	FROM want FULL JOIN led ON led.developer_id = want.developer_id AND led.currency = want.currency
	WHERE coalesce(want.net, 0) <> coalesce(led.net, 0) OR coalesce(want.fee, 0) <> coalesce(led.fee, 0)
	ORDER BY 1, 2 LIMIT $2`

// reconcileBefore checks, before anything is paid, the sums of the run's
// balance transactions against the ledger's postings behind them, and
// every developer's pending balance against its unsettled transactions.
// It returns the differences found, at most diffsMax of each kind.
func reconcileBefore(ctx context.Context, tx pgx.Tx, runID string, cutoff any) ([]string, error) {
	diffs, err := postingDiffs(ctx, tx, cutoff)
	if err != nil {
		return nil, err
	}
	more, err := balanceDiffs(ctx, tx, "")
	if err != nil {
		return nil, err
	}
	return append(diffs, more...), nil
}

func postingDiffs(ctx context.Context, tx pgx.Tx, cutoff any) ([]string, error) {
	rows, err := tx.Query(ctx, postingDiffsSQL, cutoff, diffsMax)
	if err != nil {
		return nil, fmt.Errorf("reconcile postings: %w", err)
	}
	var (
		diffs                            []string
		dev, cur, wNet, lNet, wFee, lFee string
		total                            int
	)
	_, err = pgx.ForEachRow(rows, []any{&dev, &cur, &wNet, &lNet, &wFee, &lFee, &total}, func() error {
		diffs = append(diffs, fmt.Sprintf("developer %s %s: balance transactions net %s fee %s, ledger postings net %s fee %s",
			dev, cur, money(cur, wNet), money(cur, wFee), money(cur, lNet), money(cur, lFee)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile postings: %w", err)
	}
	if total > len(diffs) {
		diffs = append(diffs, fmt.Sprintf("… and %d more developers whose postings differ", total-len(diffs)))
	}
	return diffs, nil
}

// balanceDiffs lists pending balances that differ from the unsettled
// balance transactions; when is prefixed to each ("after paying: ").
func balanceDiffs(ctx context.Context, tx pgx.Tx, when string) ([]string, error) {
	rows, err := tx.Query(ctx, balanceDiffsSQL, diffsMax)
	if err != nil {
		return nil, fmt.Errorf("reconcile balances: %w", err)
	}
	var (
		diffs               []string
		code, cur, bal, net string
		total               int
	)
	_, err = pgx.ForEachRow(rows, []any{&code, &cur, &bal, &net, &total}, func() error {
		diffs = append(diffs, fmt.Sprintf("%saccount %s: ledger balance %s, unsettled balance transactions %s",
			when, code, money(cur, bal), money(cur, net)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile balances: %w", err)
	}
	if total > len(diffs) {
		diffs = append(diffs, fmt.Sprintf("%s… and %d more accounts whose balance differs", when, total-len(diffs)))
	}
	return diffs, nil
}

// payoutDiffs checks after paying that every payout the run planned exists
// with its amount and that the ledger moved exactly the run's net, per
// currency, into payouts in transit.
func payoutDiffs(ctx context.Context, tx pgx.Tx, runID string) ([]string, error) {
	rows, err := tx.Query(ctx, `
		WITH planned AS (
			SELECT i.currency, sum(i.net) AS net, count(*) AS n, count(p.id) FILTER (WHERE p.amount = i.net) AS paid
			FROM settlement_items i LEFT JOIN payouts p ON p.id = i.payout_id
			WHERE i.run_id = $1 AND i.payout_id IS NOT NULL GROUP BY i.currency
		), moved AS (
			SELECT i.currency, sum(ps.credits_posted - ps.debits_posted) AS net
			FROM settlement_items i
			JOIN ledger_transfers t ON t.id = '`+chart.PayoutPrefix+`' || i.payout_id
			JOIN ledger_postings ps ON ps.transfer_seq = t.seq
			JOIN ledger_accounts a ON a.seq = ps.account_seq AND a.code = `+chart.PayoutsInTransitSQL("i.currency")+`
			WHERE i.run_id = $1 AND i.payout_id IS NOT NULL GROUP BY i.currency
		)
		SELECT planned.currency, planned.net::text, coalesce(moved.net, 0)::text, planned.n, planned.paid
		FROM planned LEFT JOIN moved ON moved.currency = planned.currency
		WHERE planned.net <> coalesce(moved.net, 0) OR planned.n <> planned.paid
		ORDER BY 1`, runID)
	if err != nil {
		return nil, fmt.Errorf("reconcile payouts: %w", err)
	}
	var (
		diffs          []string
		cur, net, mvd  string
		planned, found int
	)
	_, err = pgx.ForEachRow(rows, []any{&cur, &net, &mvd, &planned, &found}, func() error {
		diffs = append(diffs, fmt.Sprintf("after paying: %s: %d payouts of %s planned, %d found, ledger moved %s to payouts in transit",
			cur, planned, money(cur, net), found, money(cur, mvd)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile payouts: %w", err)
	}
	return diffs, nil
}

// money formats a decimal sum of minor units in major units; sums out of
// the int64 range (only possible in a broken database) are shown raw.
func money(currency, minor string) string {
	v, err := parseSum(minor)
	if err != nil {
		return minor + " minor units"
	}
	return ledger.FormatAmount(currency, v) + " " + currency
}
