package disputes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/settlement"
	"github.com/minipay/minipay/webhooks"
)

// Close is the platform's ruling on dispute id: outcome won gives the
// money back to the developer, lost gives it to the payer (the platform
// returning its fee share, as for a refund). A ruling is final: ruling a
// closed dispute is ErrClosed.
func (s *Service) Close(ctx context.Context, id, outcome string) (Dispute, error) {
	switch outcome {
	case StatusWon, StatusLost:
	case "":
		return Dispute{}, minipay.Field("outcome", fmt.Errorf("%w: outcome, won or lost", ErrMissing))
	default:
		return Dispute{}, minipay.Field("outcome", fmt.Errorf("%w: outcome is won or lost", ErrInvalid))
	}
	return retry(ctx, func() (Dispute, error) {
		d, err := s.Get(ctx, "", id)
		if err != nil {
			return Dispute{}, err
		}
		if !d.Open() {
			return Dispute{}, fmt.Errorf("%w: %s was %s by %s", ErrClosed, d.ID, d.Status, d.ClosedBy)
		}
		return s.close(ctx, d, outcome, ClosedByRuling, nil, now())
	})
}

// close ends open dispute d with outcome, closed by by at time at, in one
// ledger transfer with the payment's guarded change, the dispute's guarded
// update, the balance transaction and dispute.closed. evidence, for an
// acceptance, is what the developer said with it.
//
// Every ruling of a dispute posts the transfer DisputeClose(d.ID): two
// closers racing (the platform and the deadline job) cannot both move the
// money, whatever else they disagree on; the one that finds the transfer
// written gets ErrClosed.
func (s *Service) close(ctx context.Context, d Dispute, outcome, by string, evidence *Evidence, at time.Time) (Dispute, error) {
	pay, err := s.payments.Get(ctx, "", d.PaymentID)
	if err != nil {
		return Dispute{}, fmt.Errorf("close dispute %s: %w", d.ID, err)
	}
	next := d
	next.Status, next.Outcome, next.ClosedBy, next.ClosedAt, next.Version = outcome, outcome, by, at, d.Version+1
	if by == ClosedByAcceptance {
		next.RespondedAt, next.Evidence = at, evidence
	}
	var tr ledger.Transfer
	var stmts []ledger.Statement
	if outcome == StatusWon {
		tr, stmts = wonTransfer(pay, next)
	} else {
		next.FeeRefunded = payments.FeeShare(pay, d.Amount)
		tr, stmts = lostTransfer(pay, next)
	}
	ev, err := event(webhooks.DisputeClosed, next)
	if err != nil {
		return Dispute{}, err
	}
	stmts = append([]ledger.Statement{closeStatement(d, next)}, append(stmts, ev)...)
	posted, err := s.ledger.Post(ctx, tr, stmts...)
	if errors.Is(err, ledger.ErrIdempotencyConflict) || err == nil && posted.Replayed {
		return Dispute{}, s.closedMeanwhile(ctx, d.ID, by)
	}
	if err != nil {
		return Dispute{}, fmt.Errorf("close dispute %s: %w", d.ID, err)
	}
	return s.Get(ctx, "", d.ID)
}

// closeStatement is the dispute's update from d to next, guarded by the
// version read, by its being open and, for an acceptance or the deadline,
// by which side of the deadline the closing time falls.
func closeStatement(d, next Dispute) ledger.Statement {
	var evidence []byte
	var responded *time.Time
	if next.ClosedBy == ClosedByAcceptance {
		evidence, responded = encodeEvidence(next.Evidence), &next.RespondedAt
	}
	return ledger.Statement{
		SQL: `UPDATE disputes SET status = $3, outcome = $3, closed_by = $4, closed_at = $5, fee_refunded = $6,
				evidence = coalesce($7, evidence), responded_at = coalesce($8, responded_at), version = version + 1
			WHERE id = $1 AND version = $2 AND status IN ('needs_response', 'under_review')
			  AND ($4 <> 'acceptance' OR (status = 'needs_response' AND evidence_due_by > $5))
			  AND ($4 <> 'deadline' OR (status = 'needs_response' AND evidence_due_by <= $5))`,
		Args:  []any{d.ID, d.Version, next.Status, next.ClosedBy, next.ClosedAt, next.FeeRefunded, evidence, responded},
		Check: ledger.ExpectRows(1, errChanged),
	}
}

// wonTransfer gives the disputed amount back to the developer.
func wonTransfer(pay payments.Payment, d Dispute) (ledger.Transfer, []ledger.Statement) {
	tr := ledger.Transfer{ID: chart.DisputeClose(d.ID), Code: "dispute_won", Metadata: payments.MovementMetadata(pay, "minipay_dispute", d.ID),
		Postings: []ledger.Posting{
			{Account: chart.Disputes(d.Currency), Debit: d.Amount},
			{Account: chart.DeveloperPending(d.DeveloperID, d.Currency), Credit: d.Amount},
		}}
	return tr, []ledger.Statement{
		payments.Release(pay, d.Amount),
		balanceTxn(settlement.BalanceTxn{Type: settlement.TxnDisputeReversal, Amount: d.Amount}, d, pay.AvailableOn),
	}
}

// lostTransfer gives the disputed amount to the payer's wallet as a refund
// of it would: the disputes account gives the developer's share (it holds
// the whole amount, withdrawn from the developer when the dispute opened),
// the platform's fee account the fee share. The disputes account then
// still holds the fee share it withdrew from the developer, and gives it
// back to them: the developer loses what a refund would have cost.
func lostTransfer(pay payments.Payment, d Dispute) (ledger.Transfer, []ledger.Statement) {
	fee := d.FeeRefunded
	disputes := chart.Disputes(d.Currency)
	postings := payments.GiveBackFrom(pay, disputes, d.Amount, fee)
	if fee > 0 {
		postings = debit(postings, disputes, fee)
		postings = append(postings, ledger.Posting{Account: chart.DeveloperPending(d.DeveloperID, d.Currency), Credit: fee})
	}
	tr := ledger.Transfer{ID: chart.DisputeClose(d.ID), Code: "dispute_lost", Metadata: payments.MovementMetadata(pay, "minipay_dispute", d.ID),
		Postings: postings}
	stmts := []ledger.Statement{payments.Lose(pay, d.Amount, fee)}
	if fee > 0 {
		stmts = append(stmts, balanceTxn(settlement.BalanceTxn{Type: settlement.TxnDisputeFeeReturn, Amount: 0, Fee: -fee}, d, pay.AvailableOn))
	}
	return tr, stmts
}

// debit adds amount to account's debit among postings, or a posting of
// it: a transfer names each account once.
func debit(postings []ledger.Posting, account string, amount int64) []ledger.Posting {
	for i := range postings {
		if postings[i].Account == account {
			postings[i].Debit += amount
			return postings
		}
	}
	return append(postings, ledger.Posting{Account: account, Debit: amount})
}

// closedMeanwhile explains why dispute id could not be closed by by: it
// was ruled, accepted or lost to the deadline meanwhile.
func (s *Service) closedMeanwhile(ctx context.Context, id, by string) error {
	d, err := s.Get(ctx, "", id)
	if err != nil {
		return err
	}
	if by == ClosedByAcceptance && d.ClosedBy == ClosedByDeadline {
		return fmt.Errorf("%w: it was due by %s", ErrDeadlinePassed, minipay.Timestamp(d.EvidenceDueBy))
	}
	return fmt.Errorf("%w: %s was %s by %s", ErrClosed, d.ID, d.Status, d.ClosedBy)
}
