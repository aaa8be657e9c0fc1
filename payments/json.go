package payments

import (
	"github.com/minipay/minipay"
	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
)

// RefundObject is a refund as apps and webhooks see it (the API's wire
// shape): the payment it gives back as checkout_session or invoice.
type RefundObject struct {
	ID              string            `json:"id"`
	Object          string            `json:"object"`
	CheckoutSession *string           `json:"checkout_session"`
	Invoice         *string           `json:"invoice,omitempty"`
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

// Public is the refund's wire shape.
func (r Refund) Public() RefundObject {
	md := r.Metadata
	if md == nil {
		md = map[string]string{}
	}
	o := RefundObject{ID: r.ID, Object: "refund", App: r.AppID,
		Amount: ledger.FormatAmount(r.Currency, r.Amount), FeeRefunded: ledger.FormatAmount(r.Currency, r.FeeRefunded),
		Currency: r.Currency, Status: r.Status, Reason: null.String(r.Reason), Metadata: md, Created: minipay.Timestamp(r.Created), Version: 1}
	if KindOf(r.PaymentID) == KindInvoice {
		o.Invoice = &r.PaymentID
	} else {
		o.CheckoutSession = &r.PaymentID
	}
	return o
}
