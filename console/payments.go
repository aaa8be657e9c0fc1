package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/checkout"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/webhooks"
)

var (
	sessionStatuses = []string{checkout.StatusOpen, checkout.StatusComplete, checkout.StatusExpired, checkout.StatusCanceled}
	paymentStatuses = []string{checkout.PaymentUnpaid, checkout.PaymentPaid, checkout.PaymentPartiallyRefunded, checkout.PaymentRefunded}
	errFilter       = minipay.NewError(minipay.KindInvalid, "filter_invalid", "invalid filter")
)

type paymentRow struct {
	ID, Status, PaymentStatus, Amount, Refunded, Fee, Customer, Option, Reference, Created string
}

type totalsRow struct {
	Currency                  string
	Count                     int64
	Paid, Refunded, Fees, Net string
}

type paymentsPage struct {
	Status, PaymentStatus, From, To  string
	SessionStatuses, PaymentStatuses []string
	Totals                           []totalsRow
	Rows                             []paymentRow
	Pager                            pager
}

// paymentFilter reads the list's filters: statuses, and a range of days
// (inclusive, in the console's time zone).
func (s *Server) paymentFilter(r *http.Request, appID string) (checkout.SessionFilter, *paymentsPage, error) {
	q := r.URL.Query()
	pg := &paymentsPage{Status: q.Get("status"), PaymentStatus: q.Get("payment_status"), From: q.Get("from"), To: q.Get("to"),
		SessionStatuses: sessionStatuses, PaymentStatuses: paymentStatuses}
	f := checkout.SessionFilter{AppID: appID, Status: pg.Status, PaymentStatus: pg.PaymentStatus}
	if f.Status != "" && !slices.Contains(sessionStatuses, f.Status) {
		return f, pg, fmt.Errorf("%w: status %q", errFilter, f.Status)
	}
	if f.PaymentStatus != "" && !slices.Contains(paymentStatuses, f.PaymentStatus) {
		return f, pg, fmt.Errorf("%w: payment status %q", errFilter, f.PaymentStatus)
	}
	var err error
	if f.CreatedGTE, err = s.day(pg.From, 0); err != nil {
		return f, pg, err
	}
	if f.CreatedLT, err = s.day(pg.To, 1); err != nil {
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

// payments lists the app's payments, filtered, with totals per currency.
func (s *Server) payments(w http.ResponseWriter, r *http.Request) error {
	f, pg, err := s.paymentFilter(r, who(r).AppID)
	if err != nil {
		return err
	}
	limit, after := paging(r, "starting_after")
	rows, more, err := s.Checkout.FindSessions(r.Context(), f, limit, after)
	if err != nil {
		return err
	}
	totals, err := s.Checkout.TotalSessions(r.Context(), f)
	if err != nil {
		return err
	}
	for _, t := range totals {
		pg.Totals = append(pg.Totals, totalsRow{Currency: t.Currency, Count: t.Count, Paid: money(t.Currency, t.Paid),
			Refunded: money(t.Currency, t.Refunded), Fees: money(t.Currency, t.Fees), Net: money(t.Currency, t.Net)})
	}
	for _, sess := range rows {
		pg.Rows = append(pg.Rows, s.paymentRow(sess))
	}
	last := ""
	if len(rows) > 0 {
		last = rows[len(rows)-1].ID
	}
	pg.Pager = newPager(r, "starting_after", more, last)
	s.render(w, r, http.StatusOK, "payments", "Payments", pg)
	return nil
}

func (s *Server) paymentRow(sess checkout.Session) paymentRow {
	row := paymentRow{ID: sess.ID, Status: sess.Status, PaymentStatus: sess.PaymentStatus,
		Amount: money(sess.Currency, sess.AmountTotal), Refunded: money(sess.Currency, sess.AmountRefunded), Fee: "—",
		Customer: sess.Customer, Option: sess.Option, Reference: sess.ClientReferenceID, Created: s.when(sess.Created)}
	if sess.Fee != nil {
		row.Fee = money(sess.Currency, *sess.Fee-sess.FeeRefunded)
	}
	return row
}

type refundRow struct{ ID, Amount, Fee, Reason, Status, Created string }

type eventRow struct{ ID, Type, Object, Created string }

type paymentPage struct {
	paymentRow
	CaptureMethod, Completed, RefundUntil, AvailableOn, Remaining string
	Metadata                                                      map[string]string
	Refundable                                                    bool
	Refunds                                                       []refundRow
	RefundPager                                                   pager
	Events                                                        []eventRow
	EventPager                                                    pager
	Note, Error                                                   string
	Amount, Reason, IdempotencyKey                                string // the refund form
}

var paymentNotes = map[string]string{"refunded": "Refunded:"}

// payment is one payment's page: its state, refunds, events and a refund
// form. Another app's payment is not found.
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
	p := who(r)
	sess, err := s.Checkout.GetSession(r.Context(), p.AppID, id)
	if err != nil {
		return nil, err
	}
	pg := &paymentPage{paymentRow: s.paymentRow(sess), CaptureMethod: sess.CaptureMethod, Completed: s.when(sess.CompletedAt),
		RefundUntil: s.when(sess.RefundUntil), AvailableOn: s.when(sess.AvailableOn), Metadata: sess.Metadata,
		Remaining:      money(sess.Currency, sess.AmountTotal-sess.AmountRefunded),
		IdempotencyKey: randomToken()}
	pg.Refundable = (sess.PaymentStatus == checkout.PaymentPaid || sess.PaymentStatus == checkout.PaymentPartiallyRefunded) &&
		time.Now().Before(sess.RefundUntil)
	limit, after := paging(r, "refunds_after")
	refunds, more, err := s.Checkout.ListRefunds(r.Context(), p.AppID, sess.ID, limit, after)
	if err != nil {
		return nil, err
	}
	objects := []string{sess.ID}
	for _, rf := range refunds {
		pg.Refunds = append(pg.Refunds, refundRow{ID: rf.ID, Amount: money(rf.Currency, rf.Amount),
			Fee: money(rf.Currency, rf.FeeRefunded), Reason: rf.Reason, Status: rf.Status, Created: s.when(rf.Created)})
		objects = append(objects, rf.ID)
	}
	if len(refunds) > 0 {
		pg.RefundPager = newPager(r, "refunds_after", more, refunds[len(refunds)-1].ID)
	}
	elimit, eafter := paging(r, "events_after")
	events, emore, err := s.Webhooks.ObjectEvents(r.Context(), webhooks.Owner{AppID: p.AppID, DeveloperID: p.DeveloperID},
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
	rf, err := s.Checkout.CreateRefund(r.Context(), checkout.RefundParams{
		ID: idempotency.DeriveID("re", "console:"+p.AppID, key), AppID: p.AppID, SessionID: id,
		Amount: r.PostFormValue("amount"), Reason: r.PostFormValue("reason")})
	if err != nil {
		var c interface{ Kind() string }
		if !errors.As(err, &c) || errors.Is(err, checkout.ErrSessionNotFound) {
			return err
		}
		// A refused refund: the page again, with why and what was typed.
		pg, perr := s.paymentPage(r, id)
		if perr != nil {
			return perr
		}
		pg.Error, pg.Amount, pg.Reason = message(err), r.PostFormValue("amount"), r.PostFormValue("reason")
		s.render(w, r, statusOf(err), "payment", "Payment "+pg.ID, pg)
		return nil
	}
	http.Redirect(w, r, "/console/payments/"+url.PathEscape(id)+"?done=refunded&id="+url.QueryEscape(rf.ID), http.StatusSeeOther)
	return nil
}
