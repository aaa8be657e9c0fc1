package disputes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/settlement"
	"github.com/minipay/minipay/webhooks"
)

// OpenParams are what the host says when its user complains.
type OpenParams struct {
	ID          string // derived from an idempotency key, or empty for a fresh one
	PaymentID   string // cs_… or in_…
	UserID      string // the host's user: must be the payer
	Amount      string // decimal in major units; empty for all that is left
	Reason      string
	Description string
}

func (p OpenParams) validate() error {
	switch {
	case p.PaymentID == "":
		return minipay.Field("payment", fmt.Errorf("%w: payment (a checkout session cs_… or an invoice in_…)", ErrMissing))
	case p.UserID == "":
		return minipay.Field("user_id", fmt.Errorf("%w: user_id, the payer", ErrMissing))
	case p.Reason == "":
		return minipay.Field("reason", fmt.Errorf("%w: reason", ErrMissing))
	case !slices.Contains(Reasons, p.Reason):
		return minipay.Field("reason", fmt.Errorf("%w: reason is one of %v", ErrInvalid, Reasons))
	case utf8.RuneCountInString(p.Description) > DescriptionLenMax || !utf8.ValidString(p.Description):
		return minipay.Field("description", fmt.Errorf("%w: at most %d characters", ErrInvalid, DescriptionLenMax))
	}
	return nil
}

// openedBy checks that d, the dispute whose id p's idempotency key
// derives, was opened by the same request: the dispute keeps every
// parameter the request carries (an amount left out took all that was
// left, and matches whatever that was). Another request under the same key
// is idempotency.ErrConflict, whatever became of the key's record.
func (p OpenParams) openedBy(d Dispute) error {
	same := d.PaymentID == p.PaymentID && d.UserID == p.UserID && d.Reason == p.Reason && d.Description == p.Description
	if same && p.Amount != "" {
		amount, err := ledger.ParseAmount(d.Currency, p.Amount)
		same = err == nil && amount == d.Amount
	}
	if !same {
		return fmt.Errorf("%w: it opened %s with other parameters", idempotency.ErrConflict, d.ID)
	}
	return nil
}

// Open opens a dispute of a payment for its payer: the disputed amount
// moves from the developer's pending balance to the platform's disputes
// account, in one ledger transfer with the dispute, the payment's new
// amount_disputed, the balance transaction and the dispute.created event.
//
// A payment that does not exist, was never captured, or was paid by
// another user is payments.ErrNotFound alike, so the host learns nothing
// of other users' payments.
func (s *Service) Open(ctx context.Context, p OpenParams) (Dispute, error) {
	if err := p.validate(); err != nil {
		return Dispute{}, err
	}
	if p.ID == "" {
		p.ID = id.New("dp")
	}
	return retry(ctx, func() (Dispute, error) { return s.tryOpen(ctx, p) })
}

func (s *Service) tryOpen(ctx context.Context, p OpenParams) (Dispute, error) {
	if d, err := s.Get(ctx, "", p.ID); err == nil {
		// Opened before under the same idempotency key: by this request,
		// or by another that must not be told it was.
		if err := p.openedBy(d); err != nil {
			return Dispute{}, err
		}
		return d, nil
	}
	pay, err := s.payments.Get(ctx, "", p.PaymentID)
	if err == nil && pay.UserID != p.UserID {
		err = fmt.Errorf("%w: %s", payments.ErrNotFound, p.PaymentID)
	}
	if err != nil {
		return Dispute{}, minipay.Field("payment", err)
	}
	created := now()
	if created.Sub(pay.CapturedAt) > OpenWindow {
		return Dispute{}, fmt.Errorf("%w: %s was captured on %s", ErrWindowPassed, pay.ID, minipay.Timestamp(pay.CapturedAt))
	}
	if open, ok, err := s.openOf(ctx, pay.ID); err != nil || ok {
		if err == nil {
			err = fmt.Errorf("%w: %s is disputed by %s", ErrAlreadyOpen, pay.ID, open.ID)
		}
		return Dispute{}, err
	}
	amount, err := disputable(pay, p.Amount)
	if err != nil {
		return Dispute{}, err
	}
	d := Dispute{ID: p.ID, PaymentID: pay.ID, AppID: pay.AppID, DeveloperID: pay.DeveloperID, UserID: pay.UserID,
		Customer: pay.Customer, Currency: pay.Currency, Amount: amount, Reason: p.Reason, Description: p.Description,
		Status: StatusNeedsResponse, EvidenceDueBy: created.Add(EvidenceWindow), Created: created, Version: 1}
	if _, err := s.ledger.EnsureAccount(ctx, chart.DisputesAccount(pay.Currency)); err != nil {
		return Dispute{}, fmt.Errorf("open dispute of %s: %w", pay.ID, err)
	}
	tr, stmts, err := openTransfer(pay, d)
	if err != nil {
		return Dispute{}, err
	}
	if _, err := s.ledger.Post(ctx, tr, stmts...); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.ConstraintName == "disputes_open_payment" {
			return Dispute{}, fmt.Errorf("%w: %s", ErrAlreadyOpen, pay.ID) // the database's own guard
		}
		return Dispute{}, fmt.Errorf("open dispute of %s: %w", pay.ID, err)
	}
	return s.Get(ctx, "", d.ID)
}

