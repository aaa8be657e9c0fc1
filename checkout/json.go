package checkout

import (
	"bytes"
	"encoding/json"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
)

// The wire shapes of checkout's objects (docs/openapi.yaml). They are
// built here, not in package api, because events carry the same objects as
// API responses.

// SessionObject is a session as apps and webhooks see it: no host user id,
// only the app's pseudonymous customer id.
type SessionObject struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	App               string            `json:"app"`
	Status            string            `json:"status"`
	PaymentStatus     string            `json:"payment_status"`
	CaptureMethod     string            `json:"capture_method"`
	CaptureStatus     *string           `json:"capture_status"`
	AmountTotal       string            `json:"amount_total"`
	AmountRefunded    string            `json:"amount_refunded"`
	Fee               *string           `json:"fee"`
	Currency          string            `json:"currency"`
	Option            string            `json:"option"`
	OptionVersion     *string           `json:"option_version"`
	ClientReferenceID *string           `json:"client_reference_id"`
	ClientSecret      string            `json:"client_secret,omitempty"`
	Customer          *string           `json:"customer"`
	LineItems         []LineItemObject  `json:"line_items,omitempty"`
	Metadata          map[string]string `json:"metadata"`
	ExpiresAt         string            `json:"expires_at"`
	HoldExpiresAt     *string           `json:"hold_expires_at,omitempty"`
	RefundableUntil   *string           `json:"refundable_until,omitempty"`
	AvailableOn       *string           `json:"available_on,omitempty"`
	CompletedAt       *string           `json:"completed_at"`
	Created           string            `json:"created"`
	Version           int               `json:"version"`
}

// LineItemObject is a line item with its amounts in major units.
type LineItemObject struct {
	Name        string `json:"name"`
	UnitAmount  string `json:"unit_amount"`
	Quantity    int64  `json:"quantity"`
	AmountTotal string `json:"amount_total"`
}

// Public is the session as its app sees it, without the client secret.
func (s Session) Public() SessionObject {
	f := func(v int64) string { return ledger.FormatAmount(s.Currency, v) }
	o := SessionObject{
		ID: s.ID, Object: "checkout.session", App: s.AppID, Status: s.Status, PaymentStatus: s.PaymentStatus,
		CaptureMethod: s.CaptureMethod, CaptureStatus: null.String(s.CaptureStatus),
		AmountTotal: f(s.AmountTotal), AmountRefunded: f(s.AmountRefunded), Currency: s.Currency,
		Option: s.Option, OptionVersion: null.String(s.OptionVersion), ClientReferenceID: null.String(s.ClientReferenceID),
		Customer: null.String(s.Customer), Metadata: s.Metadata, ExpiresAt: minipay.Timestamp(s.ExpiresAt),
		HoldExpiresAt: minipay.OptionalTimestamp(s.HoldExpiresAt), RefundableUntil: minipay.OptionalTimestamp(s.RefundUntil), AvailableOn: minipay.OptionalTimestamp(s.AvailableOn),
		CompletedAt: minipay.OptionalTimestamp(s.CompletedAt), Created: minipay.Timestamp(s.Created), Version: s.Version,
	}
	if s.Fee != nil {
		fee := f(*s.Fee)
		o.Fee = &fee
	}
	if o.Metadata == nil {
		o.Metadata = map[string]string{}
	}
	for _, it := range s.LineItems {
		o.LineItems = append(o.LineItems, LineItemObject{Name: it.Name, UnitAmount: f(it.UnitAmount), Quantity: it.Quantity,
			AmountTotal: f(it.UnitAmount * it.Quantity)})
	}
	return o
}

// PublicJSON is Public() encoded as the API encodes its answers (no HTML
// escaping, no trailing newline). A session a confirm returns carries the
// bytes its event was written with, so the answer costs no second encoding.
func (s Session) PublicJSON() (json.RawMessage, error) {
	if s.public != nil {
		return s.public, nil
	}
	return encodeObject(s.Public())
}

// encodeObject encodes v as the API does.
func encodeObject(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// HostSessionObject is a session as the host's payment sheet reads it:
// what the user is asked to pay and to whom. The client secret stays with
// the mini-app that pays, and the app's pseudonymous id of the payer with
// the app.
type HostSessionObject struct {
	SessionObject
	// Customer hides the session's customer: always nil, so left out.
	Customer *string `json:"customer,omitempty"`
	// AppName is the name of the mini-app asking to be paid.
	AppName string `json:"app_name"`
}

// ForHost is the session as the host reads it, with the name of its app.
func (s Session) ForHost(appName string) HostSessionObject {
	return HostSessionObject{SessionObject: s.Public(), AppName: appName}
}

// WithSecret is the session as its app's backend reads it, with the client
// secret the front end needs to pay.
func (s Session) WithSecret() SessionObject {
	o := s.Public()
	o.ClientSecret = s.ClientSecret
	return o
}
