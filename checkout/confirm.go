package checkout

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/catalog"
	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/webhooks"
)

// Confirm pays an open session from userID's wallet; the host's wallet
// service calls it with the session's client secret. In one database
// transaction it moves the money (wallet to the developer's pending balance
// and the platform's fee account), completes the session, records the
// developer's balance transaction and writes the checkout.session.completed
// event. With manual capture the money is held instead of moved.
//
// Insufficient funds is ErrInsufficientFunds and the session stays open.
// Confirming a session the same user already paid returns it.
func (s *Service) Confirm(ctx context.Context, sessionID, userID, clientSecret string) (Session, error) {
	if !apps.ValidUserID(userID) {
		return Session{}, minipay.Field("user_id", apps.ErrUserIDInvalid)
	}
	sess, err := s.sessionToConfirm(ctx, sessionID)
	if err != nil {
		return Session{}, err
	}
	if subtle.ConstantTimeCompare([]byte(clientSecret), []byte(sess.ClientSecret)) != 1 {
		return Session{}, minipay.Field("client_secret", ErrClientSecret)
	}
	if sess.Status == StatusComplete && sess.UserID == userID {
		return sess, nil // paid already: confirming again changes nothing
	}
	if sess.Status != StatusOpen || !time.Now().Before(sess.ExpiresAt) {
		return Session{}, stateError(sess)
	}
	tr, stmts, paid, err := s.payment(ctx, sess, userID)
	if err != nil {
		return Session{}, err
	}
	posted, err := s.ledger.Post(ctx, tr, stmts...)
	s.recent.forget(sessionID)
	if err != nil {
		return s.confirmFailed(ctx, sessionID, userID, err)
	}
	if posted.Replayed {
		// A concurrent confirm of the same user paid it first; this one
		// wrote nothing, so return what that one wrote.
		return s.GetSession(ctx, "", sessionID)
	}
	return paid, nil // what the guarded update wrote: no need to read it back
}

// confirmFailed explains a payment that did not go through. A session that
// changed meanwhile (expired, canceled, paid by someone else) is the answer
// whatever the ledger said, as it would have been had the confirm read the
// session a moment later; if the same user paid it meanwhile, confirming
// again is a success. Otherwise it is the ledger's error, such as
// insufficient funds.
func (s *Service) confirmFailed(ctx context.Context, sessionID, userID string, err error) (Session, error) {
	now, gerr := s.GetSession(ctx, "", sessionID)
	if gerr != nil {
		return Session{}, fmt.Errorf("confirm %s: %w", sessionID, err)
	}
	if now.Status == StatusComplete && now.UserID == userID {
		return now, nil
	}
	if now.Status != StatusOpen || !time.Now().Before(now.ExpiresAt) {
		return Session{}, stateError(now)
	}
	if errors.Is(err, ledger.ErrInsufficientFunds) {
		// The ledger's error names the wallet's account, and with it the
		// user; the caller is told only what it needs.
		return Session{}, fmt.Errorf("confirm %s: %w", sessionID, ErrInsufficientFunds)
	}
	return Session{}, fmt.Errorf("confirm %s: %w", sessionID, err)
}

// sessionToConfirm returns the session from the replica's memory when it
// was created here and has not run out (see recent), else reads it.
func (s *Service) sessionToConfirm(ctx context.Context, sessionID string) (Session, error) {
	if sess, ok := s.recent.get(sessionID); ok && time.Now().Before(sess.ExpiresAt) {
		return sess, nil
	}
	return s.GetSession(ctx, "", sessionID)
}

