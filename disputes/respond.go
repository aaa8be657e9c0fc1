package disputes

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/webhooks"
)

// RespondParams are the developer's answer to a dispute of its app.
type RespondParams struct {
	AppID     string
	DisputeID string
	// Evidence is required unless the developer accepts the dispute.
	Evidence *Evidence
	// Accept gives in: the dispute is lost at once.
	Accept bool
}

func (p RespondParams) validate() error {
	if p.Evidence == nil {
		if p.Accept {
			return nil
		}
		return minipay.Field("evidence", fmt.Errorf("%w: evidence, or accept: true", ErrMissing))
	}
	e := p.Evidence
	switch {
	case e.Text == "" && !p.Accept:
		return minipay.Field("evidence.text", fmt.Errorf("%w: evidence.text", ErrMissing))
	case utf8.RuneCountInString(e.Text) > EvidenceTextLenMax || !utf8.ValidString(e.Text):
		return minipay.Field("evidence.text", fmt.Errorf("%w: at most %d characters", ErrInvalid, EvidenceTextLenMax))
	case len(e.Files) > EvidenceFilesMax:
		return minipay.Field("evidence.files", fmt.Errorf("%w: at most %d files", ErrInvalid, EvidenceFilesMax))
	}
	for i, f := range e.Files {
		if f == "" || utf8.RuneCountInString(f) > EvidenceFileLenMax || !utf8.ValidString(f) {
			return minipay.Field(fmt.Sprintf("evidence.files[%d]", i),
				fmt.Errorf("%w: a file reference is 1–%d characters", ErrInvalid, EvidenceFileLenMax))
		}
	}
	return nil
}

// Respond records the developer's answer to dispute p.DisputeID of app
// p.AppID, before its evidence_due_by: evidence puts it under review
// (dispute.updated), accepting loses it at once (dispute.closed, and the
// money goes back to the payer). It can be answered once; another app's
// dispute is ErrNotFound.
func (s *Service) Respond(ctx context.Context, p RespondParams) (Dispute, error) {
	if err := p.validate(); err != nil {
		return Dispute{}, err
	}
	return retry(ctx, func() (Dispute, error) {
		d, err := s.Get(ctx, p.AppID, p.DisputeID)
		if err != nil {
			return Dispute{}, err
		}
		at := now()
		if err := answerable(d, at); err != nil {
			return Dispute{}, err
		}
		if p.Accept {
			return s.close(ctx, d, StatusLost, ClosedByAcceptance, p.Evidence, at)
		}
		return s.submit(ctx, d, p.Evidence, at)
	})
}

// Answerable reports whether the developer may still answer d at time at
// (it awaits a response and its deadline has not passed): what Respond
// checks, for pages that offer the answer only when it can succeed.
func (d Dispute) Answerable(at time.Time) bool { return answerable(d, at) == nil }

// answerable checks that the developer may still answer d at time at.
func answerable(d Dispute, at time.Time) error {
	switch {
	case d.Status == StatusUnderReview:
		return fmt.Errorf("%w: %s", ErrNotAwaitingResponse, d.ID)
	case d.ClosedBy == ClosedByDeadline:
		return fmt.Errorf("%w: it was due by %s", ErrDeadlinePassed, minipay.Timestamp(d.EvidenceDueBy))
	case !d.Open():
		return fmt.Errorf("%w: %s is %s", ErrClosed, d.ID, d.Status)
	case !at.Before(d.EvidenceDueBy):
		return fmt.Errorf("%w: it was due by %s", ErrDeadlinePassed, minipay.Timestamp(d.EvidenceDueBy))
	}
	return nil
}

// submit puts d under review with the developer's evidence. The update is
// guarded by the version read and by the deadline, so it cannot overtake a
// ruling or the deadline job: one of them changes the row, the other finds
// it changed.
func (s *Service) submit(ctx context.Context, d Dispute, e *Evidence, at time.Time) (Dispute, error) {
	next := d
	next.Status, next.Evidence, next.RespondedAt, next.Version = StatusUnderReview, e, at, d.Version+1
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE disputes SET status = 'under_review', evidence = $3, responded_at = $4,
				version = version + 1
			WHERE id = $1 AND version = $2 AND status = 'needs_response' AND evidence_due_by > $4`,
			d.ID, d.Version, encodeEvidence(e), at)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return errChanged
		}
		return webhooks.Emit(ctx, tx, webhooks.Event{Type: webhooks.DisputeUpdated, DeveloperID: d.DeveloperID,
			AppID: d.AppID, Object: next.Public(), ObjectID: d.ID, ObjectVersion: next.Version})
	})
	if errors.Is(err, errChanged) {
		return Dispute{}, err
	}
	if err != nil {
		return Dispute{}, fmt.Errorf("respond to dispute %s: %w", d.ID, err)
	}
	return s.Get(ctx, "", d.ID)
}
