package minipay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Session is a checkout session. Amounts are decimal strings in major
// units beside Currency ("12.34" CNY); never parse them into floats.
type Session struct {
	ID                string  `json:"id"`
	App               string  `json:"app"`
	Status            string  `json:"status"`         // open, complete, expired, canceled
	PaymentStatus     string  `json:"payment_status"` // unpaid, paid, partially_refunded, refunded
	CaptureMethod     string  `json:"capture_method"` // automatic, manual
	CaptureStatus     *string `json:"capture_status"`
	AmountTotal       string  `json:"amount_total"`
	AmountRefunded    string  `json:"amount_refunded"`
	Fee               *string `json:"fee"`
	Currency          string  `json:"currency"`
	Option            string  `json:"option"`
	OptionVersion     *string `json:"option_version"`
	ClientReferenceID *string `json:"client_reference_id"`
	// ClientSecret is what the mini-app front end passes to the SDK's
	// requestPayment. Hand it only to the user the session is for.
	ClientSecret    string            `json:"client_secret,omitempty"`
	Customer        *string           `json:"customer"` // the app's pseudonymous user id (ou_…), once paid
	LineItems       []LineItem        `json:"line_items,omitempty"`
	Metadata        map[string]string `json:"metadata"`
	ExpiresAt       string            `json:"expires_at"`
	HoldExpiresAt   *string           `json:"hold_expires_at,omitempty"`
	RefundableUntil *string           `json:"refundable_until,omitempty"`
	AvailableOn     *string           `json:"available_on,omitempty"`
	CompletedAt     *string           `json:"completed_at"`
	Created         string            `json:"created"`
	Version         int               `json:"version"`
}

// LineItem is one line of a session.
type LineItem struct {
	Name        string `json:"name"`
	UnitAmount  string `json:"unit_amount"`
	Quantity    int64  `json:"quantity"`
	AmountTotal string `json:"amount_total,omitempty"`
}

// SessionParams creates a session: Amount or LineItems, Currency and
// Option are required.
type SessionParams struct {
	Amount            string            `json:"amount,omitempty"`
	LineItems         []LineItem        `json:"line_items,omitempty"`
	Currency          string            `json:"currency"`
	Option            string            `json:"option"`
	ClientReferenceID string            `json:"client_reference_id,omitempty"`
	ExpiresIn         int64             `json:"expires_in,omitempty"` // seconds, 60 to 86400
	CaptureMethod     string            `json:"capture_method,omitempty"`
	Metadata          map[string]string `json:"metadata,omitempty"`
	// IdempotencyKey identifies this logical request; generated when empty.
	// Reuse your order id to make "create the session for order 42" safe
	// to repeat across restarts.
	IdempotencyKey string `json:"-"`
}

// CreateSession creates a checkout session.
func (c *Client) CreateSession(ctx context.Context, p SessionParams) (*Session, error) {
	for i := range p.LineItems {
		p.LineItems[i].AmountTotal = ""
	}
	var s Session
	return &s, c.call(ctx, http.MethodPost, "/v1/checkout/sessions", nil, p, p.IdempotencyKey, &s)
}

// GetSession reads a session.
func (c *Client) GetSession(ctx context.Context, id string) (*Session, error) {
	var s Session
	return &s, c.call(ctx, http.MethodGet, "/v1/checkout/sessions/"+url.PathEscape(id), nil, nil, "", &s)
}

// SessionListParams filters the session list.
type SessionListParams struct {
	ListParams
	Status string
}

// ListSessions lists the app's sessions, newest first.
func (c *Client) ListSessions(ctx context.Context, p SessionListParams) (*List[Session], error) {
	q := p.values()
	if p.Status != "" {
		q.Set("status", p.Status)
	}
	var l List[Session]
	return &l, c.call(ctx, http.MethodGet, "/v1/checkout/sessions", q, nil, "", &l)
}

func (c *Client) sessionAction(ctx context.Context, id, action string) (*Session, error) {
	var s Session
	return &s, c.call(ctx, http.MethodPost, "/v1/checkout/sessions/"+url.PathEscape(id)+"/"+action, nil, struct{}{}, "", &s)
}

// CancelSession cancels an open session.
func (c *Client) CancelSession(ctx context.Context, id string) (*Session, error) {
	return c.sessionAction(ctx, id, "cancel")
}