// payment builds the ledger transfer of a confirm, the statements that
// commit with it and the session as they leave it.
func (s *Service) payment(ctx context.Context, sess Session, userID string) (ledger.Transfer, []ledger.Statement, Session, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	opt, ok := s.catalog.At(sess.Option, now)
	if !ok {
		return ledger.Transfer{}, nil, Session{}, fmt.Errorf("%w: %s", catalog.ErrUnknownOption, sess.Option)
	}
	fee, err := opt.Fee(sess.Currency, sess.AmountTotal)
	if err != nil {
		return ledger.Transfer{}, nil, Session{}, err
	}
	if err := s.payments.EnsureAccounts(ctx, userID, sess.DeveloperID, sess.Currency); err != nil {
		return ledger.Transfer{}, nil, Session{}, err
	}
	manual := sess.CaptureMethod == CaptureManual
	paying := sess
	paying.UserID = userID
	tr := payments.Transfer(paymentOf(paying, fee), manual)

	// The session as it will be, for the event.
	next := sess
	next.Status, next.UserID, next.Customer = StatusComplete, userID, s.apps.Pseudonym(sess.AppID, userID)
	next.Fee, next.OptionVersion, next.CompletedAt, next.Version = &fee, opt.Version(), now, sess.Version+1
	next.FeeBPS, next.FeeFixed = int32(opt.FeeBPS), opt.FeeFixed.String()
	if manual {
		next.CaptureStatus, next.HoldExpiresAt = CaptureRequired, now.Add(s.hold)
	} else {
		capture(&next, opt, now)
	}
	complete := ledger.Statement{SQL: completeSessionsSQL, Row: true, Required: errStateChanged,
		Args: []any{sess.ID, null.String(next.CaptureStatus), fee, next.OptionVersion, next.FeeBPS,
			next.FeeFixed, userID, next.Customer, now, null.Time(next.HoldExpiresAt)}}
	if s.citus(ctx) {
		// One UPDATE of many sessions by unnest would go to every shard
		// of checkout_sessions, taking their locks in turn; one per
		// session goes to its shard alone.
		complete = ledger.Statement{SQL: completeSessionSQL, Args: complete.Args,
			Check: ledger.ExpectRows(1, errStateChanged)}
	}
	stmts := []ledger.Statement{complete}
	if !manual {
		stmts = append(stmts, s.payments.Record(ctx, paymentOf(next, fee))...)
	}
	// The event and the confirm's answer carry the same object: encode it
	// once.
	if next.public, err = encodeObject(next.Public()); err != nil {
		return ledger.Transfer{}, nil, Session{}, fmt.Errorf("encode session %s: %w", sess.ID, err)
	}
	ev, err := eventRow(webhooks.Event{Type: webhooks.CheckoutSessionCompleted, DeveloperID: next.DeveloperID,
		AppID: next.AppID, Object: next.public, ObjectID: next.ID, ObjectVersion: next.Version})
	if err != nil {
		return ledger.Transfer{}, nil, Session{}, err
	}
	return tr, append(stmts, ev), next, nil
}

// completeSessionsSQL completes the sessions of a group's confirms, each
// only if it is still open and unexpired, and returns those it completed.
const completeSessionsSQL = `
	UPDATE checkout_sessions s SET status = 'complete', capture_status = u.capture_status,
		fee = u.fee, option_version = u.option_version, fee_bps = u.fee_bps, fee_fixed = u.fee_fixed, user_id = u.user_id,
		customer = u.customer, completed_at = u.completed_at, hold_expires_at = u.hold_expires_at, version = s.version + 1
	FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::text[],
		$9::timestamptz[], $10::timestamptz[])
		AS u(id, capture_status, fee, option_version, fee_bps, fee_fixed, user_id, customer, completed_at, hold_expires_at)
	WHERE s.id = u.id AND s.status = 'open' AND s.expires_at > u.completed_at
	RETURNING s.id`

// completeSessionSQL is completeSessionsSQL for one session, on a Citus
// cluster, where a statement that names its session's id is routed to the
// one worker holding it.
const completeSessionSQL = `
	UPDATE checkout_sessions s SET status = 'complete', capture_status = $2,
		fee = $3, option_version = $4, fee_bps = $5, fee_fixed = $6, user_id = $7,
		customer = $8, completed_at = $9, hold_expires_at = $10, version = s.version + 1
	WHERE s.id = $1 AND s.status = 'open' AND s.expires_at > $9::timestamptz`

// capture sets what a captured payment carries: paid, when it matures for
// settlement, until when it can be refunded.
func capture(sess *Session, opt catalog.Option, at time.Time) {
	sess.PaymentStatus, sess.CapturedAt = PaymentPaid, at
	if sess.CaptureMethod == CaptureManual {
		sess.CaptureStatus = CaptureCaptured
	}
	sess.AvailableOn = at.Add(opt.HoldingPeriod)
	if opt.Refundable {
		sess.RefundUntil = at.Add(opt.RefundWindow)
	}
}

// paymentOf is the payment sess makes when captured, with the fee fixed at
// confirm.
func paymentOf(sess Session, fee int64) payments.Payment {
	return payments.Payment{ID: sess.ID, AppID: sess.AppID, DeveloperID: sess.DeveloperID, UserID: sess.UserID,
		Customer: sess.Customer, Currency: sess.Currency, Amount: sess.AmountTotal, Fee: fee,
		Rule:              payments.FeeRule{Option: sess.Option, OptionVersion: sess.OptionVersion, BPS: sess.FeeBPS, Fixed: sess.FeeFixed},
		ClientReferenceID: sess.ClientReferenceID, Metadata: sess.Metadata, RefundUntil: sess.RefundUntil,
		AvailableOn: sess.AvailableOn, CapturedAt: sess.CapturedAt}
}

// eventRow is set-based: a group of transfers writes all its events with
// one statement.
func eventRow(e webhooks.Event) (ledger.Statement, error) {
	sql, row, err := webhooks.InsertRow(e)
	if err != nil {
		return ledger.Statement{}, err
	}
	return ledger.Statement{SQL: sql, Args: row, Row: true}, nil
}

