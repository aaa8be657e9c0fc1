package settlement

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Progress is how far the unfinished run with the earliest cutoff has got.
type Progress struct {
	RunID   string
	Cutoff  time.Time
	Step    string // created (planning), planned (paying)
	Planned int    // payouts chosen by the plan
	Posted  int    // payouts whose transfer has landed
}

// RunProgress reports on the unfinished run with the earliest cutoff (the
// one being advanced, since runs advance in cutoff order); ok is false
// when no run is unfinished.
func (s *Service) RunProgress(ctx context.Context) (p Progress, ok bool, err error) {
	err = s.db.QueryRow(ctx, `SELECT r.id, r.cutoff, r.step,
			(SELECT count(*) FROM settlement_items i WHERE i.run_id = r.id AND i.payout_id IS NOT NULL),
			(SELECT count(*) FROM payouts p WHERE p.run_id = r.id)
		FROM settlement_runs r WHERE r.status = 'running' ORDER BY r.cutoff LIMIT 1`).
		Scan(&p.RunID, &p.Cutoff, &p.Step, &p.Planned, &p.Posted)
	if errors.Is(err, pgx.ErrNoRows) {
		return Progress{}, false, nil
	}
	if err != nil {
		return Progress{}, false, fmt.Errorf("settlement progress: %w", err)
	}
	return p, true, nil
}

// MaturingAfter sums, per currency and day in loc, every developer's
// unsettled money that matures after cutoff, earliest first: what a run
// with that cutoff leaves for later ones. At most limit rows.
func (s *Service) MaturingAfter(ctx context.Context, cutoff time.Time, loc *time.Location, limit int) ([]Maturing, error) {
	rows, err := s.db.Query(ctx, `
		SELECT currency, date_trunc('day', available_on, $2) AS day, sum(net)::bigint, count(*)
		FROM balance_transactions
		WHERE payout_id IS NULL AND type <> 'payout' AND available_on > $1
		GROUP BY currency, day ORDER BY day, currency LIMIT $3`, cutoff, loc.String(), limit)
	if err != nil {
		return nil, fmt.Errorf("money maturing after %s: %w", cutoff.Format(time.RFC3339), err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Maturing, error) {
		var m Maturing
		err := r.Scan(&m.Currency, &m.Day, &m.Net, &m.Count)
		m.Day = m.Day.In(loc)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("money maturing after %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return out, nil
}

// LatestCompleted returns the completed run with the latest cutoff; ok is
// false when no run has completed.
func (s *Service) LatestCompleted(ctx context.Context) (run Run, ok bool, err error) {
	run, err = scanRun(s.db.QueryRow(ctx, `SELECT `+runColumns+` FROM settlement_runs r
		WHERE status = 'completed' ORDER BY cutoff DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("latest completed run: %w", err)
	}
	return run, true, nil
}

// MatureNow makes the unsettled balance transactions of a developer's
// payment (its source id, cs_… or in_…) available now, as if its holding
// period had passed. Sandboxes use it so that a payout can be shown
// without waiting days; nothing else should.
func (s *Service) MatureNow(ctx context.Context, developerID, sourceID string) error {
	// A second back, so that a cutoff taken right after, by a clock a
	// little behind the database's, still covers it.
	_, err := s.db.Exec(ctx, `UPDATE balance_transactions SET available_on = now() - interval '1 second'
		WHERE developer_id = $1 AND source_id = $2 AND payout_id IS NULL AND available_on > now() - interval '1 second'`,
		developerID, sourceID)
	if err != nil {
		return fmt.Errorf("mature %s now: %w", sourceID, err)
	}
	return nil
}
