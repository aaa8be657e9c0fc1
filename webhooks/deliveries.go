package webhooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay"
)

// AttemptObject is one logged delivery attempt as developers see it.
type AttemptObject struct {
	ID              string  `json:"id"`
	Object          string  `json:"object"`
	Endpoint        string  `json:"webhook_endpoint"`
	Event           string  `json:"event"`
	Attempt         int     `json:"attempt"`
	Outcome         string  `json:"outcome"` // succeeded, failed, or skipped (circuit open, not sent)
	StatusCode      *int    `json:"status_code"`
	LatencyMs       float64 `json:"latency_ms"`
	ResponseExcerpt string  `json:"response_excerpt"` // the first KiB of the answer
	Error           string  `json:"error"`
	NextAttemptAt   *string `json:"next_attempt_at"` // when it is retried, if it is
	Created         string  `json:"created"`         // when the attempt started
}

// ListAttempts pages through an endpoint's attempt log, newest first.
func (s *Service) ListAttempts(ctx context.Context, o Owner, endpointID string, limit int, startingAfter string) ([]AttemptObject, bool, error) {
	if _, err := s.GetEndpoint(ctx, o, endpointID); err != nil {
		return nil, false, err
	}
	rows, err := s.db.Query(ctx, `SELECT id, endpoint_id, event_id, attempt, outcome, status_code, latency_us,
			response_excerpt, error, next_attempt_at, created_at
		FROM webhook_attempts WHERE endpoint_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3`,
		endpointID, startingAfter, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list attempts of %s: %w", endpointID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AttemptObject, error) {
		var (
			a         = AttemptObject{Object: "webhook_attempt"}
			latencyUs int64
			next      *time.Time
			created   time.Time
		)
		if err := r.Scan(&a.ID, &a.Endpoint, &a.Event, &a.Attempt, &a.Outcome, &a.StatusCode, &latencyUs,
			&a.ResponseExcerpt, &a.Error, &next, &created); err != nil {
			return a, err
		}
		a.LatencyMs = float64(latencyUs) / 1000
		a.Created = minipay.Timestamp(created)
		if next != nil {
			t := minipay.Timestamp(*next)
			a.NextAttemptAt = &t
		}
		return a, nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("list attempts of %s: %w", endpointID, err)
	}
	return page(out, limit)
}

// Redelivery says which endpoints an event was queued to again.
type Redelivery struct {
	Object    string   `json:"object"`
	Event     string   `json:"event"`
	Endpoints []string `json:"webhook_endpoints"`
}

// Redeliver queues an event again: to endpointID, or, when it is empty, to
// every enabled endpoint of the owner's app subscribed to its type. The new
// deliveries start a fresh schedule; the webhook-id stays the event id, so
// a receiver that already processed it can recognise it.
func (s *Service) Redeliver(ctx context.Context, o Owner, eventID, endpointID string) (Redelivery, error) {
	var typ string
	err := s.db.QueryRow(ctx, `SELECT type FROM events
		WHERE id = $1 AND (app_id = $2 OR (app_id IS NULL AND developer_id = $3))`,
		eventID, o.AppID, o.DeveloperID).Scan(&typ)
	if errors.Is(err, pgx.ErrNoRows) {
		return Redelivery{}, fmt.Errorf("%w: %s", ErrEventNotFound, eventID)
	}
	if err != nil {
		return Redelivery{}, fmt.Errorf("redeliver %s: %w", eventID, err)
	}
	if endpointID != "" {
		e, err := s.GetEndpoint(ctx, o, endpointID)
		if err != nil {
			return Redelivery{}, err
		}
		if e.Status != StatusEnabled {
			return Redelivery{}, fmt.Errorf("%w: %s", ErrEndpointDisabled, endpointID)
		}
	}
	rows, err := s.db.Query(ctx, `INSERT INTO webhook_deliveries (event_id, endpoint_id)
		SELECT $1, w.id FROM webhook_endpoints w
		WHERE w.app_id = $2 AND w.status = 'enabled' AND ($3 = '' OR w.id = $3)
		  AND ($3 <> '' OR '*' = ANY (w.enabled_events) OR $4 = ANY (w.enabled_events))
		ORDER BY w.id
		RETURNING endpoint_id`, eventID, o.AppID, endpointID, typ)
	if err != nil {
		return Redelivery{}, fmt.Errorf("redeliver %s: %w", eventID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return Redelivery{}, fmt.Errorf("redeliver %s: %w", eventID, err)
	}
	if len(ids) == 0 {
		return Redelivery{}, fmt.Errorf("%w: %s", ErrNoEndpoints, eventID)
	}
	return Redelivery{Object: "redelivery", Event: eventID, Endpoints: ids}, nil
}

// Backlog is how many deliveries wait, database-wide.
type Backlog struct {
	Pending   int64         // not finished: due now or scheduled for a retry
	Due       int64         // whose attempt time has come
	OldestDue time.Duration // how long the oldest due one has waited
}

// Backlog measures the delivery queue, for the metrics an operator alerts
// on: a due count that keeps growing means the dispatchers fall behind.
func (s *Service) Backlog(ctx context.Context) (Backlog, error) {
	var (
		b      Backlog
		oldest float64
	)
	err := s.db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE next_attempt_at <= now()),
			coalesce(extract(epoch FROM now() - min(next_attempt_at) FILTER (WHERE next_attempt_at <= now())), 0)::float8
		FROM webhook_deliveries WHERE status = 'pending'`).Scan(&b.Pending, &b.Due, &oldest)
	if err != nil {
		return Backlog{}, fmt.Errorf("measure webhook backlog: %w", err)
	}
	b.OldestDue = time.Duration(oldest * float64(time.Second))
	return b, nil
}
