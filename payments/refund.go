package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/settlement"
	"github.com/minipay/minipay/webhooks"
)

// Errors of refunds a caller may branch on.
var (
	ErrAlreadyRefunded = minipay.NewError(minipay.KindConflict, "charge_already_refunded", "the payment has been refunded in full")
	ErrNotRefundable   = minipay.NewError(minipay.KindUnprocessable, "not_refundable", "payments through this option are not refundable")
	ErrRefundWindow    = minipay.NewError(minipay.KindUnprocessable, "refund_window_passed", "the option's refund window has passed")
	ErrRefundTooLarge  = minipay.NewError(minipay.KindInvalid, "refund_exceeds_remaining", "the refund exceeds what remains of the payment")
	ErrRefundNotFound  = minipay.NewError(minipay.KindNotFound, "refund_not_found", "no such refund")
	// ErrRefundContention: concurrent refunds or disputes of the payment
	// kept changing it; retry with the same Idempotency-Key (a transient
	// answer, never replayed).
	ErrRefundContention = minipay.NewTransientError(minipay.KindConflict, "refund_contention", "too many concurrent refunds of this payment; retry")
	// ErrStateChanged: the payment changed between reading it and writing
	// a change computed from it (a refund, a dispute opened or ruled);
	// nothing was written, and the change should be computed again from
	// the payment as it is now. Transient: a retry may not meet it.
	ErrStateChanged = minipay.NewTransientError(minipay.KindConflict, "state_changed", "the payment changed meanwhile; retry")
)

// Refund gives money of a captured payment back to the user.
type Refund struct {
	ID          string
	PaymentID   string // cs_… or in_…
	AppID       string
	DeveloperID string
	Currency    string
	Amount      int64
	FeeRefunded int64 // the share of the platform's fee returned with it
	Reason      string
	Status      string
	Metadata    map[string]string
	Created     time.Time
}

// RefundParams are the parameters of a refund.
type RefundParams struct {
	// ID, if not empty, is derived from an idempotency key and RequestHash
	// is the request's fingerprint: refunding again with the same request
	// returns the refund, with another is idempotency.ErrConflict.
	ID          string
	RequestHash []byte
	AppID       string
	PaymentID   string // the session or invoice paid
	Amount      string // decimal in major units; empty for all that is left
	Reason      string
	Metadata    map[string]string
}

// refundAttemptsMax bounds retries when concurrent changes of one payment
// keep changing it under us.
const refundAttemptsMax = 8

// ReasonLenMax bounds a refund's reason.
const ReasonLenMax = 500

