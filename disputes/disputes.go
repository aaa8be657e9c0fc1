// Package disputes is the user's recourse when a payment went wrong, as
// WeChat Pay's complaints and Stripe's disputes are: the host opens a
// dispute for its user, the developer answers with evidence by a deadline
// (or accepts), and the platform rules; the money follows the ruling.
//
// A dispute is of a payment (package payments), whatever it paid for: a
// checkout session or an invoice. Its money moves in three ledger
// transfers' worth of steps, each committed with everything it changes:
//
//   - opened: the amount leaves the developer's pending balance for the
//     platform's disputes account (even when that leaves the developer
//     negative; settlement carries it forward), with the dispute row, the
//     payment's amount_disputed, a balance transaction and dispute.created;
//   - won: the amount goes back to the developer;
//   - lost (by ruling, by the developer's acceptance, or by the deadline
//     passing unanswered): the amount goes to the payer's wallet, the
//     platform returning its fee share pro rata as for a refund, and the
//     payment's amount_refunded grows.
//
// The payment's one guarded row keeps refunds and disputes of a payment
// within what was captured, whatever runs concurrently on any replica.
package disputes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
)

// Statuses of a dispute: needs_response until the developer answers, then
// under_review until the platform rules; won or lost once closed.
const (
	StatusNeedsResponse = "needs_response"
	StatusUnderReview   = "under_review"
	StatusWon           = "won"
	StatusLost          = "lost"
)

// What closed a dispute.
const (
	ClosedByRuling     = "ruling"     // the platform ruled (won or lost)
	ClosedByAcceptance = "acceptance" // the developer accepted it: lost
	ClosedByDeadline   = "deadline"   // no answer by evidence_due_by: lost
)

// Reasons a user gives.
var Reasons = []string{"not_received", "not_as_described", "unauthorized", "duplicate", "other"}

// Limits.
const (
	// OpenWindow is how long after its capture a payment may be disputed.
	OpenWindow = 180 * 24 * time.Hour
	// EvidenceWindow is how long the developer has to answer.
	EvidenceWindow = 7 * 24 * time.Hour

	DescriptionLenMax  = 1000
	EvidenceTextLenMax = 20000
	EvidenceFilesMax   = 10
	EvidenceFileLenMax = 500

	// attemptsMax bounds the retries of a change whose payment or dispute
	// keeps changing under it.
	attemptsMax = 8
)

// Errors a caller may branch on.
var (
	// ErrNotFound: no such dispute (for this app).
	ErrNotFound = minipay.NewError(minipay.KindNotFound, "dispute_not_found", "no such dispute")
	// ErrAlreadyOpen: the payment has an open dispute; one at a time.
	ErrAlreadyOpen = minipay.NewError(minipay.KindConflict, "dispute_already_open", "the payment already has an open dispute")
	// ErrExceedsRemaining: more than the payment has left to dispute (what
	// was captured, less refunds).
	ErrExceedsRemaining = minipay.NewError(minipay.KindInvalid, "dispute_exceeds_remaining", "the dispute exceeds what remains of the payment")
	// ErrWindowPassed: the payment was captured more than OpenWindow ago.
	ErrWindowPassed = minipay.NewError(minipay.KindUnprocessable, "dispute_window_passed", "payments can be disputed for 180 days after capture")
	// ErrDeadlinePassed: the developer's time to answer is over.
	ErrDeadlinePassed = minipay.NewError(minipay.KindUnprocessable, "evidence_deadline_passed", "the time to answer this dispute has passed")
	// ErrNotAwaitingResponse: the developer has answered already.
	ErrNotAwaitingResponse = minipay.NewError(minipay.KindConflict, "dispute_not_awaiting_response", "the dispute has been answered and is under review")
	// ErrClosed: the dispute was ruled already; a ruling is final.
	ErrClosed = minipay.NewError(minipay.KindConflict, "dispute_closed", "the dispute is closed")
	// ErrContention: the payment or dispute kept changing; retry.
	ErrContention = minipay.NewError(minipay.KindConflict, "dispute_contention", "the payment changed too often meanwhile; retry")
	// ErrInvalid: a parameter is malformed; the error names it.
	ErrInvalid = minipay.NewError(minipay.KindInvalid, "parameter_invalid", "invalid parameter")
	// ErrMissing: a required parameter is missing; the error names it.
	ErrMissing = minipay.NewError(minipay.KindInvalid, "parameter_missing", "a required parameter is missing")

	// errChanged: the dispute changed between reading it and writing a
	// change computed from it; the change is computed again.
	errChanged = minipay.NewError(minipay.KindConflict, "state_changed", "the dispute changed meanwhile")
)

// Evidence is the developer's answer.
type Evidence struct {
	Text  string
	Files []string // references to files the developer keeps (URLs, ids)
}

// Dispute is a user's complaint about a payment. Amounts are minor units
// of Currency.
type Dispute struct {
	ID            string
	PaymentID     string // cs_… or in_…
	AppID         string
	DeveloperID   string
	UserID        string // the payer as the host knows them: never shown to the app
	Customer      string // the app's pseudonymous id for the payer
	Currency      string
	Amount        int64
	FeeRefunded   int64 // the platform's fee share returned when lost
	Reason        string
	Description   string
	Status        string
	Evidence      *Evidence // nil until answered
	Outcome       string    // "", won or lost
	ClosedBy      string    // "", or one of the ClosedBy values
	EvidenceDueBy time.Time
	RespondedAt   time.Time
	ClosedAt      time.Time
	Created       time.Time
	Version       int
}

