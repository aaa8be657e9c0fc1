package webhooks

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// EndpointHealth is how one endpoint's deliveries stand, database-wide.
type EndpointHealth struct {
	EndpointID     string
	AppID          string
	URL            string
	Status         string
	DisabledReason string
	FailingSince   time.Time // zero unless its latest attempts failed
	Pending        int64     // deliveries not finished
	Due            int64     // of which due now
	OldestDue      time.Time // when the longest-waiting due delivery came due; zero if none
	LastOutcome    string    // of the latest attempt: succeeded, failed, skipped (circuit open); "" if none
	LastAttemptAt  time.Time
}

// TroubledEndpoints pages through the endpoints an operator should look
// at, by id: those with deliveries waiting, failing, or disabled for
// failing. Healthy endpoints with nothing queued are left out.
func (s *Service) TroubledEndpoints(ctx context.Context, limit int, startingAfter string) ([]EndpointHealth, bool, error) {
	rows, err := s.db.Query(ctx, `
		SELECT w.id, w.app_id, w.url, w.status, coalesce(w.disabled_reason, ''), w.failing_since,
			coalesce(q.pending, 0), coalesce(q.due, 0), q.oldest_due, last.outcome, last.created_at
		FROM webhook_endpoints w
		LEFT JOIN (
			SELECT endpoint_id, count(*) AS pending, count(*) FILTER (WHERE next_attempt_at <= now()) AS due,
				min(next_attempt_at) FILTER (WHERE next_attempt_at <= now()) AS oldest_due
			FROM webhook_deliveries WHERE status = 'pending' GROUP BY endpoint_id) q ON q.endpoint_id = w.id
		LEFT JOIN LATERAL (
			SELECT a.outcome, a.created_at FROM webhook_attempts a WHERE a.endpoint_id = w.id ORDER BY a.id DESC LIMIT 1) last ON true
		WHERE w.status <> 'deleted' AND w.id > $1
		  AND (q.pending > 0 OR w.failing_since IS NOT NULL OR w.disabled_reason IS NOT NULL)
		ORDER BY w.id LIMIT $2`, startingAfter, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("troubled endpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EndpointHealth, error) {
		var (
			h                      EndpointHealth
			failing, oldest, lastT *time.Time
			lastOutcome            *string
		)
		err := r.Scan(&h.EndpointID, &h.AppID, &h.URL, &h.Status, &h.DisabledReason, &failing, &h.Pending, &h.Due,
			&oldest, &lastOutcome, &lastT)
		for _, t := range []struct {
			src *time.Time
			dst *time.Time
		}{{failing, &h.FailingSince}, {oldest, &h.OldestDue}, {lastT, &h.LastAttemptAt}} {
			if t.src != nil {
				*t.dst = *t.src
			}
		}
		if lastOutcome != nil {
			h.LastOutcome = *lastOutcome
		}
		return h, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("troubled endpoints: %w", err)
	}
	return page(out, limit)
}

// Breakers returns the state of each endpoint's circuit breaker in this
// process's dispatcher ("closed", "half-open", "open"), by endpoint id:
// empty when this process runs no dispatcher. Breakers are per process,
// so other replicas may see an endpoint differently.
func (s *Service) Breakers() map[string]string {
	d := s.running.Load()
	out := map[string]string{}
	if d == nil {
		return out
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, st := range d.endpoints {
		out[id] = st.breaker.State().String()
	}
	return out
}
