// Package webhooks tells developers' backends what happened: the event
// outbox, webhook endpoints, and the dispatcher that delivers events signed
// per the Standard Webhooks specification, retried until they land.
//
// Domain packages write events with Insert or Emit in the same database
// transaction as the change the event describes, so an event exists if and
// only if its change committed. webhooks imports no domain package.
package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/internal/id"
)

// Event types.
const (
	CheckoutSessionCompleted = "checkout.session.completed"
	CheckoutSessionExpired   = "checkout.session.expired"
	CheckoutSessionCanceled  = "checkout.session.canceled"
	PaymentCaptured          = "payment.captured"
	PaymentVoided            = "payment.voided"
	RefundSucceeded          = "refund.succeeded"
	PayoutCreated            = "payout.created"
	PayoutPaid               = "payout.paid"
	SettlementRunCompleted   = "settlement_run.completed"
	EndpointDisabled         = "webhook_endpoint.disabled"

	DisputeCreated = "dispute.created"
	DisputeUpdated = "dispute.updated"
	DisputeClosed  = "dispute.closed"

	SubscriptionActivated       = "subscription.activated"
	SubscriptionRenewalUpcoming = "subscription.renewal_upcoming"
	SubscriptionPastDue         = "subscription.past_due"
	SubscriptionCanceled        = "subscription.canceled"
	SubscriptionUpdated         = "subscription.updated"
	InvoicePaid                 = "invoice.paid"
	InvoicePaymentFailed        = "invoice.payment_failed"
)

// Types lists every event type a developer can subscribe to.
var Types = []string{
	CheckoutSessionCompleted, CheckoutSessionExpired, CheckoutSessionCanceled,
	PaymentCaptured, PaymentVoided, RefundSucceeded,
	PayoutCreated, PayoutPaid, SettlementRunCompleted, EndpointDisabled,
	DisputeCreated, DisputeUpdated, DisputeClosed,
	SubscriptionActivated, SubscriptionRenewalUpcoming, SubscriptionPastDue, SubscriptionCanceled, SubscriptionUpdated,
	InvoicePaid, InvoicePaymentFailed,
}

// Event is something that happened to an object a developer owns.
type Event struct {
	ID          string // evt_…; set by Insert when empty
	Type        string
	DeveloperID string
	// AppID is the app the event concerns; empty for events about the
	// developer as a whole (payouts), which go to all of its apps.
	AppID string
	// Object is the object as it is after the change, JSON-encodable. It
	// must carry "id" and "version" so a receiver can drop stale updates.
	Object        any
	ObjectID      string
	ObjectVersion int
	Created       time.Time
}

const (
	insertSQL = `INSERT INTO events (id, type, developer_id, app_id, object_id, object_version, data)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`
	// insertRowsSQL takes the same columns as arrays, for many events at once.
	insertRowsSQL = `INSERT INTO events (id, type, developer_id, app_id, object_id, object_version, data)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::jsonb[])`
)

// Insert returns the statement that writes e to the outbox, for callers
// that commit it with other statements (such as a ledger transfer's).
func Insert(e Event) (sql string, args []any, err error) {
	args, err = eventRow(e)
	return insertSQL, args, err
}

// InsertRow returns the set-based form of Insert: SQL that takes each
// column as an array, and e's row. Rows of several events in one such
// statement cost the database one execution (and one run of the fan-out
// trigger) instead of one per event.
func InsertRow(e Event) (sql string, row []any, err error) {
	row, err = eventRow(e)
	return insertRowsSQL, row, err
}

// eventRow is e's values in the column order of insertSQL.
func eventRow(e Event) ([]any, error) {
	if e.ID == "" {
		e.ID = id.New("evt")
	}
	data, err := eventData(e)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.Type, err)
	}
	var app *string
	if e.AppID != "" {
		app = &e.AppID
	}
	return []any{e.ID, e.Type, e.DeveloperID, app, e.ObjectID, e.ObjectVersion, data}, nil
}

