package minipay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Plan is what a subscription charges, and how often: Amount in Currency
// every IntervalCount Intervals, after TrialPeriodDays free days.
type Plan struct {
	ID              string `json:"id"`
	App             string `json:"app,omitempty"`
	Name            string `json:"name"`
	Amount          string `json:"amount"`
	Currency        string `json:"currency"`
	Option          string `json:"option"`
	Interval        string `json:"interval"` // day, week, month, year
	IntervalCount   int    `json:"interval_count"`
	TrialPeriodDays int    `json:"trial_period_days"`
	Active          bool   `json:"active"`
	Created         string `json:"created,omitempty"`
}

// UnmarshalJSON reads a plan, or a plan's id alone (a plan not expanded).
func (p *Plan) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*p = Plan{}
		return json.Unmarshal(b, &p.ID)
	}
	type plain Plan // without this method
	return json.Unmarshal(b, (*plain)(p))
}

// PlanParams creates a plan. Option must be one that may back a recurring
// plan and is enabled for the app; Amount must be within its limits.
type PlanParams struct {
	Name     string `json:"name"`
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
	Option   string `json:"option"`
	Interval string `json:"interval"`
	// IntervalCount defaults to 1; TrialPeriodDays to 0 (the first period
	// is charged when the user signs).
	IntervalCount   int    `json:"interval_count,omitempty"`
	TrialPeriodDays int    `json:"trial_period_days,omitempty"`
	IdempotencyKey  string `json:"-"`
}

// CreatePlan creates a plan.
func (c *Client) CreatePlan(ctx context.Context, p PlanParams) (*Plan, error) {
	var pl Plan
	return &pl, c.call(ctx, http.MethodPost, "/v1/plans", nil, p, p.IdempotencyKey, &pl)
}

// GetPlan reads a plan.
func (c *Client) GetPlan(ctx context.Context, id string) (*Plan, error) {
	var pl Plan
	return &pl, c.call(ctx, http.MethodGet, "/v1/plans/"+url.PathEscape(id), nil, nil, "", &pl)
}

// ListPlans lists the app's plans, newest first.
func (c *Client) ListPlans(ctx context.Context, p ListParams) (*List[Plan], error) {
	var l List[Plan]
	return &l, c.call(ctx, http.MethodGet, "/v1/plans", p.values(), nil, "", &l)
}

// Subscription is a user's agreement to be charged a plan every period.
// Status is incomplete (created, not signed yet), incomplete_expired (not
// signed within 23 hours), trialing, active, past_due (a renewal failed;
// retries follow) or canceled.
type Subscription struct {
	ID  string `json:"id"`
	App string `json:"app,omitempty"`
	// Plan is the subscription's plan, expanded: what the user agreed to.
	Plan   Plan   `json:"plan"`
	Status string `json:"status"`
	// ClientSecret is what the mini-app front end passes to the SDK's
	// requestSubscription. Hand it only to the user who is to sign.
	ClientSecret       string            `json:"client_secret,omitempty"`
	Customer           *string           `json:"customer"` // the app's pseudonymous id of the signer (ou_…)
	CurrentPeriodStart *string           `json:"current_period_start"`
	CurrentPeriodEnd   *string           `json:"current_period_end"`
	TrialEnd           *string           `json:"trial_end"`
	CancelAtPeriodEnd  bool              `json:"cancel_at_period_end"`
	CanceledAt         *string           `json:"canceled_at"`
	CancellationReason *string           `json:"cancellation_reason"` // developer, user, payment_failed
	LatestInvoice      *string           `json:"latest_invoice"`
	ClientReferenceID  *string           `json:"client_reference_id,omitempty"`
	TestClock          *string           `json:"test_clock,omitempty"`
	Metadata           map[string]string `json:"metadata"`
	// ExpiresAt is, while incomplete, when it expires unsigned.
	ExpiresAt *string `json:"expires_at,omitempty"`
	Created   string  `json:"created,omitempty"`
	Version   int     `json:"version"`
}

