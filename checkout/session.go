package checkout

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/catalog"
	"github.com/minipay/minipay/citus"
	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/webhooks"
)

// Session statuses and payment statuses.
const (
	StatusOpen     = "open"
	StatusComplete = "complete"
	StatusExpired  = "expired"
	StatusCanceled = "canceled"

	PaymentUnpaid            = "unpaid"
	PaymentPaid              = "paid"
	PaymentPartiallyRefunded = "partially_refunded"
	PaymentRefunded          = "refunded"

	CaptureAutomatic = "automatic"
	CaptureManual    = "manual"

	CaptureRequired = "requires_capture"
	CaptureCaptured = "captured"
	CaptureVoided   = "voided"
)

// Limits of a session.
const (
	ExpiresInMin     = 60 * time.Second
	ExpiresInMax     = 24 * time.Hour
	ExpiresInDefault = 30 * time.Minute
	LineItemsMax     = 100
	ClientRefLenMax  = 200
)

// LineItem is one line of what is sold.
type LineItem struct {
	Name       string `json:"name"`
	UnitAmount int64  `json:"unit_amount"` // minor units
	Quantity   int64  `json:"quantity"`
}

// Session is a checkout session: what a user is asked to pay, and what
// became of it.
type Session struct {
	ID                string
	AppID             string
	DeveloperID       string
	Status            string
	PaymentStatus     string
	CaptureMethod     string
	CaptureStatus     string // manual capture only
	Currency          string
	AmountTotal       int64
	AmountRefunded    int64
	Fee               *int64 // set when confirmed
	FeeRefunded       int64
	Option            string
	OptionVersion     string // the fee schedule applied, fixed at confirm
	FeeBPS            int32
	FeeFixed          string
	ClientReferenceID string
	ClientSecret      string
	LineItems         []LineItem
	Metadata          map[string]string
	UserID            string // the host's user id: never shown to the app
	Customer          string // the app's pseudonymous id for the user
	ExpiresAt         time.Time
	HoldExpiresAt     time.Time
	RefundUntil       time.Time
	AvailableOn       time.Time
	CompletedAt       time.Time
	CapturedAt        time.Time
	Created           time.Time
	Version           int

	requestHash []byte // the fingerprint of the request that made it, when keyed
	// freshID: the id was made here (id.New), not derived from an
	// idempotency key, so no other request can have created it.
	freshID bool
	// public is Public() as JSON, when it was encoded already (a confirm
	// encodes it for its event): PublicJSON returns it as it is. Only the
	// session Confirm returns carries it; nothing changes that one after.
	public json.RawMessage
}

// CreateParams are the parameters of a new session. Exactly one of Amount
// and LineItems is set; amounts are decimal strings in major units.
type CreateParams struct {
	// ID, if not empty, is derived from an idempotency key and RequestHash
	// is the request's fingerprint: creating it again with the same request
	// returns the session, with another is idempotency.ErrConflict.
	ID                string
	RequestHash       []byte
	AppID             string
	Amount            string
	LineItems         []LineItemParams
	Currency          string
	Option            string
	ClientReferenceID string
	ExpiresIn         int64 // seconds; 0 for the default
	CaptureMethod     string
	Metadata          map[string]string
}

// LineItemParams is a line item as it arrives.
type LineItemParams struct {
	Name       string
	UnitAmount string
	Quantity   int64
}

// CreateSession validates p against the app's grants and the catalog and
// creates an open session.
func (s *Service) CreateSession(ctx context.Context, p CreateParams) (Session, error) {
	app, err := s.apps.GetApp(ctx, p.AppID)
	if err != nil {
		return Session{}, err
	}
	sess, err := s.newSession(app.ID, app.DeveloperID, p)
	if err != nil {
		return Session{}, err
	}
	if err := s.checkGrants(app.Options, app.Currencies, sess); err != nil {
		return Session{}, err
	}
	inserted, err := s.inserter.insert(ctx, sess)
	if err != nil {
		return Session{}, err
	}
	if !inserted { // created before under the same idempotency key
		return s.createdBefore(ctx, p)
	}
	s.recent.put(sess)
	return sess, nil
}