// Refund refunds part or all of a payment of app p.AppID: the developer's
// pending balance and the platform's fee account give back their shares
// (the fee pro rata), the user's wallet gets the amount, in one ledger
// transfer with the payment's new totals, the refund, the balance
// transaction and the refund.succeeded event. Concurrent refunds and
// disputes of one payment can never together exceed what was captured, and
// a refund never touches what an open dispute holds.
func (s *Service) Refund(ctx context.Context, p RefundParams) (Refund, error) {
	if p.ID == "" {
		p.ID = id.New("re")
	}
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	if err := ledger.ValidateMetadata(p.Metadata); err != nil {
		return Refund{}, err
	}
	if utf8.RuneCountInString(p.Reason) > ReasonLenMax || !utf8.ValidString(p.Reason) {
		return Refund{}, minipay.Field("reason", fmt.Errorf("%w: at most %d characters", ErrInvalid, ReasonLenMax))
	}
	if p.PaymentID == "" {
		return Refund{}, minipay.Field("checkout_session", fmt.Errorf("%w: checkout_session or invoice", ErrMissing))
	}
	// Refunds of one payment are computed from its current totals, so they
	// take turns within this process; across replicas the guarded update
	// catches a collision and the refund is computed again.
	unlock := s.refundLocks.lock(p.PaymentID)
	defer unlock()
	for attempt := 0; attempt < refundAttemptsMax; attempt++ {
		r, err := s.tryRefund(ctx, p)
		if !errors.Is(err, ErrStateChanged) {
			return r, err
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return Refund{}, fmt.Errorf("%w: %s", ErrRefundContention, p.PaymentID)
}

func (s *Service) tryRefund(ctx context.Context, p RefundParams) (Refund, error) {
	if r, stored, err := s.refundWithHash(ctx, p.AppID, p.ID); err == nil {
		// Made before under the same idempotency key: by this request, or
		// by another that must not be told it was.
		if err := idempotency.SameRequest(p.ID, stored, p.RequestHash); err != nil {
			return Refund{}, err
		}
		return r, nil
	}
	pay, err := s.Get(ctx, p.AppID, p.PaymentID)
	if err != nil {
		return Refund{}, minipay.Field(ParamOf(p.PaymentID), err)
	}
	now, err := s.now(ctx, pay)
	if err != nil {
		return Refund{}, fmt.Errorf("refund %s: %w", pay.ID, err)
	}
	amount, err := refundable(pay, p.Amount, now)
	if err != nil {
		return Refund{}, err
	}
	r := Refund{ID: p.ID, PaymentID: pay.ID, AppID: pay.AppID, DeveloperID: pay.DeveloperID, Currency: pay.Currency,
		Amount: amount, FeeRefunded: FeeShare(pay, amount), Reason: p.Reason, Status: "succeeded", Metadata: p.Metadata,
		Created: time.Now().UTC().Truncate(time.Microsecond)}
	tr, stmts, err := refundTransfer(pay, r, p.RequestHash, now)
	if err != nil {
		return Refund{}, err
	}
	if _, err := s.ledger.Post(ctx, tr, stmts...); err != nil {
		return Refund{}, fmt.Errorf("refund %s: %w", pay.ID, err)
	}
	return s.GetRefund(ctx, p.AppID, r.ID)
}

// ParamOf names the request parameter that carries a payment id: the
// checkout_session or the invoice.
func ParamOf(paymentID string) string {
	if KindOf(paymentID) == KindInvoice {
		return "invoice"
	}
	return "checkout_session"
}

// refundable checks that pay can be refunded at now and returns the amount:
// the one asked for, or all that is left.
func refundable(pay Payment, amount string, now time.Time) (int64, error) {
	if pay.AmountRefunded == pay.Amount {
		return 0, fmt.Errorf("%w: %s", ErrAlreadyRefunded, pay.ID)
	}
	if pay.RefundUntil.IsZero() {
		return 0, fmt.Errorf("%w: option %s", ErrNotRefundable, pay.Rule.Option)
	}
	if !now.Before(pay.RefundUntil) {
		return 0, fmt.Errorf("%w: refundable until %s", ErrRefundWindow, minipay.Timestamp(pay.RefundUntil))
	}
	left := pay.Remaining()
	if amount == "" {
		if left == 0 {
			return 0, fmt.Errorf("%w: %s %s is held by an open dispute", ErrRefundTooLarge,
				ledger.FormatAmount(pay.Currency, pay.AmountDisputed), pay.Currency)
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
		msg := fmt.Sprintf("%s %s left", ledger.FormatAmount(pay.Currency, left), pay.Currency)
		if pay.AmountDisputed > 0 {
			msg += fmt.Sprintf(" (%s %s is held by an open dispute)", ledger.FormatAmount(pay.Currency, pay.AmountDisputed), pay.Currency)
		}
		return 0, minipay.Field("amount", fmt.Errorf("%w: %s", ErrRefundTooLarge, msg))
	}
	return minor, nil
}

// FeeShare is the part of the platform's fee that giving back amount of pay
// returns: the fee due on everything given back so far, rounded half up
// once, minus what earlier refunds returned. The shares of all refunds of a
// payment add up to its fee exactly when it is given back in full.
func FeeShare(pay Payment, amount int64) int64 {
	if pay.Fee == 0 {
		return 0
	}
	back := decimal.NewFromInt(pay.AmountRefunded + amount)
	due := decimal.NewFromInt(pay.Fee).Mul(back).Div(decimal.NewFromInt(pay.Amount)).Round(0).IntPart()
	return max(0, min(amount, due-pay.FeeRefunded))
}

// refundTransfer builds the ledger transfer of a refund and what commits
// with it. The payment's update is guarded by the totals it was computed
// from, so two concurrent refunds, or a refund and a dispute, cannot both
// use the same remainder, and requires the refund window to be open at now,
// the time pay lives by.
func refundTransfer(pay Payment, r Refund, requestHash []byte, now time.Time) (ledger.Transfer, []ledger.Statement, error) {
	md := MovementMetadata(pay, "minipay_refund", r.ID)
	tr := ledger.Transfer{ID: chart.Refund(r.ID), Code: "refund", Postings: GiveBack(pay, r.Amount, r.FeeRefunded), Metadata: md}
	rmd, _ := json.Marshal(r.Metadata)
	stmts := []ledger.Statement{
		change(pay, totalsDelta{refunded: r.Amount, feeRefunded: r.FeeRefunded}, now),
		{SQL: `INSERT INTO refunds (id, payment_id, app_id, developer_id, currency, amount, fee_refunded, reason, status, metadata, created_at, request_hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			Args: []any{r.ID, r.PaymentID, r.AppID, r.DeveloperID, r.Currency, r.Amount, r.FeeRefunded, null.String(r.Reason), r.Status, rmd, r.Created, requestHash}},
	}
	// A refund of a payment still in its holding period matures with it, so
	// one settlement run sees both.
	sql, row := settlement.InsertBalanceTxnRow(settlement.BalanceTxn{
		DeveloperID: r.DeveloperID, AppID: r.AppID, Type: settlement.TxnRefund, Currency: r.Currency,
		Amount: -r.Amount, Fee: -r.FeeRefunded, SourceID: r.ID, PaymentID: pay.ID,
		AvailableOn: later(r.Created, pay.AvailableOn),
	})
	stmts = append(stmts, ledger.Statement{SQL: sql, Args: row, Row: true})
	ev, err := eventRow(webhooks.Event{Type: webhooks.RefundSucceeded, DeveloperID: r.DeveloperID, AppID: r.AppID,
		Object: r.Public(), ObjectID: r.ID, ObjectVersion: 1})
	if err != nil {
		return ledger.Transfer{}, nil, err
	}
	return tr, append(stmts, ev), nil
}

// GiveBack is the postings that return amount of pay to its payer's wallet:
// the developer's pending balance gives amount less feeShare, the
// platform's fee account gives feeShare. Refunds give money back this way,
// and lost disputes through GiveBackFrom.
func GiveBack(pay Payment, amount, feeShare int64) []ledger.Posting {
	return GiveBackFrom(pay, chart.DeveloperPending(pay.DeveloperID, pay.Currency), amount, feeShare)
}

// GiveBackFrom is GiveBack with the developer's share given by account
// from instead of the developer's pending balance: a lost dispute gives it
// from the disputes account, which holds what the dispute withdrew.
func GiveBackFrom(pay Payment, from string, amount, feeShare int64) []ledger.Posting {
	cur := pay.Currency
	postings := []ledger.Posting{{Account: chart.Wallet(pay.UserID, cur), Credit: amount}}
	if dev := amount - feeShare; dev > 0 {
		postings = append(postings, ledger.Posting{Account: from, Debit: dev})
	}
	if feeShare > 0 {
		postings = append(postings, ledger.Posting{Account: chart.Fees(cur), Debit: feeShare})
	}
	return postings
}

// LedgerMetadata is what the ledger keeps about a money movement of pay
// (its capture, a refund, a dispute): the payment's own metadata and
// minipay's keys saying where it came from (what was paid, the app, the
// option), always, whatever the app's metadata holds: the app's at most
// ledger.MetadataKeysMax keys cannot use minipay's namespace, and a
// transfer keeps room for ledger.SystemKeysMax of minipay's. Every owner
// and every later movement uses it, so the system's keys are decided in
// this one place.
func LedgerMetadata(pay Payment) map[string]string {
	return ledger.WithSystemKeys(pay.Metadata, paymentKeys(pay))
}

// MovementMetadata is LedgerMetadata for a later movement of pay (a refund,
// a dispute) with the movement's own id under key, one of minipay's own
// (minipay_refund, minipay_dispute): there is always room for it.
func MovementMetadata(pay Payment, key, id string) map[string]string {
	system := paymentKeys(pay)
	system[key] = id
	return ledger.WithSystemKeys(pay.Metadata, system)
}

// paymentKeys are minipay's keys naming pay in the ledger.
func paymentKeys(pay Payment) map[string]string {
	system := map[string]string{"minipay_app": pay.AppID, "minipay_option": pay.Rule.Option}
	if pay.Kind() == KindInvoice {
		system["minipay_invoice"] = pay.ID
	} else {
		system["minipay_session"] = pay.ID
	}
	return system
}

func eventRow(e webhooks.Event) (ledger.Statement, error) {
	sql, row, err := webhooks.InsertRow(e)
	if err != nil {
		return ledger.Statement{}, err
	}
	return ledger.Statement{SQL: sql, Args: row, Row: true}, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

const refundColumns = `id, payment_id, app_id, developer_id, currency, amount, fee_refunded, coalesce(reason, ''), status, metadata, created_at`

func scanRefund(row pgx.Row) (Refund, error) {
	var (
		r  Refund
		md []byte
	)
	if err := row.Scan(&r.ID, &r.PaymentID, &r.AppID, &r.DeveloperID, &r.Currency, &r.Amount, &r.FeeRefunded, &r.Reason,
		&r.Status, &md, &r.Created); err != nil {
		return Refund{}, err
	}
	if err := json.Unmarshal(md, &r.Metadata); err != nil {
		return Refund{}, fmt.Errorf("refund %s metadata: %w", r.ID, err)
	}
	return r, nil
}

// GetRefund returns a refund of app appID; another app's is ErrRefundNotFound.
func (s *Service) GetRefund(ctx context.Context, appID, refundID string) (Refund, error) {
	r, err := scanRefund(s.db.QueryRow(ctx, `SELECT `+refundColumns+` FROM refunds WHERE id = $1`, refundID))
	if errors.Is(err, pgx.ErrNoRows) || err == nil && r.AppID != appID {
		return Refund{}, fmt.Errorf("%w: %s", ErrRefundNotFound, refundID)
	}
	if err != nil {
		return Refund{}, fmt.Errorf("get refund %s: %w", refundID, err)
	}
	return r, nil
}

// refundWithHash is GetRefund with the fingerprint of the request that
// made the refund.
func (s *Service) refundWithHash(ctx context.Context, appID, refundID string) (Refund, []byte, error) {
	var stored []byte
	r, err := scanRefund(prefixScanner{s.db.QueryRow(ctx, `SELECT request_hash, `+refundColumns+` FROM refunds WHERE id = $1`, refundID),
		[]any{&stored}})
	if errors.Is(err, pgx.ErrNoRows) || err == nil && r.AppID != appID {
		return Refund{}, nil, fmt.Errorf("%w: %s", ErrRefundNotFound, refundID)
	}
	if err != nil {
		return Refund{}, nil, fmt.Errorf("get refund %s: %w", refundID, err)
	}
	return r, stored, nil
}

// prefixScanner scans leading columns into extra, the rest into dest.
type prefixScanner struct {
	row   pgx.Row
	extra []any
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.row.Scan(append(append([]any{}, p.extra...), dest...)...)
}

// RefundsOf returns the refunds of payment paymentID of app appID, oldest
// first (a payment has few).
func (s *Service) RefundsOf(ctx context.Context, appID, paymentID string) ([]Refund, error) {
	rows, err := s.db.Query(ctx, `SELECT `+refundColumns+` FROM refunds WHERE payment_id = $1 AND app_id = $2
		ORDER BY created_at, id`, paymentID, appID)
	if err != nil {
		return nil, fmt.Errorf("refunds of %s: %w", paymentID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Refund, error) { return scanRefund(r) })
	if err != nil {
		return nil, fmt.Errorf("refunds of %s: %w", paymentID, err)
	}
	return out, nil
}

// stripedLocks serializes work per key with a fixed number of mutexes, so
// memory stays bounded however many keys there are.
type stripedLocks [256]sync.Mutex

func (l *stripedLocks) lock(key string) (unlock func()) {
	h := fnv.New32a()
	h.Write([]byte(key))
	m := &l[h.Sum32()%uint32(len(l))]
	m.Lock()
	return m.Unlock
}