// SubscriptionParams creates a subscription for one user to sign.
type SubscriptionParams struct {
	Plan              string            `json:"plan"`
	ClientReferenceID string            `json:"client_reference_id,omitempty"`
	Metadata          map[string]string `json:"metadata,omitempty"`
	// TestClock (clock_…) makes the subscription live by that clock's
	// time; sandboxes only.
	TestClock      string `json:"test_clock,omitempty"`
	IdempotencyKey string `json:"-"`
}

// CreateSubscription creates a subscription; hand its ID and ClientSecret
// to the mini-app, which asks the host to have the user sign it.
func (c *Client) CreateSubscription(ctx context.Context, p SubscriptionParams) (*Subscription, error) {
	var s Subscription
	return &s, c.call(ctx, http.MethodPost, "/v1/subscriptions", nil, p, p.IdempotencyKey, &s)
}

// GetSubscription reads a subscription.
func (c *Client) GetSubscription(ctx context.Context, id string) (*Subscription, error) {
	var s Subscription
	return &s, c.call(ctx, http.MethodGet, "/v1/subscriptions/"+url.PathEscape(id), nil, nil, "", &s)
}

// SubscriptionListParams filters the subscription list.
type SubscriptionListParams struct {
	ListParams
	Status string
	Plan   string
}

// ListSubscriptions lists the app's subscriptions, newest first.
func (c *Client) ListSubscriptions(ctx context.Context, p SubscriptionListParams) (*List[Subscription], error) {
	q := p.values()
	if p.Status != "" {
		q.Set("status", p.Status)
	}
	if p.Plan != "" {
		q.Set("plan", p.Plan)
	}
	var l List[Subscription]
	return &l, c.call(ctx, http.MethodGet, "/v1/subscriptions", q, nil, "", &l)
}

// CancelSubscriptionParams is the developer's cancel: at once, or, with
// AtPeriodEnd, when the period already paid for ends.
type CancelSubscriptionParams struct {
	AtPeriodEnd    bool   `json:"at_period_end"`
	IdempotencyKey string `json:"-"`
}

// CancelSubscription cancels a subscription (reason "developer").
func (c *Client) CancelSubscription(ctx context.Context, id string, p CancelSubscriptionParams) (*Subscription, error) {
	var s Subscription
	return &s, c.call(ctx, http.MethodPost, "/v1/subscriptions/"+url.PathEscape(id)+"/cancel", nil, p, p.IdempotencyKey, &s)
}

// Invoice is one charge of a subscription, for the period from PeriodStart
// to PeriodEnd. Status is open (not paid yet: due, or being retried), paid
// or void (retries ran out). A paid invoice is a payment, refundable with
// CreateRefund's Invoice.
type Invoice struct {
	ID                 string  `json:"id"`
	Subscription       string  `json:"subscription"`
	Amount             string  `json:"amount"`
	Currency           string  `json:"currency"`
	Status             string  `json:"status"`
	AttemptCount       int     `json:"attempt_count"`
	NextPaymentAttempt *string `json:"next_payment_attempt"`
	PeriodStart        string  `json:"period_start"`
	PeriodEnd          string  `json:"period_end"`
	Fee                *string `json:"fee"`
	AmountRefunded     string  `json:"amount_refunded"`
	PaidAt             *string `json:"paid_at,omitempty"`
	VoidedAt           *string `json:"voided_at,omitempty"`
	Created            string  `json:"created,omitempty"`
	Version            int     `json:"version,omitempty"`
}

// GetInvoice reads an invoice.
func (c *Client) GetInvoice(ctx context.Context, id string) (*Invoice, error) {
	var in Invoice
	return &in, c.call(ctx, http.MethodGet, "/v1/invoices/"+url.PathEscape(id), nil, nil, "", &in)
}

// InvoiceListParams filters the invoice list.
type InvoiceListParams struct {
	ListParams
	Subscription string
}

// ListInvoices lists the app's invoices (one subscription's, with
// Subscription), newest first.
func (c *Client) ListInvoices(ctx context.Context, p InvoiceListParams) (*List[Invoice], error) {
	q := p.values()
	if p.Subscription != "" {
		q.Set("subscription", p.Subscription)
	}
	var l List[Invoice]
	return &l, c.call(ctx, http.MethodGet, "/v1/invoices", q, nil, "", &l)
}