// createdBefore returns the session an earlier request made under the
// same idempotency key, if it was this request.
func (s *Service) createdBefore(ctx context.Context, p CreateParams) (Session, error) {
	var stored []byte
	err := s.db.QueryRow(ctx, `SELECT request_hash FROM checkout_sessions WHERE id = $1 AND app_id = $2`, p.ID, p.AppID).Scan(&stored)
	if err != nil {
		return Session{}, fmt.Errorf("create session %s: %w", p.ID, err)
	}
	if err := idempotency.SameRequest(p.ID, stored, p.RequestHash); err != nil {
		return Session{}, err
	}
	return s.GetSession(ctx, p.AppID, p.ID)
}

// newSession builds a session from p without touching the database.
func (s *Service) newSession(appID, devID string, p CreateParams) (Session, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	sess := Session{
		ID: p.ID, AppID: appID, DeveloperID: devID, Status: StatusOpen, PaymentStatus: PaymentUnpaid,
		CaptureMethod: p.CaptureMethod, Currency: p.Currency, Option: p.Option,
		ClientReferenceID: p.ClientReferenceID, Metadata: p.Metadata, Created: now, Version: 1,
		requestHash: p.RequestHash,
	}
	if sess.ID == "" {
		sess.ID, sess.freshID = id.New("cs"), true
	}
	if sess.CaptureMethod == "" {
		sess.CaptureMethod = CaptureAutomatic
	}
	if sess.CaptureMethod != CaptureAutomatic && sess.CaptureMethod != CaptureManual {
		return Session{}, minipay.Field("capture_method", fmt.Errorf("%w: capture_method is automatic or manual", ErrInvalid))
	}
	if sess.Currency == "" {
		return Session{}, minipay.Field("currency", fmt.Errorf("%w: currency", ErrMissing))
	}
	if _, err := ledger.Exponent(sess.Currency); err != nil {
		return Session{}, minipay.Field("currency", err)
	}
	if sess.Option == "" {
		return Session{}, minipay.Field("option", fmt.Errorf("%w: option", ErrMissing))
	}
	if utf8.RuneCountInString(sess.ClientReferenceID) > ClientRefLenMax || !utf8.ValidString(sess.ClientReferenceID) {
		return Session{}, minipay.Field("client_reference_id", fmt.Errorf("%w: at most %d characters", ErrInvalid, ClientRefLenMax))
	}
	if sess.Metadata == nil {
		sess.Metadata = map[string]string{}
	}
	if err := ledger.ValidateMetadata(sess.Metadata); err != nil {
		return Session{}, err
	}
	expiresIn := ExpiresInDefault
	if p.ExpiresIn != 0 {
		expiresIn = time.Duration(p.ExpiresIn) * time.Second
		if p.ExpiresIn < 0 || expiresIn < ExpiresInMin || expiresIn > ExpiresInMax {
			return Session{}, minipay.Field("expires_in", fmt.Errorf("%w: expires_in is 60–86400 seconds", ErrInvalid))
		}
	}
	sess.ExpiresAt = now.Add(expiresIn)
	var err error
	if sess.AmountTotal, sess.LineItems, err = amountOf(sess.Currency, p.Amount, p.LineItems); err != nil {
		return Session{}, err
	}
	sess.ClientSecret = sess.ID + "_secret_" + randomToken()
	return sess, nil
}

