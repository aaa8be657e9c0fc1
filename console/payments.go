package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/shopspring/decimal"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/disputes"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/webhooks"
)

var (
	paymentKinds    = []string{payments.KindCheckoutSession, payments.KindInvoice}
	paymentStatuses = []string{payments.StatusPaid, payments.StatusPartiallyRefunded, payments.StatusRefunded}
	errFilter       = minipay.NewError(minipay.KindInvalid, "filter_invalid", "invalid filter")
)

type paymentRow struct {
	ID, Kind, Status, Amount, Refunded, Disputed, Fee, Net, Customer, Option, Reference, Captured string
}

type totalsRow struct {
	Currency                  string
	Count                     int64
	Paid, Refunded, Fees, Net string
}

type paymentsPage struct {
	Kind, Status, From, To string
	Kinds, Statuses        []string
	Totals                 []totalsRow
	Rows                   []paymentRow
	Pager                  pager
}

// paymentFilter reads the list's filters: what was paid for, status, and
// a range of days (inclusive, in the console's time zone) the payment was
// captured in.
func (s *Server) paymentFilter(r *http.Request, appID string) (payments.Filter, *paymentsPage, error) {
	q := r.URL.Query()
	pg := &paymentsPage{Kind: q.Get("kind"), Status: q.Get("status"), From: q.Get("from"), To: q.Get("to"),
		Kinds: paymentKinds, Statuses: paymentStatuses}
	f := payments.Filter{AppID: appID, Kind: pg.Kind, Status: pg.Status}
	var err error
	if f.CapturedFrom, err = s.day(pg.From, 0); err != nil {
		return f, pg, err
	}
	if f.CapturedTo, err = s.day(pg.To, 1); err != nil {
		return f, pg, err
	}
	return f, pg, nil
}

// day is the start of a YYYY-MM-DD day in the console's time zone, moved
// by shift days; "" is the zero time.
func (s *Server) day(v string, shift int) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseInLocation(time.DateOnly, v, s.Location)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q is not a date (YYYY-MM-DD)", errFilter, v)
	}
	return d.AddDate(0, 0, shift), nil
}

// payments lists the app's captured payments (sessions and invoices),
// filtered, with totals per currency.
func (s *Server) payments(w http.ResponseWriter, r *http.Request) error {
	f, pg, err := s.paymentFilter(r, who(r).AppID)
	if err != nil {
		return err
	}
	f.Limit, f.StartingAfter = paging(r, "starting_after")
	list, more, err := s.Payments.List(r.Context(), f)
	if err != nil {
		return err
	}
	totals, err := s.Payments.Sum(r.Context(), f)
	if err != nil {
		return err
	}
	for _, t := range totals {
		fees := t.Fee - t.FeeRefunded
		pg.Totals = append(pg.Totals, totalsRow{Currency: t.Currency, Count: t.Count, Paid: money(t.Currency, t.Amount),
			Refunded: money(t.Currency, t.AmountRefunded), Fees: money(t.Currency, fees),
			Net: money(t.Currency, t.Amount-t.AmountRefunded-fees)})
	}
	for _, p := range list {
		pg.Rows = append(pg.Rows, s.paymentRow(p))
	}
	last := ""
	if len(list) > 0 {
		last = list[len(list)-1].ID
	}
	pg.Pager = newPager(r, "starting_after", more, last)
	s.render(w, r, http.StatusOK, "payments", "Payments", pg)
	return nil
}

func (s *Server) paymentRow(p payments.Payment) paymentRow {
	fee := p.Fee - p.FeeRefunded
	return paymentRow{ID: p.ID, Kind: strings.TrimPrefix(p.Kind(), "checkout_"), Status: p.Status(),
		Amount: money(p.Currency, p.Amount), Refunded: money(p.Currency, p.AmountRefunded),
		Disputed: money(p.Currency, p.AmountDisputed), Fee: money(p.Currency, fee),
		Net: money(p.Currency, p.Amount-p.AmountRefunded-fee), Customer: p.Customer, Option: p.Rule.Option,
		Reference: p.ClientReferenceID, Captured: s.when(p.CapturedAt)}
}

type refundRow struct{ ID, Amount, Fee, Reason, Status, Created string }

type eventRow struct{ ID, Type, Object, Created string }

type paymentPage struct {
	paymentRow
	FeeRule, RefundUntil, AvailableOn, Remaining string
	Metadata                                     map[string]string
	Refundable, HasDispute                       bool
	Refunds                                      []refundRow
	RefundPager                                  pager
	Disputes                                     []disputeRow
	MoreDisputes                                 bool // more than paymentDisputesMax: the rest in the disputes list
	Events                                       []eventRow
	EventPager                                   pager
	Invoice                                      *invoiceFacts // an invoice's period, attempts and subscription
	Note, Error                                  string
	FormAmount, FormReason, IdempotencyKey       string // the refund form
}

