package checkout

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SessionFilter selects an app's sessions. Zero fields select everything.
type SessionFilter struct {
	AppID         string
	Status        string    // open, complete, expired, canceled
	PaymentStatus string    // unpaid, paid, partially_refunded, refunded
	CreatedGTE    time.Time // created at or after
	CreatedLT     time.Time // created before
}

// where is the filter as SQL conditions on checkout_sessions, with its
// arguments from $1 to $5.
func (f SessionFilter) where() (string, []any) {
	lt := f.CreatedLT
	if lt.IsZero() {
		lt = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return `app_id = $1 AND ($2 = '' OR status = $2) AND ($3 = '' OR payment_status = $3)
		AND created_at >= $4 AND created_at < $5`, []any{f.AppID, f.Status, f.PaymentStatus, f.CreatedGTE, lt}
}

// ListSessions pages through an app's sessions, newest first, optionally
// only those with status.
func (s *Service) ListSessions(ctx context.Context, appID, status string, limit int, startingAfter string) ([]Session, bool, error) {
	return s.FindSessions(ctx, SessionFilter{AppID: appID, Status: status}, limit, startingAfter)
}

// FindSessions pages through the sessions f selects, newest first, after
// the session startingAfter.
func (s *Service) FindSessions(ctx context.Context, f SessionFilter, limit int, startingAfter string) ([]Session, bool, error) {
	where, args := f.where()
	// Newest first by creation time: ids derived from idempotency keys
	// are not in time order.
	rows, err := s.db.Query(ctx, `SELECT `+sessionColumns+` FROM checkout_sessions WHERE `+where+`
		  AND ($6 = '' OR (created_at, id) < (SELECT created_at, id FROM checkout_sessions WHERE id = $6 AND app_id = $1))
		ORDER BY created_at DESC, id DESC LIMIT $7`, append(args, startingAfter, limit+1)...)
	if err != nil {
		return nil, false, fmt.Errorf("list sessions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Session, error) { return scanSession(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list sessions: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// SessionTotals sums, in one currency, the sessions a filter selects.
// Amounts are minor units; Paid, Refunded and Fees count only payments
// that were captured.
type SessionTotals struct {
	Currency string
	Count    int64 // sessions, paid or not
	Paid     int64 // captured payments, gross
	Refunded int64
	Fees     int64 // the platform's fees, net of fees returned with refunds
	Net      int64 // Paid - Refunded - Fees: what the developer keeps
}

// TotalSessions sums the sessions f selects, per currency.
func (s *Service) TotalSessions(ctx context.Context, f SessionFilter) ([]SessionTotals, error) {
	where, args := f.where()
	rows, err := s.db.Query(ctx, `SELECT currency, count(*),
			coalesce(sum(amount_total) FILTER (WHERE payment_status <> 'unpaid'), 0)::bigint,
			coalesce(sum(amount_refunded), 0)::bigint,
			coalesce(sum(fee - fee_refunded) FILTER (WHERE payment_status <> 'unpaid'), 0)::bigint
		FROM checkout_sessions WHERE `+where+` GROUP BY currency ORDER BY currency`, args...)
	if err != nil {
		return nil, fmt.Errorf("total sessions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SessionTotals, error) {
		var t SessionTotals
		err := r.Scan(&t.Currency, &t.Count, &t.Paid, &t.Refunded, &t.Fees)
		t.Net = t.Paid - t.Refunded - t.Fees
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("total sessions: %w", err)
	}
	return out, nil
}

// ListRefunds pages through the refunds of one of app appID's sessions,
// newest first.
func (s *Service) ListRefunds(ctx context.Context, appID, sessionID string, limit int, startingAfter string) ([]Refund, bool, error) {
	rows, err := s.db.Query(ctx, `SELECT `+refundColumns+` FROM refunds
		WHERE session_id = $1 AND app_id = $2 AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4`,
		sessionID, appID, startingAfter, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list refunds of %s: %w", sessionID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Refund, error) { return scanRefund(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list refunds of %s: %w", sessionID, err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
