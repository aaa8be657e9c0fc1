package payments

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ListRefunds pages through the refunds of payment paymentID of app appID,
// newest first, after the refund startingAfter.
func (s *Service) ListRefunds(ctx context.Context, appID, paymentID string, limit int, startingAfter string) ([]Refund, bool, error) {
	rows, err := s.db.Query(ctx, `SELECT `+refundColumns+` FROM refunds
		WHERE payment_id = $1 AND app_id = $2
		  AND ($3 = '' OR (created_at, id) < (SELECT created_at, id FROM refunds WHERE id = $3 AND app_id = $2))
		ORDER BY created_at DESC, id DESC LIMIT $4`, paymentID, appID, startingAfter, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("refunds of %s: %w", paymentID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Refund, error) { return scanRefund(r) })
	if err != nil {
		return nil, false, fmt.Errorf("refunds of %s: %w", paymentID, err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
