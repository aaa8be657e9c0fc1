package settlement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/webhooks"
)

// eventBatchMax bounds the events written by one statement.
const eventBatchMax = 1000

// complete is step 4: with every payout posted, check the ledger once more
// (each payout moved exactly its amount; pending balances equal the
// unsettled balance transactions) and finish the run, telling each
// developer in it. It returns the run's final status.
func (s *Service) complete(ctx context.Context, runID string) (string, error) {
	tx, err := s.ledger.BeginWhole(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return "", fmt.Errorf("complete run %s: %w", runID, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var step string
	if err := tx.QueryRow(ctx, `SELECT step FROM settlement_runs WHERE id = $1 FOR UPDATE`, runID).Scan(&step); err != nil {
		return "", fmt.Errorf("complete run %s: %w", runID, err)
	}
	if step != stepPlanned {
		return "", fmt.Errorf("complete run %s: step is %s, want %s", runID, step, stepPlanned)
	}
	diffs, err := payoutDiffs(ctx, tx, runID)
	if err != nil {
		return "", fmt.Errorf("complete run %s: %w", runID, err)
	}
	more, err := balanceDiffs(ctx, tx, "after paying: ")
	if err != nil {
		return "", fmt.Errorf("complete run %s: %w", runID, err)
	}
	diffs = append(diffs, more...)
	status := RunCompleted
	var mismatch []byte
	if len(diffs) > 0 {
		// The payouts went out and stay out; the run says what does not add up.
		status = RunMismatch
		mismatch, _ = json.Marshal(diffs)
	}
	var (
		cutoff  time.Time
		version int
	)
	err = tx.QueryRow(ctx, `UPDATE settlement_runs SET status = $2, step = 'completed', mismatch = $3, completed_at = now(),
		version = version + 1 WHERE id = $1 RETURNING cutoff, version`, runID, status, mismatch).Scan(&cutoff, &version)
	if err != nil {
		return "", fmt.Errorf("complete run %s: %w", runID, err)
	}
	if err := s.emitRunCompleted(ctx, tx, runID, cutoff, status, version); err != nil {
		return "", fmt.Errorf("complete run %s: %w", runID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", fmt.Errorf("complete run %s: commit: %w", runID, err)
	}
	return status, nil
}

// RunSummary is what a developer's settlement_run.completed event says:
// the run, and that developer's payouts and carried-forward money in it.
type RunSummary struct {
	ID             string        `json:"id"`
	Object         string        `json:"object"`
	Cutoff         string        `json:"cutoff"`
	Status         string        `json:"status"`
	Payouts        []string      `json:"payouts"`
	CarriedForward []MoneyObject `json:"carried_forward"`
	Version        int           `json:"version"`
}

// MoneyObject is an amount as the API shows it.
type MoneyObject struct {
	Currency string `json:"currency"`
	Amount   string `json:"amount"`
}

// emitRunCompleted writes one settlement_run.completed event per developer
// with money in the run, in tx, streaming the developers from the database.
func (s *Service) emitRunCompleted(ctx context.Context, tx pgx.Tx, runID string, cutoff time.Time, status string, version int) error {
	// Collected per developer from rows ordered by developer: one
	// developer's few items in memory at a time; events go in batches.
	rows, err := tx.Query(ctx, `SELECT developer_id, currency, net, coalesce(payout_id, '') FROM settlement_items
		WHERE run_id = $1 ORDER BY developer_id, currency`, runID)
	if err != nil {
		return err
	}
	var (
		events []webhooks.Event
		cur    *RunSummary
		curDev string
	)
	flushDev := func() {
		if cur != nil {
			events = append(events, webhooks.Event{Type: webhooks.SettlementRunCompleted, DeveloperID: curDev,
				Object: *cur, ObjectID: runID, ObjectVersion: version})
		}
	}
	var batches [][]webhooks.Event
	var (
		dev, currency, payout string
		net                   int64
	)
	_, err = pgx.ForEachRow(rows, []any{&dev, &currency, &net, &payout}, func() error {
		if cur == nil || dev != curDev {
			flushDev()
			if len(events) >= eventBatchMax {
				batches = append(batches, events)
				events = nil
			}
			curDev = dev
			cur = &RunSummary{ID: runID, Object: "settlement_run", Cutoff: minipay.Timestamp(cutoff), Status: status,
				Payouts: []string{}, CarriedForward: []MoneyObject{}, Version: version}
		}
		if payout != "" {
			cur.Payouts = append(cur.Payouts, payout)
		} else {
			cur.CarriedForward = append(cur.CarriedForward, MoneyObject{Currency: currency, Amount: ledger.FormatAmount(currency, net)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	flushDev()
	batches = append(batches, events)
	// Held in memory per batch list: at most one small event per developer.
	for _, batch := range batches {
		if err := webhooks.EmitAll(ctx, tx, batch); err != nil {
			return fmt.Errorf("emit %s: %w", webhooks.SettlementRunCompleted, err)
		}
	}
	return nil
}

const runColumns = `id, cutoff, status, coalesce(mismatch, '[]'), created_at, completed_at, version,
	(SELECT count(*) FROM payouts p WHERE p.run_id = r.id)`

func scanRun(row pgx.Row) (Run, error) {
	var (
		r         Run
		mismatch  []byte
		completed *time.Time
	)
	if err := row.Scan(&r.ID, &r.Cutoff, &r.Status, &mismatch, &r.Created, &completed, &r.Version, &r.PayoutCount); err != nil {
		return Run{}, err
	}
	if completed != nil {
		r.Completed = *completed
	}
	if err := json.Unmarshal(mismatch, &r.Mismatch); err != nil {
		return Run{}, fmt.Errorf("run %s mismatch: %w", r.ID, err)
	}
	return r, nil
}

// GetRun returns a run with its totals per currency.
func (s *Service) GetRun(ctx context.Context, runID string) (Run, error) {
	r, err := scanRun(s.db.QueryRow(ctx, `SELECT `+runColumns+` FROM settlement_runs r WHERE id = $1`, runID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, fmt.Errorf("%w: %s", ErrRunNotFound, runID)
	}
	if err != nil {
		return Run{}, fmt.Errorf("get run %s: %w", runID, err)
	}
	if r.Totals, err = s.totals(ctx, runID); err != nil {
		return Run{}, err
	}
	return r, nil
}

func (s *Service) totals(ctx context.Context, runID string) ([]Totals, error) {
	m, err := s.RunTotals(ctx, []string{runID})
	return m[runID], err
}

// RunTotals returns the totals per currency of each of runIDs, by run id,
// for lists of runs (which carry none) in one query.
func (s *Service) RunTotals(ctx context.Context, runIDs []string) (map[string][]Totals, error) {
	rows, err := s.db.Query(ctx, `
		SELECT run_id, currency,
			coalesce(sum(gross) FILTER (WHERE payout_id IS NOT NULL), 0)::bigint,
			coalesce(sum(refunds) FILTER (WHERE payout_id IS NOT NULL), 0)::bigint,
			coalesce(sum(disputes) FILTER (WHERE payout_id IS NOT NULL), 0)::bigint,
			coalesce(sum(fees) FILTER (WHERE payout_id IS NOT NULL), 0)::bigint,
			coalesce(sum(net) FILTER (WHERE payout_id IS NOT NULL), 0)::bigint,
			coalesce(sum(payment_count) FILTER (WHERE payout_id IS NOT NULL), 0)::bigint,
			coalesce(sum(refund_count) FILTER (WHERE payout_id IS NOT NULL), 0)::bigint,
			count(payout_id),
			coalesce(sum(net) FILTER (WHERE payout_id IS NULL), 0)::bigint,
			count(*) FILTER (WHERE payout_id IS NULL)
		FROM settlement_items WHERE run_id = ANY ($1) GROUP BY run_id, currency ORDER BY run_id, currency`, runIDs)
	if err != nil {
		return nil, fmt.Errorf("totals of runs %v: %w", runIDs, err)
	}
	out := map[string][]Totals{}
	var (
		runID string
		t     Totals
	)
	_, err = pgx.ForEachRow(rows, []any{&runID, &t.Currency, &t.Gross, &t.Refunds, &t.Disputes, &t.Fees, &t.Net,
		&t.PaymentCount, &t.RefundCount, &t.PayoutCount, &t.CarriedForward, &t.CarriedCount}, func() error {
		out[runID] = append(out[runID], t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("totals of runs %v: %w", runIDs, err)
	}
	return out, nil
}

// ListRuns pages through runs, newest cutoff first, after the run with id
// startingAfter. Listed runs carry no totals; GetRun has them.
func (s *Service) ListRuns(ctx context.Context, limit int, startingAfter string) ([]Run, bool, error) {
	var after *time.Time
	if startingAfter != "" {
		var c time.Time
		err := s.db.QueryRow(ctx, `SELECT cutoff FROM settlement_runs WHERE id = $1`, startingAfter).Scan(&c)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, false, fmt.Errorf("%w: %s", ErrRunNotFound, startingAfter)
		}
		if err != nil {
			return nil, false, fmt.Errorf("list runs: %w", err)
		}
		after = &c
	}
	rows, err := s.db.Query(ctx, `SELECT `+runColumns+` FROM settlement_runs r
		WHERE $1::timestamptz IS NULL OR cutoff < $1 ORDER BY cutoff DESC LIMIT $2`, after, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list runs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) { return scanRun(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list runs: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
