package disputes

import (
	"github.com/minipay/minipay"
	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
)

// Object is a dispute as the API and webhooks show it. It never carries
// the host's user id: apps see the payer only as their customer (ou_…).
type Object struct {
	ID            string          `json:"id"`
	Object        string          `json:"object"`
	Payment       string          `json:"payment"`
	App           string          `json:"app"`
	Customer      string          `json:"customer"`
	Amount        string          `json:"amount"`
	Currency      string          `json:"currency"`
	FeeRefunded   string          `json:"fee_refunded"`
	Reason        string          `json:"reason"`
	Description   *string         `json:"description"`
	Status        string          `json:"status"`
	EvidenceDueBy string          `json:"evidence_due_by"`
	Evidence      *EvidenceObject `json:"evidence"`
	Outcome       *string         `json:"outcome"`
	ClosedBy      *string         `json:"closed_by"`
	RespondedAt   *string         `json:"responded_at"`
	ClosedAt      *string         `json:"closed_at"`
	Created       string          `json:"created"`
	Version       int             `json:"version"`
}

// EvidenceObject is the developer's answer as the API shows it.
type EvidenceObject struct {
	Text  string   `json:"text"`
	Files []string `json:"files"`
}

// Public is the dispute's wire shape.
func (d Dispute) Public() Object {
	f := func(v int64) string { return ledger.FormatAmount(d.Currency, v) }
	o := Object{ID: d.ID, Object: "dispute", Payment: d.PaymentID, App: d.AppID, Customer: d.Customer,
		Amount: f(d.Amount), Currency: d.Currency, FeeRefunded: f(d.FeeRefunded), Reason: d.Reason,
		Description: null.String(d.Description), Status: d.Status, EvidenceDueBy: minipay.Timestamp(d.EvidenceDueBy),
		Outcome: null.String(d.Outcome), ClosedBy: null.String(d.ClosedBy), RespondedAt: minipay.OptionalTimestamp(d.RespondedAt),
		ClosedAt: minipay.OptionalTimestamp(d.ClosedAt), Created: minipay.Timestamp(d.Created), Version: d.Version}
	if d.Evidence != nil {
		o.Evidence = &EvidenceObject{Text: d.Evidence.Text, Files: d.Evidence.Files}
		if o.Evidence.Files == nil {
			o.Evidence.Files = []string{}
		}
	}
	return o
}
