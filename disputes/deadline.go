package disputes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/internal/leader"
)

// DeadlineJob names the job of losing overdue disputes among the jobs
// replicas elect a leader for (package leader): one replica at a time runs
// it.
const DeadlineJob int64 = 0x6d696e6970617944 // "minipayD"

// overdueBatchMax bounds the disputes one LoseOverdue call reads.
const overdueBatchMax = 500

// errNotDue: the dispute was answered or closed, or its deadline moved,
// since it was listed as overdue.
var errNotDue = errors.New("disputes: not overdue any more")

// LoseOverdue loses, as the deadline rules, up to limit disputes that were
// not answered by their evidence_due_by, the earliest deadline first, and
// returns how many it closed. A dispute answered or ruled meanwhile is
// left as it is. It goes on past a dispute it fails to close (logged) and
// returns the first such error with the count.
func (s *Service) LoseOverdue(ctx context.Context, limit int) (int, error) {
	limit = min(max(limit, 1), overdueBatchMax)
	rows, err := s.db.Query(ctx, `SELECT id FROM disputes WHERE status = 'needs_response' AND evidence_due_by <= $1
		ORDER BY evidence_due_by, id LIMIT $2`, now(), limit)
	if err != nil {
		return 0, fmt.Errorf("overdue disputes: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("overdue disputes: %w", err)
	}
	n := 0
	var first error
	for _, id := range ids {
		_, err := retry(ctx, func() (Dispute, error) {
			d, err := s.Get(ctx, "", id)
			if err != nil {
				return Dispute{}, err
			}
			at := now()
			if d.Status != StatusNeedsResponse || at.Before(d.EvidenceDueBy) {
				return Dispute{}, errNotDue
			}
			return s.close(ctx, d, StatusLost, ClosedByDeadline, nil, at)
		})
		switch {
		case err == nil:
			n++
		case errors.Is(err, errNotDue), errors.Is(err, ErrClosed):
		case ctx.Err() != nil:
			return n, ctx.Err()
		default:
			s.log.Error("lose overdue dispute", "dispute", id, "err", err)
			if first == nil {
				first = fmt.Errorf("lose overdue dispute %s: %w", id, err)
			}
		}
	}
	return n, first
}

// RunDeadlines loses overdue disputes every interval until ctx ends. Every
// replica may run it; one at a time leads and does the work (package
// leader), the others find the job taken and wait for the next tick. The
// dispute's guarded update keeps a dispute from being closed twice even
// without the leader; the leader keeps replicas from racing for the same
// rows.
func (s *Service) RunDeadlines(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := leader.Run(ctx, s.db, DeadlineJob, false, s.loseAllOverdue); err != nil && ctx.Err() == nil {
			s.log.Error("dispute deadlines", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// loseAllOverdue runs LoseOverdue until a batch comes back short.
func (s *Service) loseAllOverdue(ctx context.Context) error {
	for {
		n, err := s.LoseOverdue(ctx, overdueBatchMax)
		if n > 0 {
			s.log.Info("disputes lost to the deadline", "count", n)
		}
		if err != nil || n < overdueBatchMax {
			return err
		}
	}
}