func randomToken() string {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("checkout: crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// amountOf is the session total: the amount, or the sum of the line items,
// in minor units, refusing overflow.
func amountOf(currency, amount string, items []LineItemParams) (int64, []LineItem, error) {
	switch {
	case amount != "" && len(items) > 0:
		return 0, nil, minipay.Field("amount", fmt.Errorf("%w: give amount or line_items, not both", ErrInvalid))
	case amount == "" && len(items) == 0:
		return 0, nil, minipay.Field("amount", fmt.Errorf("%w: amount or line_items", ErrMissing))
	case amount != "":
		minor, err := ledger.ParseAmount(currency, amount)
		if err != nil {
			return 0, nil, minipay.Field("amount", err)
		}
		if minor <= 0 {
			return 0, nil, minipay.Field("amount", fmt.Errorf("%w: amount must be greater than zero", ErrInvalid))
		}
		return minor, nil, nil
	case len(items) > LineItemsMax:
		return 0, nil, minipay.Field("line_items", fmt.Errorf("%w: at most %d line items", ErrInvalid, LineItemsMax))
	}
	var total int64
	out := make([]LineItem, len(items))
	for i, it := range items {
		field := fmt.Sprintf("line_items[%d]", i)
		if it.Name == "" || utf8.RuneCountInString(it.Name) > 200 || !utf8.ValidString(it.Name) {
			return 0, nil, minipay.Field(field+".name", fmt.Errorf("%w: name must be 1–200 characters", ErrInvalid))
		}
		unit, err := ledger.ParseAmount(currency, it.UnitAmount)
		if err != nil {
			return 0, nil, minipay.Field(field+".unit_amount", err)
		}
		if unit <= 0 || it.Quantity < 1 || it.Quantity > 1_000_000 {
			return 0, nil, minipay.Field(field, fmt.Errorf("%w: unit_amount > 0 and quantity 1–1000000", ErrInvalid))
		}
		line := unit * it.Quantity
		if line/it.Quantity != unit || total+line < total {
			return 0, nil, minipay.Field(field, fmt.Errorf("%w: the total is too large", ledger.ErrAmountTooLarge))
		}
		total += line
		out[i] = LineItem{Name: it.Name, UnitAmount: unit, Quantity: it.Quantity}
	}
	return total, out, nil
}

// checkGrants refuses a session the app may not create (see catalog.Check).
func (s *Service) checkGrants(options, currencies []string, sess Session) error {
	_, err := s.catalog.Check(catalog.Sale{Option: sess.Option, Currency: sess.Currency, AmountMinor: sess.AmountTotal,
		At: sess.Created, GrantedOpts: options, GrantedCurs: currencies})
	return err
}

// sessionColumns are a session's own columns (table alias s) and, after
// capture, its payment's (alias p, joined by sessionFrom). Statements that
// return a session they changed before capture use openSessionColumns.
const (
	ownSessionColumns = `s.id, s.app_id, s.developer_id, s.status, s.capture_method, coalesce(s.capture_status, ''),
	s.currency, s.amount_total, s.fee, s.option, coalesce(s.option_version, ''), coalesce(s.fee_bps, 0),
	coalesce(s.fee_fixed, ''), coalesce(s.client_reference_id, ''),
	s.client_secret, s.line_items, s.metadata, coalesce(s.user_id, ''), coalesce(s.customer, ''), s.expires_at,
	s.hold_expires_at, s.completed_at, s.created_at, s.version`
	sessionColumns     = ownSessionColumns + `, p.amount_refunded, p.fee_refunded, p.refund_until, p.available_on, p.captured_at, p.version`
	openSessionColumns = ownSessionColumns + `, NULL::int8, NULL::int8, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::int4`
	sessionFrom        = ` FROM checkout_sessions s LEFT JOIN payments p ON p.id = s.id`
)

func scanSession(row pgx.Row) (Session, error) {
	var (
		sess                         Session
		items, md                    []byte
		hold, done                   *time.Time
		refunded, feeRefunded        *int64
		refundUntil, avail, captured *time.Time
		paymentVersion               *int32
	)
	err := row.Scan(&sess.ID, &sess.AppID, &sess.DeveloperID, &sess.Status, &sess.CaptureMethod, &sess.CaptureStatus,
		&sess.Currency, &sess.AmountTotal, &sess.Fee, &sess.Option, &sess.OptionVersion, &sess.FeeBPS, &sess.FeeFixed, &sess.ClientReferenceID,
		&sess.ClientSecret, &items, &md, &sess.UserID, &sess.Customer, &sess.ExpiresAt, &hold, &done, &sess.Created,
		&sess.Version, &refunded, &feeRefunded, &refundUntil, &avail, &captured, &paymentVersion)
	if err != nil {
		return Session{}, err
	}
	for _, t := range []struct {
		src *time.Time
		dst *time.Time
	}{{hold, &sess.HoldExpiresAt}, {refundUntil, &sess.RefundUntil}, {avail, &sess.AvailableOn}, {done, &sess.CompletedAt}, {captured, &sess.CapturedAt}} {
		if t.src != nil {
			*t.dst = *t.src
		}
	}
	sess.PaymentStatus = PaymentUnpaid
	if paymentVersion != nil { // captured: the money's state is the payment's
		sess.AmountRefunded, sess.FeeRefunded = *refunded, *feeRefunded
		sess.PaymentStatus = payments.Payment{Amount: sess.AmountTotal, AmountRefunded: sess.AmountRefunded}.Status()
		sess.Version += int(*paymentVersion)
	}
	if len(items) > 0 {
		if err := json.Unmarshal(items, &sess.LineItems); err != nil {
			return Session{}, fmt.Errorf("line items of %s: %w", sess.ID, err)
		}
	}
	if err := json.Unmarshal(md, &sess.Metadata); err != nil {
		return Session{}, fmt.Errorf("metadata of %s: %w", sess.ID, err)
	}
	return sess, nil
}

// GetSession returns a session of app appID; another app's session is
// ErrSessionNotFound. An empty appID reads any session (the host's view).
func (s *Service) GetSession(ctx context.Context, appID, sessionID string) (Session, error) {
	sess, err := scanSession(s.db.QueryRow(ctx, `SELECT `+sessionColumns+sessionFrom+` WHERE s.id = $1`, sessionID))
	if errors.Is(err, pgx.ErrNoRows) || err == nil && appID != "" && sess.AppID != appID {
		return Session{}, fmt.Errorf("%w: %s", ErrSessionNotFound, sessionID)
	}
	if err != nil {
		return Session{}, fmt.Errorf("get session %s: %w", sessionID, err)
	}
	return sess, nil
}

// ListSessions pages through an app's sessions, newest first, optionally
// only those with status.
func (s *Service) ListSessions(ctx context.Context, appID, status string, limit int, startingAfter string) ([]Session, bool, error) {
	// Newest first by creation time: ids derived from idempotency keys
	// are not in time order.
	rows, err := s.db.Query(ctx, `SELECT `+sessionColumns+sessionFrom+`
		WHERE s.app_id = $1 AND ($3 = '' OR s.status = $3)
		  AND ($2 = '' OR (s.created_at, s.id) < (SELECT created_at, id FROM checkout_sessions WHERE id = $2 AND app_id = $1))
		ORDER BY s.created_at DESC, s.id DESC LIMIT $4`,
		appID, startingAfter, status, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list sessions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Session, error) { return scanSession(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list sessions: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// CancelSession cancels an open session of app appID.
func (s *Service) CancelSession(ctx context.Context, appID, sessionID string) (Session, error) {
	s.recent.forget(sessionID)
	var sess Session
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		sess, err = scanSession(tx.QueryRow(ctx, `UPDATE checkout_sessions s SET status = 'canceled', version = version + 1
			WHERE id = $1 AND app_id = $2 AND status = 'open' AND expires_at > now()
			RETURNING `+openSessionColumns, sessionID, appID))
		if err != nil {
			return err
		}
		return webhooks.Emit(ctx, tx, sessionEvent(webhooks.CheckoutSessionCanceled, sess))
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, s.whyNot(ctx, appID, sessionID)
	}
	if err != nil {
		return Session{}, fmt.Errorf("cancel session %s: %w", sessionID, err)
	}
	return sess, nil
}

// WhyUnpaid explains why session sessionID of app appID has no payment:
// ErrSessionNotFound when there is no such session of the app, else
// ErrNotCaptured (still open, expired, canceled, or a hold not captured).
func (s *Service) WhyUnpaid(ctx context.Context, appID, sessionID string) error {
	sess, err := s.GetSession(ctx, appID, sessionID)
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s is %s", ErrNotCaptured, sess.ID, sess.Status)
}

// whyNot explains why an open session of appID could not be changed.
func (s *Service) whyNot(ctx context.Context, appID, sessionID string) error {
	sess, err := s.GetSession(ctx, appID, sessionID)
	if err != nil {
		return err
	}
	return stateError(sess)
}

// stateError is the error for acting on a session that is not open.
func stateError(sess Session) error {
	switch {
	case sess.Status == StatusComplete:
		return fmt.Errorf("%w: %s", ErrSessionNotOpen, sess.ID)
	case sess.Status == StatusCanceled:
		return fmt.Errorf("%w: %s", ErrSessionCanceled, sess.ID)
	case sess.Status == StatusExpired || !time.Now().Before(sess.ExpiresAt):
		return fmt.Errorf("%w: %s", ErrSessionExpired, sess.ID)
	}
	return fmt.Errorf("%w: %s", errStateChanged, sess.ID)
}

// sessionEvent is the event for a session in its new state.
func sessionEvent(typ string, sess Session) webhooks.Event {
	return webhooks.Event{Type: typ, DeveloperID: sess.DeveloperID, AppID: sess.AppID,
		Object: sess.Public(), ObjectID: sess.ID, ObjectVersion: sess.Version}
}

// citus reports whether the database is a Citus coordinator, asking it
// once.
func (s *Service) citus(ctx context.Context) bool {
	s.citusOnce.Do(func() {
		on, err := citus.Enabled(ctx, s.db)
		s.onCitus = on && err == nil
	})
	return s.onCitus
}

// ExpireDue expires up to limit open sessions whose expiry has passed, each
// with its checkout.session.expired event, and returns how many. Replicas
// may run it at once: rows locked by one are skipped by the others.
func (s *Service) ExpireDue(ctx context.Context, limit int) (int, error) {
	n := 0
	var due []string
	if s.citus(ctx) {
		// Citus refuses FOR UPDATE over shards: read the due sessions
		// first, then expire those still open, each shard's rows under
		// their row locks; a replica that expired one meanwhile leaves
		// it out of the update (status = 'open' is checked again).
		rows, err := s.db.Query(ctx, `SELECT id FROM checkout_sessions WHERE status = 'open' AND expires_at <= now()
			ORDER BY expires_at LIMIT $1`, limit)
		if err == nil {
			due, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			return 0, fmt.Errorf("expire sessions: %w", err)
		}
		if len(due) == 0 {
			return 0, nil
		}
	}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var rows pgx.Rows
		var err error
		if s.onCitus {
			rows, err = tx.Query(ctx, `UPDATE checkout_sessions s SET status = 'expired', version = version + 1
				WHERE id = ANY($1) AND status = 'open' AND expires_at <= now()
				RETURNING `+openSessionColumns, due)
		} else {
			rows, err = tx.Query(ctx, `UPDATE checkout_sessions s SET status = 'expired', version = version + 1
				WHERE id IN (SELECT id FROM checkout_sessions WHERE status = 'open' AND expires_at <= now()
					ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
				RETURNING `+openSessionColumns, limit)
		}
		if err != nil {
			return err
		}
		expired, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Session, error) { return scanSession(r) })
		if err != nil {
			return err
		}
		for _, sess := range expired {
			if err := webhooks.Emit(ctx, tx, sessionEvent(webhooks.CheckoutSessionExpired, sess)); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("expire sessions: %w", err)
	}
	return n, nil
}

// ExpireSession expires an open session of app appID now, as if its expiry
// had passed, with its checkout.session.expired event. Sandboxes use it to
// show that event without waiting.
func (s *Service) ExpireSession(ctx context.Context, appID, sessionID string) (Session, error) {
	s.recent.forget(sessionID)
	var sess Session
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		sess, err = scanSession(tx.QueryRow(ctx, `UPDATE checkout_sessions s
			SET status = 'expired', expires_at = least(expires_at, now()), version = version + 1
			WHERE id = $1 AND app_id = $2 AND status = 'open' AND expires_at > now()
			RETURNING `+openSessionColumns, sessionID, appID))
		if err != nil {
			return err
		}
		return webhooks.Emit(ctx, tx, sessionEvent(webhooks.CheckoutSessionExpired, sess))
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, s.whyNot(ctx, appID, sessionID)
	}
	if err != nil {
		return Session{}, fmt.Errorf("expire session %s: %w", sessionID, err)
	}
	return sess, nil
}
