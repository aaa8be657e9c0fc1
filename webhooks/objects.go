package webhooks

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// EventSummary is one event in a list: what happened to which object,
// without the object itself.
type EventSummary struct {
	ID       string
	Type     string
	ObjectID string
	Created  time.Time
}

// objectIDsMax bounds the objects one ObjectEvents call asks about.
const objectIDsMax = 100

// ObjectEvents lists the owner's events about any of objectIDs (a payment
// and its refunds, say), newest first, at most limit of them, after the
// event startingAfter.
func (s *Service) ObjectEvents(ctx context.Context, o Owner, objectIDs []string, limit int, startingAfter string) ([]EventSummary, bool, error) {
	if len(objectIDs) > objectIDsMax {
		objectIDs = objectIDs[:objectIDsMax]
	}
	rows, err := s.db.Query(ctx, `SELECT id, type, object_id, created_at FROM events
		WHERE object_id = ANY ($1) AND (app_id = $2 OR (app_id IS NULL AND developer_id = $3))
		  AND ($4 = '' OR id < $4)
		ORDER BY id DESC LIMIT $5`, objectIDs, o.AppID, o.DeveloperID, startingAfter, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("events of %v: %w", objectIDs, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EventSummary, error) {
		var e EventSummary
		return e, r.Scan(&e.ID, &e.Type, &e.ObjectID, &e.Created)
	})
	if err != nil {
		return nil, false, fmt.Errorf("events of %v: %w", objectIDs, err)
	}
	return page(out, limit)
}