// disputable is the amount of a new dispute of pay: the one asked for, or
// all that is not refunded yet, never more.
func disputable(pay payments.Payment, amount string) (int64, error) {
	left := pay.Remaining()
	if amount == "" {
		if left <= 0 {
			return 0, minipay.Field("amount", fmt.Errorf("%w: %s has been refunded in full", ErrExceedsRemaining, pay.ID))
		}
		return left, nil
	}
	minor, err := ledger.ParseAmount(pay.Currency, amount)
	if err != nil {
		return 0, minipay.Field("amount", err)
	}
	if minor <= 0 {
		return 0, minipay.Field("amount", fmt.Errorf("%w: amount must be greater than zero", ErrInvalid))
	}
	if minor > left {
		return 0, minipay.Field("amount", fmt.Errorf("%w: %s %s left", ErrExceedsRemaining,
			ledger.FormatAmount(pay.Currency, left), pay.Currency))
	}
	return minor, nil
}

// openTransfer is the ledger transfer that withdraws d's amount from the
// developer, and what commits with it: the payment's guarded hold (a
// refund or another dispute computed from the same totals makes it fail),
// the dispute, its balance transaction and dispute.created.
func openTransfer(pay payments.Payment, d Dispute) (ledger.Transfer, []ledger.Statement, error) {
	tr := ledger.Transfer{ID: chart.Dispute(d.ID), Code: "dispute", Metadata: payments.MovementMetadata(pay, "minipay_dispute", d.ID),
		Postings: []ledger.Posting{
			{Account: chart.DeveloperPending(d.DeveloperID, d.Currency), Debit: d.Amount},
			{Account: chart.Disputes(d.Currency), Credit: d.Amount},
		}}
	stmts := []ledger.Statement{
		payments.Hold(pay, d.Amount),
		{SQL: `INSERT INTO disputes (id, payment_id, app_id, developer_id, user_id, customer, currency, amount, reason,
				description, status, evidence_due_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			Args: []any{d.ID, d.PaymentID, d.AppID, d.DeveloperID, d.UserID, d.Customer, d.Currency, d.Amount, d.Reason,
				null.String(d.Description), d.Status, d.EvidenceDueBy, d.Created}},
		// Like a refund, the withdrawal matures with its payment, so one
		// settlement run sees both.
		balanceTxn(settlement.BalanceTxn{Type: settlement.TxnDispute, Amount: -d.Amount}, d, pay.AvailableOn),
	}
	ev, err := event(webhooks.DisputeCreated, d)
	if err != nil {
		return ledger.Transfer{}, nil, err
	}
	return tr, append(stmts, ev), nil
}

// balanceTxn completes t as a balance transaction of dispute d, made now,
// maturing no sooner than its payment (availableOn).
func balanceTxn(t settlement.BalanceTxn, d Dispute, availableOn time.Time) ledger.Statement {
	t.DeveloperID, t.AppID, t.Currency, t.SourceID, t.PaymentID = d.DeveloperID, d.AppID, d.Currency, d.ID, d.PaymentID
	t.AvailableOn = later(now(), availableOn)
	sql, row := settlement.InsertBalanceTxnRow(t)
	return ledger.Statement{SQL: sql, Args: row, Row: true}
}

// event is the statement that writes the event of type typ for d as it is
// after the change.
func event(typ string, d Dispute) (ledger.Statement, error) {
	sql, row, err := webhooks.InsertRow(webhooks.Event{Type: typ, DeveloperID: d.DeveloperID, AppID: d.AppID,
		Object: d.Public(), ObjectID: d.ID, ObjectVersion: d.Version})
	if err != nil {
		return ledger.Statement{}, err
	}
	return ledger.Statement{SQL: sql, Args: row, Row: true}, nil
}