// Open reports whether the dispute awaits the ruling.
func (d Dispute) Open() bool { return d.Status == StatusNeedsResponse || d.Status == StatusUnderReview }

// Options configures a Service. The zero value is ready to use.
type Options struct {
	Log *slog.Logger
}

// Service is disputes over one database. It is safe for concurrent use.
type Service struct {
	db       *pgxpool.Pool
	ledger   *ledger.Ledger
	payments *payments.Service
	log      *slog.Logger
}

// New returns a Service.
func New(db *pgxpool.Pool, l *ledger.Ledger, p *payments.Service, o Options) *Service {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Service{db: db, ledger: l, payments: p, log: o.Log}
}

const columns = `id, payment_id, app_id, developer_id, user_id, customer, currency, amount, fee_refunded, reason,
	coalesce(description, ''), status, evidence, coalesce(outcome, ''), coalesce(closed_by, ''), evidence_due_by,
	responded_at, closed_at, created_at, version`

func scan(row pgx.Row) (Dispute, error) {
	var (
		d                 Dispute
		evidence          []byte
		responded, closed *time.Time
	)
	err := row.Scan(&d.ID, &d.PaymentID, &d.AppID, &d.DeveloperID, &d.UserID, &d.Customer, &d.Currency, &d.Amount,
		&d.FeeRefunded, &d.Reason, &d.Description, &d.Status, &evidence, &d.Outcome, &d.ClosedBy, &d.EvidenceDueBy,
		&responded, &closed, &d.Created, &d.Version)
	if err != nil {
		return Dispute{}, err
	}
	if responded != nil {
		d.RespondedAt = *responded
	}
	if closed != nil {
		d.ClosedAt = *closed
	}
	if evidence != nil {
		var e evidenceJSON
		if err := json.Unmarshal(evidence, &e); err != nil {
			return Dispute{}, fmt.Errorf("evidence of dispute %s: %w", d.ID, err)
		}
		d.Evidence = &Evidence{Text: e.Text, Files: e.Files}
	}
	return d, nil
}

// evidenceJSON is how evidence is stored.
type evidenceJSON struct {
	Text  string   `json:"text"`
	Files []string `json:"files"`
}

func encodeEvidence(e *Evidence) []byte {
	if e == nil {
		return nil
	}
	files := e.Files
	if files == nil {
		files = []string{}
	}
	b, _ := json.Marshal(evidenceJSON{Text: e.Text, Files: files}) // strings always encode
	return b
}

// Get returns dispute id of app appID; another app's dispute is
// ErrNotFound. An empty appID reads any dispute (the platform's and the
// host's view).
func (s *Service) Get(ctx context.Context, appID, id string) (Dispute, error) {
	d, err := scan(s.db.QueryRow(ctx, `SELECT `+columns+` FROM disputes WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) || err == nil && appID != "" && d.AppID != appID {
		return Dispute{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Dispute{}, fmt.Errorf("get dispute %s: %w", id, err)
	}
	return d, nil
}

// Filter selects disputes for List. Zero fields select all.
type Filter struct {
	AppID         string // one app's disputes (an app key sees only its own)
	Status        string // one of the Status values
	PaymentID     string // the disputes of one payment
	Limit         int    // 1–100
	StartingAfter string // a dispute id of the previous page
}

// List pages through the disputes f selects, newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]Dispute, bool, error) {
	if f.Limit < 1 || f.Limit > 100 {
		return nil, false, minipay.Field("limit", fmt.Errorf("%w: limit is 1–100", ErrInvalid))
	}
	switch f.Status {
	case "", StatusNeedsResponse, StatusUnderReview, StatusWon, StatusLost:
	default:
		return nil, false, minipay.Field("status", fmt.Errorf("%w: status is needs_response, under_review, won or lost", ErrInvalid))
	}
	// Newest first by creation time: ids derived from idempotency keys are
	// not in time order.
	rows, err := s.db.Query(ctx, `SELECT `+columns+` FROM disputes
		WHERE ($1 = '' OR app_id = $1) AND ($2 = '' OR status = $2) AND ($3 = '' OR payment_id = $3)
		  AND ($4 = '' OR (created_at, id) < (SELECT created_at, id FROM disputes WHERE id = $4 AND ($1 = '' OR app_id = $1)))
		ORDER BY created_at DESC, id DESC LIMIT $5`, f.AppID, f.Status, f.PaymentID, f.StartingAfter, f.Limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list disputes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Dispute, error) { return scan(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list disputes: %w", err)
	}
	if len(out) > f.Limit {
		return out[:f.Limit], true, nil
	}
	return out, false, nil
}

// openOf returns the open dispute of payment paymentID, if any.
func (s *Service) openOf(ctx context.Context, paymentID string) (Dispute, bool, error) {
	d, err := scan(s.db.QueryRow(ctx, `SELECT `+columns+` FROM disputes
		WHERE payment_id = $1 AND status IN ('needs_response', 'under_review')`, paymentID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Dispute{}, false, nil
	}
	if err != nil {
		return Dispute{}, false, fmt.Errorf("open dispute of %s: %w", paymentID, err)
	}
	return d, true, nil
}

// retry runs fn until it returns something other than a change made
// meanwhile (payments.ErrStateChanged, errChanged), at most attemptsMax
// times, backing off a little more each time.
func retry[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	var zero T
	for attempt := 0; attempt < attemptsMax; attempt++ {
		v, err := fn()
		if !errors.Is(err, payments.ErrStateChanged) && !errors.Is(err, errChanged) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return zero, ErrContention
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
