package settlement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/leader"
	"github.com/minipay/minipay/ledger"
)

// Run statuses.
const (
	RunRunning   = "running"
	RunCompleted = "completed"
	RunMismatch  = "mismatch"
)

// Steps a run has committed (see the package comment).
const (
	stepCreated   = "created"
	stepPlanned   = "planned"
	stepCompleted = "completed"
)

// Run is a settlement run: everything that matured by Cutoff, paid out.
type Run struct {
	ID          string
	Cutoff      time.Time
	Status      string
	Mismatch    []string // what differed from the ledger, when Status is mismatch
	PayoutCount int
	Totals      []Totals // per currency
	Created     time.Time
	Completed   time.Time
	Version     int
}

// Totals sums a run's money in one currency, in minor units. Gross,
// Refunds, Disputes, Fees and Net cover what was paid out (Net is Gross
// less the other three); CarriedForward is the net of developers below
// the minimum (or negative), left for the next run.
type Totals struct {
	Currency       string
	Gross          int64
	Refunds        int64
	Disputes       int64 // withdrawn by disputes less reinstated
	Fees           int64
	Net            int64
	PaymentCount   int64
	RefundCount    int64
	PayoutCount    int64
	CarriedForward int64
	CarriedCount   int64
}

// RunStats describes one run this process advanced, for metrics.
type RunStats struct {
	Status   string
	Payouts  int // payout transfers this process posted
	Duration time.Duration
}

// runLock names the job of advancing runs (see package leader): runs
// advance one at a time, in the order Resume gives, across every replica;
// a process that dies gives the job up.
const runLock int64 = 0x6d696e6970617953 // "minipayS"

// Settle returns the run for cutoff, creating it if none exists, and
// advances every unfinished run to its end (see Resume for the order). The same
// cutoff always yields the same run; running it again changes nothing.
//
// With wait, Settle waits while another process advances runs and then
// finishes what is left; without, it returns the run as it is (status
// running) when another process holds the runs.
func (s *Service) Settle(ctx context.Context, cutoff time.Time, wait bool) (run Run, created bool, err error) {
	if cutoff.IsZero() || cutoff.After(time.Now()) {
		return Run{}, false, fmt.Errorf("%w: %s", ErrCutoffInvalid, cutoff.Format(time.RFC3339Nano))
	}
	cutoff = cutoff.UTC().Truncate(time.Microsecond) // what PostgreSQL keeps
	var runID string
	err = s.db.QueryRow(ctx, `INSERT INTO settlement_runs (id, cutoff, status, step) VALUES ($1, $2, 'running', 'created')
		ON CONFLICT (cutoff) DO NOTHING RETURNING id`, id.New("sr"), cutoff).Scan(&runID)
	created = err == nil
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.db.QueryRow(ctx, `SELECT id FROM settlement_runs WHERE cutoff = $1`, cutoff).Scan(&runID)
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("settlement run for %s: %w", cutoff.Format(time.RFC3339), err)
	}
	if err := s.Resume(ctx, wait); err != nil {
		return Run{}, created, err
	}
	run, err = s.GetRun(ctx, runID)
	return run, created, err
}

// Resume advances every unfinished run: what a restarted process does for
// runs a crash interrupted. Runs already planned go first, whatever their
// cutoff, then the others oldest cutoff first: a planned run has marked
// its transactions as paid out by payouts it has not posted yet, and
// another run planned meanwhile would reconcile against those marks
// without their payouts and end as a false mismatch. Without wait it
// returns at once when another process is advancing runs.
func (s *Service) Resume(ctx context.Context, wait bool) error {
	_, err := leader.Run(ctx, s.db, runLock, wait, func(ctx context.Context) error {
		for {
			var runID string
			err := s.db.QueryRow(ctx, `SELECT id FROM settlement_runs WHERE status = 'running'
				ORDER BY step = 'planned' DESC, cutoff LIMIT 1`).Scan(&runID)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("find unfinished runs: %w", err)
			}
			if err := s.advance(ctx, runID); err != nil {
				return err
			}
		}
	})
	if err != nil {
		return fmt.Errorf("settlement: %w", err)
	}
	return nil
}

// advance takes one run through its remaining steps. The caller holds
// runLock.
func (s *Service) advance(ctx context.Context, runID string) error {
	start := time.Now()
	stats := RunStats{}
	var (
		step   string
		cutoff time.Time
	)
	if err := s.db.QueryRow(ctx, `SELECT step, cutoff FROM settlement_runs WHERE id = $1`, runID).Scan(&step, &cutoff); err != nil {
		return fmt.Errorf("load run %s: %w", runID, err)
	}
	log := s.opts.Log.With("settlement_run", runID, "cutoff", cutoff)
	if step == stepCreated {
		ok, err := s.plan(ctx, runID, cutoff)
		if err != nil {
			return err
		}
		if !ok {
			log.Error("settlement run does not reconcile with the ledger: nothing paid")
			s.observe(RunStats{Status: RunMismatch, Duration: time.Since(start)})
			return nil
		}
		log.Info("settlement run planned")
		s.failpoint("planned")
	}
	n, err := s.pay(ctx, runID, cutoff)
	stats.Payouts = n
	if err != nil {
		return err
	}
	s.failpoint("paid")
	status, err := s.complete(ctx, runID)
	if err != nil {
		return err
	}
	stats.Status, stats.Duration = status, time.Since(start)
	log.Info("settlement run finished", "status", status, "payouts_posted", n, "ms", stats.Duration.Milliseconds())
	s.observe(stats)
	return nil
}