// eventData is the event's data column, {"object": …}. An object already
// encoded (json.RawMessage, valid JSON: the database refuses other text) is
// used as it is, so a caller that also answers with the object encodes it
// once.
func eventData(e Event) ([]byte, error) {
	if raw, ok := e.Object.(json.RawMessage); ok {
		data := make([]byte, 0, len(raw)+len(`{"object":}`))
		data = append(data, `{"object":`...)
		data = append(data, raw...)
		return append(data, '}'), nil
	}
	return json.Marshal(map[string]any{"object": e.Object})
}

// Emit writes e to the outbox within tx.
func Emit(ctx context.Context, tx pgx.Tx, e Event) error {
	sql, args, err := Insert(e)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("emit %s: %w", e.Type, err)
	}
	return nil
}

// EmitAll writes events to the outbox within tx with one statement, so the
// fan-out trigger runs once for all of them.
func EmitAll(ctx context.Context, tx pgx.Tx, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	cols := make([][]any, 7)
	for _, e := range events {
		row, err := eventRow(e)
		if err != nil {
			return err
		}
		for c, v := range row {
			cols[c] = append(cols[c], v)
		}
	}
	args := make([]any, len(cols))
	for c, col := range cols {
		args[c] = col
	}
	if _, err := tx.Exec(ctx, insertRowsSQL, args...); err != nil {
		return fmt.Errorf("emit %d events: %w", len(events), err)
	}
	return nil
}

// eventBody is an event as developers receive it: the body of every
// delivery and what GET /v1/events/{id} returns, byte for byte.
type eventBody struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Type    string          `json:"type"`
	Created string          `json:"created"`
	Data    json.RawMessage `json:"data"`
}

// renderEvent encodes an event stored with data ({"object": {...}}).
// The same row always renders to the same bytes, so every delivery and
// redelivery of an event carries the same body.
func renderEvent(eventID, typ string, created time.Time, data []byte) ([]byte, error) {
	b, err := json.Marshal(eventBody{ID: eventID, Object: "event", Type: typ, Created: minipay.Timestamp(created), Data: data})
	if err != nil {
		return nil, fmt.Errorf("render event %s: %w", eventID, err)
	}
	return b, nil
}

// EventFilter selects events to list. Zero fields select everything.
type EventFilter struct {
	Type       string    // one event type
	CreatedGTE time.Time // created at or after
	CreatedLT  time.Time // created before
	Limit      int       // 1–100
	// StartingAfter is an event id: list the events after it in the
	// list's order (older ones when newest first).
	StartingAfter string
	// OldestFirst lists events in the order their transactions committed,
	// as a feed: a reader that passes the last id it saw as StartingAfter
	// never misses an event. An event appears once every transaction that
	// began before its own has ended, usually within milliseconds.
	OldestFirst bool
}

// GetEvent returns an event the owner may see, rendered as delivered.
func (s *Service) GetEvent(ctx context.Context, o Owner, eventID string) (json.RawMessage, error) {
	var (
		typ     string
		created time.Time
		data    []byte
	)
	err := s.db.QueryRow(ctx, `SELECT type, created_at, data::text FROM events
		WHERE id = $1 AND (app_id = $2 OR (app_id IS NULL AND developer_id = $3))`,
		eventID, o.AppID, o.DeveloperID).Scan(&typ, &created, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrEventNotFound, eventID)
	}
	if err != nil {
		return nil, fmt.Errorf("get event %s: %w", eventID, err)
	}
	return renderEvent(eventID, typ, created, data)
}