// Capture posts a manual-capture hold of app appID: the held money moves
// to the developer and the platform, the payment matures from now. Capturing
// it again returns the session.
func (s *Service) Capture(ctx context.Context, appID, sessionID string) (Session, error) {
	return s.endHold(ctx, appID, sessionID, true, false)
}

// Void releases a manual-capture hold of app appID: nothing moves.
func (s *Service) Void(ctx context.Context, appID, sessionID string) (Session, error) {
	return s.endHold(ctx, appID, sessionID, false, false)
}

// endHold captures or voids a hold. expired marks the sweeper's void of a
// hold whose window ended.
func (s *Service) endHold(ctx context.Context, appID, sessionID string, post, expired bool) (Session, error) {
	sess, err := s.GetSession(ctx, appID, sessionID)
	if err != nil {
		return Session{}, err
	}
	if sess.CaptureMethod != CaptureManual {
		return Session{}, fmt.Errorf("%w: %s", ErrNotManualCapture, sessionID)
	}
	want := map[bool]string{true: CaptureCaptured, false: CaptureVoided}[post]
	if sess.CaptureStatus == want {
		return sess, nil // done before: doing it again changes nothing
	}
	if sess.CaptureStatus != CaptureRequired {
		return Session{}, fmt.Errorf("%w: %s is %s", ErrNotCapturable, sessionID, orNone(sess.CaptureStatus))
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if post && !now.Before(sess.HoldExpiresAt) {
		return Session{}, fmt.Errorf("%w: %s", ErrHoldExpired, sessionID)
	}
	stmts, err := s.holdStatements(sess, post, expired, now)
	if err != nil {
		return Session{}, err
	}
	if post {
		_, err = s.ledger.PostPending(ctx, chart.Payment(sessionID), stmts...)
	} else {
		_, err = s.ledger.VoidPending(ctx, chart.Payment(sessionID), stmts...)
	}
	switch {
	case errors.Is(err, ledger.ErrAlreadyPosted), errors.Is(err, ledger.ErrAlreadyVoided), errors.Is(err, errStateChanged):
		return Session{}, fmt.Errorf("%w: %s changed meanwhile", ErrNotCapturable, sessionID)
	case err != nil:
		return Session{}, fmt.Errorf("end hold of %s: %w", sessionID, err)
	}
	return s.GetSession(ctx, appID, sessionID)
}

func orNone(s string) string {
	if s == "" {
		return "not confirmed"
	}
	return s
}

// holdStatements are what commits with the capture or void of a hold.
func (s *Service) holdStatements(sess Session, post, expired bool, now time.Time) ([]ledger.Statement, error) {
	next := sess
	next.Version++
	evType := webhooks.PaymentVoided
	if post {
		opt, ok := s.catalog.At(sess.Option, sess.CompletedAt) // the version fixed at confirm
		if !ok {
			return nil, fmt.Errorf("%w: %s", catalog.ErrUnknownOption, sess.Option)
		}
		capture(&next, opt, now)
		evType = webhooks.PaymentCaptured
	} else {
		next.CaptureStatus = CaptureVoided
	}
	sql := `UPDATE checkout_sessions SET capture_status = $2, version = version + 1
		WHERE id = $1 AND capture_status = 'requires_capture'`
	args := []any{sess.ID, next.CaptureStatus}
	switch {
	case post: // only within the capture window
		sql += ` AND hold_expires_at > $3`
		args = append(args, now)
	case expired: // the sweeper voids only what has run out
		sql += ` AND hold_expires_at <= $3`
		args = append(args, now)
	}
	stmts := []ledger.Statement{statement(sql, args, ledger.ExpectRows(1, errStateChanged))}
	if post {
		// Whether the database is Citus was learnt long before a hold ends.
		stmts = append(stmts, s.payments.Record(context.Background(), paymentOf(next, *next.Fee))...)
	}
	ev, err := eventRow(sessionEvent(evType, next))
	if err != nil {
		return nil, err
	}
	return append(stmts, ev), nil
}

// VoidExpiredHolds voids up to limit manual-capture holds whose window has
// ended and returns how many it voided.
func (s *Service) VoidExpiredHolds(ctx context.Context, limit int) (int, error) {
	rows, err := s.db.Query(ctx, `SELECT id FROM checkout_sessions
		WHERE capture_status = 'requires_capture' AND hold_expires_at <= now() ORDER BY hold_expires_at LIMIT $1`, limit)
	if err != nil {
		return 0, fmt.Errorf("find expired holds: %w", err)
	}
	var ids []string
	for rows.Next() {
		var sid string
		if err := rows.Scan(&sid); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, sid)
	}
	rows.Close()
	n := 0
	for _, sid := range ids {
		_, err := s.endHold(ctx, "", sid, false, true)
		switch {
		case err == nil:
			n++
		case errors.Is(err, ErrNotCapturable):
			// captured or voided meanwhile
		default:
			return n, err
		}
	}
	return n, nil
}