var paymentNotes = map[string]string{"refunded": "Refunded:"}

// payment is one payment's page: its money, refunds, events and a refund
// form. Another app's payment, or an object never paid, is not found.
func (s *Server) payment(w http.ResponseWriter, r *http.Request) error {
	pg, err := s.paymentPage(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	pg.Note = flash(r.URL.Query(), paymentNotes)
	s.render(w, r, http.StatusOK, "payment", "Payment "+pg.ID, pg)
	return nil
}

func (s *Server) paymentPage(r *http.Request, id string) (*paymentPage, error) {
	who := who(r)
	p, err := s.Payments.Get(r.Context(), who.AppID, id)
	if err != nil {
		return nil, err
	}
	pg := &paymentPage{paymentRow: s.paymentRow(p), RefundUntil: s.when(p.RefundUntil), AvailableOn: s.when(p.AvailableOn),
		FeeRule: fmt.Sprintf("%s: %s %% and %s %s", p.Rule.OptionVersion, decimal.New(int64(p.Rule.BPS), -2).String(),
			p.Rule.Fixed, p.Currency),
		Metadata: p.Metadata, Remaining: money(p.Currency, p.Remaining()), HasDispute: p.AmountDisputed > 0,
		Refundable: p.Remaining() > 0 && !p.RefundUntil.IsZero() && time.Now().Before(p.RefundUntil), IdempotencyKey: randomToken()}
	if p.Kind() == payments.KindInvoice {
		if pg.Invoice, err = s.invoiceFacts(r, who.AppID, p.ID); err != nil {
			return nil, err
		}
	}
	limit, after := paging(r, "refunds_after")
	refunds, more, err := s.Payments.ListRefunds(r.Context(), who.AppID, p.ID, limit, after)
	if err != nil {
		return nil, err
	}
	objects := []string{p.ID}
	for _, rf := range refunds {
		pg.Refunds = append(pg.Refunds, refundRow{ID: rf.ID, Amount: money(rf.Currency, rf.Amount),
			Fee: money(rf.Currency, rf.FeeRefunded), Reason: rf.Reason, Status: rf.Status, Created: s.when(rf.Created)})
		objects = append(objects, rf.ID)
	}
	if len(refunds) > 0 {
		pg.RefundPager = newPager(r, "refunds_after", more, refunds[len(refunds)-1].ID)
	}
	ds, moreDisputes, err := s.Disputes.List(r.Context(), disputes.Filter{AppID: who.AppID, PaymentID: p.ID, Limit: paymentDisputesMax})
	if err != nil {
		return nil, err
	}
	at := time.Now()
	for _, d := range ds {
		pg.Disputes = append(pg.Disputes, s.disputeRowOf(d, at))
		objects = append(objects, d.ID)
	}
	pg.MoreDisputes = moreDisputes
	elimit, eafter := paging(r, "events_after")
	events, emore, err := s.Webhooks.ObjectEvents(r.Context(), webhooks.Owner{AppID: who.AppID, DeveloperID: who.DeveloperID},
		objects, elimit, eafter)
	if err != nil {
		return nil, err
	}
	for _, e := range events {
		pg.Events = append(pg.Events, eventRow{ID: e.ID, Type: e.Type, Object: e.ObjectID, Created: s.when(e.Created)})
	}
	if len(events) > 0 {
		pg.EventPager = newPager(r, "events_after", emore, events[len(events)-1].ID)
	}
	return pg, nil
}

// refund refunds part or all of a payment, as POST /v1/refunds does. The
// form's idempotency key makes a double submit one refund.
func (s *Server) refund(w http.ResponseWriter, r *http.Request) error {
	p, id := who(r), chi.URLParam(r, "id")
	key := r.PostFormValue("idempotency_key")
	if key == "" || len(key) > 255 {
		return fmt.Errorf("%w: the form has no idempotency key; reload the page", errForm)
	}
	rf, err := s.Payments.Refund(r.Context(), payments.RefundParams{
		ID: idempotency.DeriveID("re", "console:"+p.AppID, key), AppID: p.AppID, PaymentID: id,
		Amount: r.PostFormValue("amount"), Reason: r.PostFormValue("reason")})
	if err != nil {
		var c interface{ Kind() string }
		if !errors.As(err, &c) || errors.Is(err, payments.ErrNotFound) {
			return err
		}
		// A refused refund: the page again, with why and what was typed.
		pg, perr := s.paymentPage(r, id)
		if perr != nil {
			return perr
		}
		pg.Error, pg.FormAmount, pg.FormReason = message(r, err), r.PostFormValue("amount"), r.PostFormValue("reason")
		s.render(w, r, statusOf(err), "payment", "Payment "+pg.ID, pg)
		return nil
	}
	http.Redirect(w, r, "/console/payments/"+url.PathEscape(id)+"?done=refunded&id="+url.QueryEscape(rf.ID), http.StatusSeeOther)
	return nil
}