// ListEvents pages through the events the owner may see, newest first: the
// app's own and its developer's app-less ones.
func (s *Service) ListEvents(ctx context.Context, o Owner, f EventFilter) ([]json.RawMessage, bool, error) {
	if f.Type != "" && !slices.Contains(Types, f.Type) {
		return nil, false, minipay.Field("type", fmt.Errorf("%w: %q", ErrUnknownEventType, f.Type))
	}
	if f.CreatedLT.IsZero() {
		f.CreatedLT = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if f.OldestFirst {
		return s.feed(ctx, o, f)
	}
	// Two index scans merged, one per kind of event an app sees.
	const cols = `id, type, created_at, data::text FROM events`
	const where = ` AND ($2 = '' OR id < $2) AND ($3 = '' OR type = $3) AND created_at >= $4 AND created_at < $5
		ORDER BY id DESC LIMIT $6)`
	rows, err := s.db.Query(ctx, `SELECT * FROM (
		(SELECT `+cols+` WHERE app_id = $1`+where+`
		UNION ALL
		(SELECT `+cols+` WHERE app_id IS NULL AND developer_id = $7`+where+`
	) e ORDER BY id DESC LIMIT $6`,
		o.AppID, f.StartingAfter, f.Type, f.CreatedGTE, f.CreatedLT, f.Limit+1, o.DeveloperID)
	if err != nil {
		return nil, false, fmt.Errorf("list events: %w", err)
	}
	return collectEvents(rows, f.Limit)
}

// feedFenceSQL is the transaction id below which the feed may list
// events: the oldest transaction running when the statement's snapshot was
// taken, of those that may write to this database (see migration 00100).
// Transactions ids are cluster-wide, so one long transaction in another
// database would hold every feed back; such a transaction is left out,
// but only when it is positively known to be another database's (its
// transaction id lock held by a backend of that database). One not found
// (it ended meanwhile, or is prepared) still counts: its events, if any,
// are not in the statement's snapshot yet.
const feedFenceSQL = `WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
	running AS (SELECT x FROM snap, pg_snapshot_xip(s) AS x),
	elsewhere AS (
		SELECT r.x FROM running r
		JOIN pg_locks l ON l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
			AND l.transactionid::text::bigint = (r.x::text::numeric % 4294967296)::bigint
		JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE a.datname IS NOT NULL AND a.datname <> current_database()),
	fence AS (SELECT coalesce(min(x), (SELECT pg_snapshot_xmax(s) FROM snap)) AS x
		FROM running WHERE x NOT IN (SELECT x FROM elsewhere))`

// feed lists events oldest first, in (tx_id, id) order, stopping short of
// the oldest transaction still running that may write here (feedFenceSQL):
// an event that could still commit behind the cursor is not listed yet.
func (s *Service) feed(ctx context.Context, o Owner, f EventFilter) ([]json.RawMessage, bool, error) {
	afterTx, afterID := "0", ""
	if f.StartingAfter != "" {
		err := s.db.QueryRow(ctx, `SELECT tx_id::text FROM events
			WHERE id = $1 AND (app_id = $2 OR (app_id IS NULL AND developer_id = $3))`,
			f.StartingAfter, o.AppID, o.DeveloperID).Scan(&afterTx)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, false, minipay.Field("starting_after", fmt.Errorf("%w: %s", ErrEventNotFound, f.StartingAfter))
		}
		if err != nil {
			return nil, false, fmt.Errorf("event feed: %w", err)
		}
		afterID = f.StartingAfter
	}
	const cols = `tx_id, id, type, created_at, data::text FROM events`
	const where = ` AND (tx_id, id) > ($2::xid8, $3) AND tx_id < (SELECT x FROM fence)
		AND ($4 = '' OR type = $4) AND created_at >= $5 AND created_at < $6
		ORDER BY tx_id, id LIMIT $7)`
	rows, err := s.db.Query(ctx, feedFenceSQL+`
		SELECT id, type, created_at, data FROM (
		(SELECT `+cols+` WHERE app_id = $1`+where+`
		UNION ALL
		(SELECT `+cols+` WHERE app_id IS NULL AND developer_id = $8`+where+`
	) e ORDER BY tx_id, id LIMIT $7`,
		o.AppID, afterTx, afterID, f.Type, f.CreatedGTE, f.CreatedLT, f.Limit+1, o.DeveloperID)
	if err != nil {
		return nil, false, fmt.Errorf("event feed: %w", err)
	}
	return collectEvents(rows, f.Limit)
}

// collectEvents renders rows of (id, type, created_at, data) and pages them.
func collectEvents(rows pgx.Rows, limit int) ([]json.RawMessage, bool, error) {
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (json.RawMessage, error) {
		var (
			eventID, typ string
			created      time.Time
			data         []byte
		)
		if err := r.Scan(&eventID, &typ, &created, &data); err != nil {
			return nil, err
		}
		return renderEvent(eventID, typ, created, data)
	})
	if err != nil {
		return nil, false, fmt.Errorf("list events: %w", err)
	}
	return page(out, limit)
}