// Subscription decodes the event's object as a subscription, for the
// subscription.* events.
func (e *Event) Subscription() (*Subscription, error) {
	var s Subscription
	if err := json.Unmarshal(e.Data.Object, &s); err != nil {
		return nil, fmt.Errorf("minipay: event %s: decode subscription: %w", e.ID, err)
	}
	return &s, nil
}

// Invoice decodes the event's object as an invoice, for the invoice.*
// events.
func (e *Event) Invoice() (*Invoice, error) {
	var in Invoice
	if err := json.Unmarshal(e.Data.Object, &in); err != nil {
		return nil, fmt.Errorf("minipay: event %s: decode invoice: %w", e.ID, err)
	}
	return &in, nil
}

// TestClock is a sandbox's clock: subscriptions created with it live by
// its FrozenTime, which only AdvanceTestClock moves.
type TestClock struct {
	ID         string `json:"id"`
	FrozenTime string `json:"frozen_time"` // RFC 3339
	Status     string `json:"status"`      // ready, advancing
}

// TestClockParams sets a clock's time (RFC 3339).
type TestClockParams struct {
	FrozenTime     string `json:"frozen_time"`
	IdempotencyKey string `json:"-"`
}

// CreateTestClock makes a test clock. Test clocks exist in sandboxes only
// (MINIPAY_SANDBOX=true, as minipay dev sets it); elsewhere the call fails
// with 403 sandbox_only.
func (c *Client) CreateTestClock(ctx context.Context, p TestClockParams) (*TestClock, error) {
	var tc TestClock
	return &tc, c.call(ctx, http.MethodPost, "/v1/test_clocks", nil, p, p.IdempotencyKey, &tc)
}

// AdvanceTestClock moves a clock forward (at most two years) and runs, in
// time order, every trial end, notice, renewal, retry and expiry due on it
// by then; it returns once the clock is ready again.
func (c *Client) AdvanceTestClock(ctx context.Context, id string, p TestClockParams) (*TestClock, error) {
	var tc TestClock
	return &tc, c.call(ctx, http.MethodPost, "/v1/test_clocks/"+url.PathEscape(id)+"/advance", nil, p, p.IdempotencyKey, &tc)
}

// SheetSubscription is a subscription as the host's agreement sheet shows
// it: no client secret, no customer, and the name of the app selling.
type SheetSubscription struct {
	Subscription
	AppName string `json:"app_name"`
}

// GetSubscription reads what the agreement sheet shows of a subscription.
func (h *HostClient) GetSubscription(ctx context.Context, id string) (*SheetSubscription, error) {
	var s SheetSubscription
	return &s, h.c.call(ctx, http.MethodGet, "/v1/subscriptions/"+url.PathEscape(id), nil, nil, "", &s)
}

// SignParams signs a subscription for the signed-in user with the client
// secret the mini-app handed over. Set IdempotencyKey to the bridge
// request's id, so a retried sign charges once.
type SignParams struct {
	UserID         string `json:"user_id"`
	ClientSecret   string `json:"client_secret"`
	IdempotencyKey string `json:"-"`
}

// SignSubscription signs a subscription: without a trial the first period
// is charged at once, and a wallet that cannot pay is an *Error with code
// "insufficient_funds" (402) that leaves the subscription incomplete.
func (h *HostClient) SignSubscription(ctx context.Context, id string, p SignParams) (*SheetSubscription, error) {
	if strings.TrimSpace(p.UserID) == "" {
		return nil, errMissing("UserID")
	}
	var s SheetSubscription
	return &s, h.c.call(ctx, http.MethodPost, "/v1/subscriptions/"+url.PathEscape(id)+"/sign", nil, p, p.IdempotencyKey, &s)
}

// CancelSubscription is the user's cancel, which only the user who signed
// may make; it always takes effect at the end of the period already paid
// for (reason "user").
func (h *HostClient) CancelSubscription(ctx context.Context, id, userID string) (*SheetSubscription, error) {
	if strings.TrimSpace(userID) == "" {
		return nil, errMissing("UserID")
	}
	var s SheetSubscription
	body := struct {
		UserID string `json:"user_id"`
	}{userID}
	return &s, h.c.call(ctx, http.MethodPost, "/v1/subscriptions/"+url.PathEscape(id)+"/cancel", nil, body, "", &s)
}