func (s *Service) observe(st RunStats) {
	if s.opts.Observe != nil {
		s.opts.Observe(st)
	}
}

// payoutIDSQL derives a payout's id from its run, developer and currency:
// the run's time prefix keeps payouts in creation order, the hash makes the
// id the same however often the plan is computed.
const payoutIDSQL = `'po_' || substr($1::text, 4, 10) ||
	upper(substr(encode(sha256(convert_to($1::text || '/' || developer_id || '/' || currency, 'UTF8')), 'hex'), 1, 16))`

// plan is step 2: sum, reconcile, choose payouts and mark what they pay, in
// one repeatable-read transaction, so the sums, the reconciliation and the
// marks all see the same snapshot (on Citus, of every node: it begins under
// the ledger's fence); money that commits later waits for the next run. It
// reports false when the run ended as mismatch.
func (s *Service) plan(ctx context.Context, runID string, cutoff time.Time) (bool, error) {
	tx, err := s.ledger.BeginWhole(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return false, fmt.Errorf("plan run %s: %w", runID, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// Large runs sort and hash a million rows; give them memory for it. (On
	// a Citus cluster the run's tables live on the coordinator and are
	// written after reads over every worker, which Citus allows because a
	// whole-ledger transaction uses one connection per worker.)
	if _, err := tx.Exec(ctx, `SELECT set_config('work_mem', '64MB', true)`); err != nil {
		return false, fmt.Errorf("plan run %s: %w", runID, err)
	}
	var step string
	if err := tx.QueryRow(ctx, `SELECT step FROM settlement_runs WHERE id = $1 FOR UPDATE`, runID).Scan(&step); err != nil {
		return false, fmt.Errorf("plan run %s: %w", runID, err)
	}
	if step != stepCreated {
		return true, nil // planned meanwhile
	}
	curs, mins := s.minimums()
	_, err = tx.Exec(ctx, `
		INSERT INTO settlement_items (run_id, developer_id, currency, apps, gross, refunds, disputes, fees, net,
			payment_count, refund_count, payout_id)
		SELECT $1, developer_id, currency, apps, gross, refunds, disputes, fees, net, payment_count, refund_count,
			CASE WHEN net > 0 AND net >= coalesce((SELECT m FROM unnest($3::text[], $4::int8[]) AS u(c, m) WHERE c = currency),
				9223372036854775807) THEN `+payoutIDSQL+` END
		FROM (
			SELECT developer_id, currency,
				coalesce(string_agg(DISTINCT app_id, ';' ORDER BY app_id), '') AS apps,
				coalesce(sum(amount) FILTER (WHERE type = 'payment'), 0) AS gross,
				coalesce(-sum(amount) FILTER (WHERE type = 'refund'), 0) AS refunds,
				coalesce(-sum(amount) FILTER (WHERE type IN ('`+TxnDispute+`', '`+TxnDisputeReversal+`', '`+TxnDisputeFeeReturn+`')), 0) AS disputes,
				sum(fee) AS fees, sum(net) AS net,
				count(*) FILTER (WHERE type = 'payment') AS payment_count,
				count(*) FILTER (WHERE type = 'refund') AS refund_count
			FROM balance_transactions
			WHERE payout_id IS NULL AND type <> 'payout' AND available_on <= $2
			GROUP BY developer_id, currency) sums`, runID, cutoff, curs, mins)
	if err != nil {
		return false, fmt.Errorf("plan run %s: sum balance transactions: %w", runID, err)
	}
	diffs, err := reconcileBefore(ctx, tx, runID, cutoff)
	if err != nil {
		return false, fmt.Errorf("plan run %s: %w", runID, err)
	}
	if len(diffs) > 0 {
		md, _ := json.Marshal(diffs)
		_, err = tx.Exec(ctx, `DELETE FROM settlement_items WHERE run_id = $1`, runID)
		if err == nil {
			_, err = tx.Exec(ctx, `UPDATE settlement_runs SET status = 'mismatch', step = 'completed', mismatch = $2,
				completed_at = now(), version = version + 1 WHERE id = $1`, runID, md)
		}
		if err == nil {
			err = tx.Commit(ctx)
		}
		if err != nil {
			return false, fmt.Errorf("plan run %s: record mismatch: %w", runID, err)
		}
		return false, nil
	}
	// Marking pays nothing yet: the payout transfers follow. Until they land
	// the marked money shows as settled, and the run is resumed by whoever
	// next takes runLock.
	_, err = tx.Exec(ctx, `
		UPDATE balance_transactions bt SET payout_id = i.payout_id
		FROM settlement_items i
		WHERE i.run_id = $1 AND i.payout_id IS NOT NULL
		  AND bt.developer_id = i.developer_id AND bt.currency = i.currency
		  AND bt.payout_id IS NULL AND bt.type <> 'payout' AND bt.available_on <= $2`, runID, cutoff)
	if err != nil {
		return false, fmt.Errorf("plan run %s: mark balance transactions: %w", runID, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE settlement_runs SET step = 'planned', version = version + 1 WHERE id = $1`, runID); err != nil {
		return false, fmt.Errorf("plan run %s: %w", runID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("plan run %s: commit: %w", runID, err)
	}
	return true, nil
}

// minimums lists the minimum payout of every currency, as arrays for SQL.
func (s *Service) minimums() ([]string, []int64) {
	curs := ledger.Currencies()
	mins := make([]int64, len(curs))
	for i, c := range curs {
		mins[i] = s.minimumPayout(c)
	}
	return curs, mins
}
