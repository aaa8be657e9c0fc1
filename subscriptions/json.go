package subscriptions

import (
	"github.com/minipay/minipay"
	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/webhooks"
)

// The wire shapes of subscriptions' objects. They are built here, not in
// package api, because events carry the same objects as API responses.

// PlanObject is a plan as the API shows it.
type PlanObject struct {
	ID              string `json:"id"`
	Object          string `json:"object"`
	App             string `json:"app"`
	Name            string `json:"name"`
	Amount          string `json:"amount"`
	Currency        string `json:"currency"`
	Option          string `json:"option"`
	Interval        string `json:"interval"`
	IntervalCount   int    `json:"interval_count"`
	TrialPeriodDays int    `json:"trial_period_days"`
	Active          bool   `json:"active"`
	Created         string `json:"created"`
}

// Public is the plan's wire shape.
func (p Plan) Public() PlanObject {
	return PlanObject{ID: p.ID, Object: "plan", App: p.AppID, Name: p.Name, Amount: ledger.FormatAmount(p.Currency, p.Amount),
		Currency: p.Currency, Option: p.Option, Interval: p.Interval, IntervalCount: p.IntervalCount,
		TrialPeriodDays: p.TrialPeriodDays, Active: p.Active, Created: minipay.Timestamp(p.Created)}
}

// Object is a subscription as its app and webhooks see it: no host user
// id, only the app's pseudonymous customer id. The plan is expanded, so an
// agreement sheet or a receiver has its name, amount and interval.
type Object struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	App                string            `json:"app"`
	Plan               PlanObject        `json:"plan"`
	Status             string            `json:"status"`
	ClientSecret       string            `json:"client_secret,omitempty"`
	Customer           *string           `json:"customer"`
	ClientReferenceID  *string           `json:"client_reference_id"`
	CurrentPeriodStart *string           `json:"current_period_start"`
	CurrentPeriodEnd   *string           `json:"current_period_end"`
	TrialEnd           *string           `json:"trial_end"`
	CancelAtPeriodEnd  bool              `json:"cancel_at_period_end"`
	CanceledAt         *string           `json:"canceled_at"`
	CancellationReason *string           `json:"cancellation_reason"`
	LatestInvoice      *string           `json:"latest_invoice"`
	TestClock          *string           `json:"test_clock"`
	Metadata           map[string]string `json:"metadata"`
	ExpiresAt          *string           `json:"expires_at"`
	Created            string            `json:"created"`
	Version            int               `json:"version"`
}

// Public is the subscription as its app sees it, without the client secret.
func (s Subscription) Public() Object {
	o := Object{ID: s.ID, Object: "subscription", App: s.AppID, Plan: s.Plan.Public(), Status: s.Status,
		Customer: null.String(s.Customer), ClientReferenceID: null.String(s.ClientReferenceID),
		CurrentPeriodStart: minipay.OptionalTimestamp(s.PeriodStart), CurrentPeriodEnd: minipay.OptionalTimestamp(s.PeriodEnd), TrialEnd: minipay.OptionalTimestamp(s.TrialEnd),
		CancelAtPeriodEnd: s.CancelAtPeriodEnd, CanceledAt: minipay.OptionalTimestamp(s.CanceledAt),
		CancellationReason: null.String(s.CancellationReason), LatestInvoice: null.String(s.LatestInvoice),
		TestClock: null.String(s.TestClockID), Metadata: s.Metadata, Created: minipay.Timestamp(s.Created), Version: s.Version}
	if s.Status == StatusIncomplete {
		o.ExpiresAt = minipay.OptionalTimestamp(s.ExpiresAt)
	}
	if o.Metadata == nil {
		o.Metadata = map[string]string{}
	}
	return o
}

// WithSecret is the subscription as its app's backend reads it, with the
// client secret the front end needs to have it signed.
func (s Subscription) WithSecret() Object {
	o := s.Public()
	o.ClientSecret = s.ClientSecret
	return o
}

// HostObject is a subscription as the host's agreement sheet reads it:
// what the user is asked to agree to and with whom. The client secret
// stays with the mini-app, and the app's pseudonymous id of the user with
// the app.
type HostObject struct {
	Object
	// Customer hides the subscription's customer: always nil, so left out.
	Customer *string `json:"customer,omitempty"`
	// AppName is the name of the mini-app asking for the agreement.
	AppName string `json:"app_name"`
}

// ForHost is the subscription as the host reads it, with its app's name.
func (s Subscription) ForHost(appName string) HostObject {
	return HostObject{Object: s.Public(), AppName: appName}
}

// InvoiceObject is an invoice's wire shape.
type InvoiceObject struct {
	ID                 string  `json:"id"`
	Object             string  `json:"object"`
	App                string  `json:"app"`
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
	PaidAt             *string `json:"paid_at"`
	VoidedAt           *string `json:"voided_at"`
	TestClock          *string `json:"test_clock"`
	Created            string  `json:"created"`
	Version            int     `json:"version"`
}

// Public is the invoice's wire shape. Its version adds its payment's, so
// a refund or dispute of a paid invoice shows as a newer invoice.
func (inv Invoice) Public() InvoiceObject {
	f := func(v int64) string { return ledger.FormatAmount(inv.Currency, v) }
	o := InvoiceObject{ID: inv.ID, Object: "invoice", App: inv.AppID, Subscription: inv.SubscriptionID, Amount: f(inv.Amount),
		Currency: inv.Currency, Status: inv.Status, AttemptCount: inv.AttemptCount,
		NextPaymentAttempt: minipay.OptionalTimestamp(inv.NextPaymentAttempt), PeriodStart: minipay.Timestamp(inv.PeriodStart),
		PeriodEnd: minipay.Timestamp(inv.PeriodEnd), AmountRefunded: f(inv.AmountRefunded), PaidAt: minipay.OptionalTimestamp(inv.PaidAt),
		VoidedAt: minipay.OptionalTimestamp(inv.VoidedAt), TestClock: null.String(inv.TestClockID), Created: minipay.Timestamp(inv.Created),
		Version: inv.Version + inv.PaymentVersion}
	if inv.Fee != nil {
		fee := f(*inv.Fee)
		o.Fee = &fee
	}
	return o
}

// subEvent is an event about sub, as it is after the change.
func subEvent(typ string, sub Subscription) webhooks.Event {
	return webhooks.Event{Type: typ, DeveloperID: sub.DeveloperID, AppID: sub.AppID, Object: sub.Public(),
		ObjectID: sub.ID, ObjectVersion: sub.Version}
}

// invoiceEvent is an event about inv, as it is after the change.
func invoiceEvent(typ string, inv Invoice) webhooks.Event {
	return webhooks.Event{Type: typ, DeveloperID: inv.DeveloperID, AppID: inv.AppID, Object: inv.Public(),
		ObjectID: inv.ID, ObjectVersion: inv.Version + inv.PaymentVersion}
}
