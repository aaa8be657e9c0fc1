package settlement

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DayTotals is what the runs of one day paid out in one currency, in minor
// units.
type DayTotals struct {
	Day      time.Time // midnight starting the day, in the location asked for
	Currency string
	Gross    int64
	Refunds  int64
	Disputes int64
	Fees     int64
	Net      int64
	Payouts  int64
}

// DailyTotals sums the payouts of the runs whose cutoff falls in
// [from, to), per day in loc and currency, oldest day first. Days without
// a run are left out. Runs that ended as mismatch paid nothing and count
// nothing.
func (s *Service) DailyTotals(ctx context.Context, from, to time.Time, loc *time.Location) ([]DayTotals, error) {
	rows, err := s.db.Query(ctx, `
		SELECT (r.cutoff AT TIME ZONE $3)::date::text, i.currency,
			sum(i.gross)::bigint, sum(i.refunds)::bigint, sum(i.disputes)::bigint, sum(i.fees)::bigint, sum(i.net)::bigint, count(*)
		FROM settlement_runs r JOIN settlement_items i ON i.run_id = r.id
		WHERE r.cutoff >= $1 AND r.cutoff < $2 AND r.status = 'completed' AND i.payout_id IS NOT NULL
		GROUP BY 1, 2 ORDER BY 1, 2`, from, to, loc.String())
	if err != nil {
		return nil, fmt.Errorf("daily settlement totals: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DayTotals, error) {
		var (
			t   DayTotals
			day string
		)
		if err := r.Scan(&day, &t.Currency, &t.Gross, &t.Refunds, &t.Disputes, &t.Fees, &t.Net, &t.Payouts); err != nil {
			return t, err
		}
		d, err := time.ParseInLocation(time.DateOnly, day, loc)
		t.Day = d
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("daily settlement totals: %w", err)
	}
	return out, nil
}

// Maturing is a developer's money that matures on one day in one currency:
// it joins the available balance then, and goes out with the first
// settlement run after.
type Maturing struct {
	Day      time.Time // midnight starting the day, in the location asked for
	Currency string
	Net      int64 // minor units; negative when refunds outweigh payments
	Count    int64 // balance transactions
}

// Key identifies m among a developer's pending days, for paging.
func (m Maturing) Key() string { return m.Day.Format(time.DateOnly) + "/" + m.Currency }

// PendingByDay pages through developerID's pending money (not matured yet)
// by the day it matures in loc and currency, soonest first, after the
// Maturing whose Key is startingAfter ("" for the first page).
func (s *Service) PendingByDay(ctx context.Context, developerID string, loc *time.Location, limit int, startingAfter string) ([]Maturing, bool, error) {
	afterDay, afterCur, _ := strings.Cut(startingAfter, "/")
	if _, err := time.Parse(time.DateOnly, afterDay); err != nil {
		afterDay, afterCur = "0001-01-01", ""
	}
	rows, err := s.db.Query(ctx, `
		SELECT day::text, currency, sum(net)::bigint, count(*) FROM (
			SELECT (available_on AT TIME ZONE $2)::date AS day, currency, net FROM balance_transactions
			WHERE developer_id = $1 AND payout_id IS NULL AND type <> 'payout' AND available_on > now()) p
		WHERE (day, currency) > ($3::date, $4::text)
		GROUP BY day, currency ORDER BY day, currency LIMIT $5`, developerID, loc.String(), afterDay, afterCur, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("pending money of %s: %w", developerID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Maturing, error) {
		var (
			m   Maturing
			day string
		)
		if err := r.Scan(&day, &m.Currency, &m.Net, &m.Count); err != nil {
			return m, err
		}
		d, err := time.ParseInLocation(time.DateOnly, day, loc)
		m.Day = d
		return m, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("pending money of %s: %w", developerID, err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