// CaptureSession captures a manual-capture session's hold.
func (c *Client) CaptureSession(ctx context.Context, id string) (*Session, error) {
	return c.sessionAction(ctx, id, "capture")
}

// VoidSession releases a manual-capture session's hold.
func (c *Client) VoidSession(ctx context.Context, id string) (*Session, error) {
	return c.sessionAction(ctx, id, "void")
}

// Refund is a refund of (part of) a session's payment.
type Refund struct {
	ID              string            `json:"id"`
	CheckoutSession string            `json:"checkout_session"`
	Invoice         string            `json:"invoice,omitempty"`
	App             string            `json:"app"`
	Amount          string            `json:"amount"`
	FeeRefunded     string            `json:"fee_refunded"`
	Currency        string            `json:"currency"`
	Status          string            `json:"status"`
	Reason          *string           `json:"reason"`
	Metadata        map[string]string `json:"metadata"`
	Created         string            `json:"created"`
	Version         int               `json:"version"`
}

// RefundParams creates a refund of a paid session (CheckoutSession) or a
// paid subscription invoice (Invoice); Amount empty refunds all that is
// left.
type RefundParams struct {
	CheckoutSession string            `json:"checkout_session,omitempty"`
	Invoice         string            `json:"invoice,omitempty"`
	Amount          string            `json:"amount,omitempty"`
	Reason          string            `json:"reason,omitempty"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	IdempotencyKey  string            `json:"-"`
}

// CreateRefund refunds a paid session or invoice, in full or in part.
func (c *Client) CreateRefund(ctx context.Context, p RefundParams) (*Refund, error) {
	var r Refund
	return &r, c.call(ctx, http.MethodPost, "/v1/refunds", nil, p, p.IdempotencyKey, &r)
}

// GetRefund reads a refund.
func (c *Client) GetRefund(ctx context.Context, id string) (*Refund, error) {
	var r Refund
	return &r, c.call(ctx, http.MethodGet, "/v1/refunds/"+url.PathEscape(id), nil, nil, "", &r)
}

// Money is an amount in one currency.
type Money struct {
	Currency string `json:"currency"`
	Amount   string `json:"amount"`
}

// Balance is the developer's money: pending (not yet matured) and
// available (goes out with the next settlement run).
type Balance struct {
	Pending   []Money `json:"pending"`
	Available []Money `json:"available"`
}

// GetBalance reads the developer's balance.
func (c *Client) GetBalance(ctx context.Context) (*Balance, error) {
	var b Balance
	return &b, c.call(ctx, http.MethodGet, "/v1/balance", nil, nil, "", &b)
}

// Event is something that happened: its Data.Object is the object after
// the change (a session, a refund, a payout …).
type Event struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Created string `json:"created"`
	Data    struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// Session decodes the event's object as a checkout session, for the
// checkout.session.* and payment.* events.
func (e *Event) Session() (*Session, error) {
	var s Session
	if err := json.Unmarshal(e.Data.Object, &s); err != nil {
		return nil, fmt.Errorf("minipay: event %s: decode session: %w", e.ID, err)
	}
	return &s, nil
}

// Refund decodes the event's object as a refund (refund.succeeded).
func (e *Event) Refund() (*Refund, error) {
	var r Refund
	if err := json.Unmarshal(e.Data.Object, &r); err != nil {
		return nil, fmt.Errorf("minipay: event %s: decode refund: %w", e.ID, err)
	}
	return &r, nil
}

// EventListParams filters the event log.
type EventListParams struct {
	ListParams
	Type string
	// OldestFirst lists events as a feed, in the order they committed:
	// pass the last event id you saw as StartingAfter and you never miss
	// one (the catch-up path for a backend that was down).
	OldestFirst bool
}

// ListEvents lists events, newest first (or as a feed, OldestFirst).
func (c *Client) ListEvents(ctx context.Context, p EventListParams) (*List[Event], error) {
	q := p.values()
	if p.Type != "" {
		q.Set("type", p.Type)
	}
	if p.OldestFirst {
		q.Set("order", "asc")
	}
	var l List[Event]
	return &l, c.call(ctx, http.MethodGet, "/v1/events", q, nil, "", &l)
}

// GetEvent reads one event.
func (c *Client) GetEvent(ctx context.Context, id string) (*Event, error) {
	var e Event
	return &e, c.call(ctx, http.MethodGet, "/v1/events/"+url.PathEscape(id), nil, nil, "", &e)
}

// WebhookEndpoint is where events are delivered.
type WebhookEndpoint struct {
	ID            string   `json:"id"`
	App           string   `json:"app"`
	URL           string   `json:"url"`
	Description   string   `json:"description"`
	EnabledEvents []string `json:"enabled_events"`
	Status        string   `json:"status"` // enabled, disabled
	// Secret (whsec_…) verifies deliveries; returned only by create and
	// rotate.
	Secret  string `json:"secret,omitempty"`
	Created string `json:"created"`
}

// WebhookEndpointParams creates an endpoint; EnabledEvents defaults to
// every event ("*").
type WebhookEndpointParams struct {
	URL            string   `json:"url"`
	EnabledEvents  []string `json:"enabled_events"`
	Description    string   `json:"description,omitempty"`
	IdempotencyKey string   `json:"-"`
}

// CreateWebhookEndpoint registers an endpoint. Keep the returned Secret.
func (c *Client) CreateWebhookEndpoint(ctx context.Context, p WebhookEndpointParams) (*WebhookEndpoint, error) {
	if len(p.EnabledEvents) == 0 {
		p.EnabledEvents = []string{"*"}
	}
	var w WebhookEndpoint
	return &w, c.call(ctx, http.MethodPost, "/v1/webhook_endpoints", nil, p, p.IdempotencyKey, &w)
}

// GetWebhookEndpoint reads an endpoint.
func (c *Client) GetWebhookEndpoint(ctx context.Context, id string) (*WebhookEndpoint, error) {
	var w WebhookEndpoint
	return &w, c.call(ctx, http.MethodGet, "/v1/webhook_endpoints/"+url.PathEscape(id), nil, nil, "", &w)
}

// ListWebhookEndpoints lists the app's endpoints.
func (c *Client) ListWebhookEndpoints(ctx context.Context, p ListParams) (*List[WebhookEndpoint], error) {
	var l List[WebhookEndpoint]
	return &l, c.call(ctx, http.MethodGet, "/v1/webhook_endpoints", p.values(), nil, "", &l)
}

// WebhookEndpointUpdate changes an endpoint; nil fields stay as they are.
type WebhookEndpointUpdate struct {
	URL           *string   `json:"url,omitempty"`
	EnabledEvents *[]string `json:"enabled_events,omitempty"`
	Description   *string   `json:"description,omitempty"`
	Status        *string   `json:"status,omitempty"`
}

// UpdateWebhookEndpoint changes an endpoint.
func (c *Client) UpdateWebhookEndpoint(ctx context.Context, id string, u WebhookEndpointUpdate) (*WebhookEndpoint, error) {
	var w WebhookEndpoint
	return &w, c.call(ctx, http.MethodPatch, "/v1/webhook_endpoints/"+url.PathEscape(id), nil, u, "", &w)
}

// DeleteWebhookEndpoint removes an endpoint.
func (c *Client) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/webhook_endpoints/"+url.PathEscape(id), nil, nil, "", nil)
}

// RotateWebhookSecret gives an endpoint a new secret; the old one keeps
// signing for 24 hours.
func (c *Client) RotateWebhookSecret(ctx context.Context, id string) (*WebhookEndpoint, error) {
	var w WebhookEndpoint
	return &w, c.call(ctx, http.MethodPost, "/v1/webhook_endpoints/"+url.PathEscape(id)+"/rotate_secret", nil, struct{}{}, "", &w)
}

// App is a mini-app, as its own key sees it.
type App struct {
	ID         string   `json:"id"`
	Developer  string   `json:"developer"`
	Name       string   `json:"name"`
	Options    []string `json:"options"`
	Currencies []string `json:"currencies"`
	Created    string   `json:"created"`
}

// GetApp reads the app the client's key belongs to.
func (c *Client) GetApp(ctx context.Context) (*App, error) {
	var a App
	return &a, c.call(ctx, http.MethodGet, "/v1/app", nil, nil, "", &a)
}
