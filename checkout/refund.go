package checkout

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
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/settlement"
	"github.com/minipay/minipay/webhooks"
)

// Refund gives money of a captured payment back to the user.
type Refund struct {
	ID          string
	SessionID   string
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
	ID        string // derived from an idempotency key, or empty for a fresh one
	AppID     string
	SessionID string
	Amount    string // decimal in major units; empty for all that is left
	Reason    string
	Metadata  map[string]string
}

// refundAttemptsMax bounds retries when concurrent refunds of one session
// keep changing it under us.
const refundAttemptsMax = 8

// CreateRefund refunds part or all of a session's captured payment: the
// developer's pending balance and the platform's fee account give back
// their shares (the fee pro rata), the user's wallet gets the amount, in one
// ledger transfer with the refund, the session's new totals, the balance
// transaction and the refund.succeeded event. Concurrent refunds can never
// together exceed what was captured.
func (s *Service) CreateRefund(ctx context.Context, p RefundParams) (Refund, error) {
	if p.ID == "" {
		p.ID = id.New("re")
	}
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	if err := ledger.ValidateMetadata(p.Metadata); err != nil {
		return Refund{}, err
	}
	if utf8.RuneCountInString(p.Reason) > 500 || !utf8.ValidString(p.Reason) {
		return Refund{}, minipay.Field("reason", fmt.Errorf("%w: at most 500 characters", ErrInvalid))
	}
	if p.SessionID == "" {
		return Refund{}, minipay.Field("checkout_session", fmt.Errorf("%w: checkout_session", ErrMissing))
	}
	// Refunds of one session are computed from its current totals, so they
	// take turns within this process; across replicas the guarded update
	// catches a collision and the refund is computed again.
	unlock := s.refundLocks.lock(p.SessionID)
	defer unlock()
	for attempt := 0; attempt < refundAttemptsMax; attempt++ {
		r, err := s.tryRefund(ctx, p)
		if !errors.Is(err, errStateChanged) {
			return r, err
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return Refund{}, fmt.Errorf("%w: %s", ErrRefundContention, p.SessionID)
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

func (s *Service) tryRefund(ctx context.Context, p RefundParams) (Refund, error) {
	if r, err := s.GetRefund(ctx, p.AppID, p.ID); err == nil {
		return r, nil // made before under the same idempotency key
	}
	sess, err := s.GetSession(ctx, p.AppID, p.SessionID)
	if errors.Is(err, ErrSessionNotFound) {
		return Refund{}, minipay.Field("checkout_session", err)
	}
	if err != nil {
		return Refund{}, err
	}
	amount, err := s.refundable(sess, p.Amount)
	if err != nil {
		return Refund{}, err
	}
	r := Refund{ID: p.ID, SessionID: sess.ID, AppID: sess.AppID, DeveloperID: sess.DeveloperID, Currency: sess.Currency,
		Amount: amount, FeeRefunded: feeShare(sess, amount), Reason: p.Reason, Status: "succeeded", Metadata: p.Metadata,
		Created: time.Now().UTC().Truncate(time.Microsecond)}
	tr, stmts, err := refundTransfer(sess, r)
	if err != nil {
		return Refund{}, err
	}
	if _, err := s.ledger.Post(ctx, tr, stmts...); err != nil {
		return Refund{}, fmt.Errorf("refund %s: %w", sess.ID, err)
	}
	return s.GetRefund(ctx, p.AppID, r.ID)
}

// refundable checks that sess can be refunded now and returns the amount:
// the one asked for, or all that is left.
func (s *Service) refundable(sess Session, amount string) (int64, error) {
	switch sess.PaymentStatus {
	case PaymentRefunded:
		return 0, fmt.Errorf("%w: %s", ErrAlreadyRefunded, sess.ID)
	case PaymentPaid, PaymentPartiallyRefunded:
	default:
		return 0, minipay.Field("checkout_session", fmt.Errorf("%w: %s", ErrNotCaptured, sess.ID))
	}
	opt, ok := s.catalog.At(sess.Option, sess.CompletedAt)
	if !ok || !opt.Refundable || sess.RefundUntil.IsZero() {
		return 0, fmt.Errorf("%w: option %s", ErrNotRefundable, sess.Option)
	}
	if !time.Now().Before(sess.RefundUntil) {
		return 0, fmt.Errorf("%w: refundable until %s", ErrRefundWindow, minipay.Timestamp(sess.RefundUntil))
	}
	left := sess.AmountTotal - sess.AmountRefunded
	if amount == "" {
		return left, nil
	}
	minor, err := ledger.ParseAmount(sess.Currency, amount)
	if err != nil {
		return 0, minipay.Field("amount", err)
	}
	if minor <= 0 {
		return 0, minipay.Field("amount", fmt.Errorf("%w: amount must be greater than zero", ErrInvalid))
	}
	if minor > left {
		return 0, minipay.Field("amount", fmt.Errorf("%w: %s %s left", ErrRefundTooLarge, ledger.FormatAmount(sess.Currency, left), sess.Currency))
	}
	return minor, nil
}

// feeShare is the part of the platform's fee a refund returns: the fee due
// on everything refunded so far, rounded half up once, minus what earlier
// refunds returned. The shares of all refunds of a payment add up to its
// fee exactly when it is refunded in full.
func feeShare(sess Session, amount int64) int64 {
	if sess.Fee == nil || *sess.Fee == 0 {
		return 0
	}
	refunded := decimal.NewFromInt(sess.AmountRefunded + amount)
	due := decimal.NewFromInt(*sess.Fee).Mul(refunded).Div(decimal.NewFromInt(sess.AmountTotal)).Round(0).IntPart()
	return max(0, min(amount, due-sess.FeeRefunded))
}

// refundTransfer builds the ledger transfer of a refund and what commits
// with it. The session update is guarded by the totals it was computed
// from, so two concurrent refunds cannot both use the same remainder.
func refundTransfer(sess Session, r Refund) (ledger.Transfer, []ledger.Statement, error) {
	cur := r.Currency
	postings := []ledger.Posting{{Account: chart.Wallet(sess.UserID, cur), Credit: r.Amount}}
	if dev := r.Amount - r.FeeRefunded; dev > 0 {
		postings = append(postings, ledger.Posting{Account: chart.DeveloperPending(sess.DeveloperID, cur), Debit: dev})
	}
	if r.FeeRefunded > 0 {
		postings = append(postings, ledger.Posting{Account: chart.Fees(cur), Debit: r.FeeRefunded})
	}
	md := paymentMetadata(sess)
	md["minipay_refund"] = r.ID
	tr := ledger.Transfer{ID: chart.Refund(r.ID), Code: "refund", Postings: postings, Metadata: md}

	next := sess
	next.AmountRefunded += r.Amount
	next.FeeRefunded += r.FeeRefunded
	next.PaymentStatus = PaymentPartiallyRefunded
	if next.AmountRefunded == next.AmountTotal {
		next.PaymentStatus = PaymentRefunded
	}
	next.Version++
	rmd, _ := json.Marshal(r.Metadata)
	stmts := []ledger.Statement{
		statement(`UPDATE checkout_sessions SET amount_refunded = $2, fee_refunded = $3, payment_status = $4, version = version + 1
			WHERE id = $1 AND amount_refunded = $5 AND fee_refunded = $6 AND refund_until > $7`,
			[]any{sess.ID, next.AmountRefunded, next.FeeRefunded, next.PaymentStatus, sess.AmountRefunded, sess.FeeRefunded, r.Created},
			ledger.ExpectRows(1, errStateChanged)),
		statement(`INSERT INTO refunds (id, session_id, app_id, developer_id, currency, amount, fee_refunded, reason, status, metadata, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			[]any{r.ID, r.SessionID, r.AppID, r.DeveloperID, cur, r.Amount, r.FeeRefunded, nullable(r.Reason), r.Status, rmd, r.Created}, nil),
	}
	// A refund of a payment still in its holding period matures with it, so
	// one settlement run sees both.
	stmts = append(stmts, balanceRow(settlement.BalanceTxn{
		DeveloperID: r.DeveloperID, AppID: r.AppID, Type: settlement.TxnRefund, Currency: cur,
		Amount: -r.Amount, Fee: -r.FeeRefunded, SourceID: r.ID, SessionID: sess.ID,
		AvailableOn: later(r.Created, sess.AvailableOn),
	}))
	for _, e := range []webhooks.Event{
		{Type: webhooks.RefundSucceeded, DeveloperID: r.DeveloperID, AppID: r.AppID, Object: r.Public(), ObjectID: r.ID, ObjectVersion: 1},
	} {
		ev, err := eventRow(e)
		if err != nil {
			return ledger.Transfer{}, nil, err
		}
		stmts = append(stmts, ev)
	}
	return tr, stmts, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

const refundColumns = `id, session_id, app_id, developer_id, currency, amount, fee_refunded, coalesce(reason, ''), status, metadata, created_at`

// GetRefund returns a refund of app appID.
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

func scanRefund(row pgx.Row) (Refund, error) {
	var (
		r  Refund
		md []byte
	)
	err := row.Scan(&r.ID, &r.SessionID, &r.AppID, &r.DeveloperID, &r.Currency, &r.Amount, &r.FeeRefunded, &r.Reason, &r.Status, &md, &r.Created)
	if err != nil {
		return Refund{}, err
	}
	if err := json.Unmarshal(md, &r.Metadata); err != nil {
		return Refund{}, fmt.Errorf("refund %s metadata: %w", r.ID, err)
	}
	return r, nil
}
