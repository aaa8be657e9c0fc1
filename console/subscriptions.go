package console

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/subscriptions"
	"github.com/minipay/minipay/webhooks"
)

var (
	subStatuses = []string{subscriptions.StatusIncomplete, subscriptions.StatusIncompleteExpired, subscriptions.StatusTrialing,
		subscriptions.StatusActive, subscriptions.StatusPastDue, subscriptions.StatusCanceled}
	planIntervals = []string{subscriptions.IntervalDay, subscriptions.IntervalWeek, subscriptions.IntervalMonth, subscriptions.IntervalYear}
	errCancelWhen = minipay.NewError(minipay.KindInvalid, "form_invalid", "Choose when to cancel: now, or at the end of the period.")
)

type subRow struct {
	ID, Plan, PlanName, Price, Status, Customer, Reference, PeriodEnd, Created string
	CancelAtPeriodEnd                                                          bool
}

type subsPage struct {
	Status   string
	Plan     string // only this plan's subscriptions; "" for all
	Statuses []string
	Rows     []subRow
	Pager    pager
}

// price is a plan's amount per interval: "30.00 CNY / month", "90.00 CNY / 3 months".
func price(p subscriptions.Plan) string {
	every := p.Interval
	if p.IntervalCount > 1 {
		every = strconv.Itoa(p.IntervalCount) + " " + p.Interval + "s"
	}
	return money(p.Currency, p.Amount) + " / " + every
}

func (s *Server) subRow(sub subscriptions.Subscription) subRow {
	return subRow{ID: sub.ID, Plan: sub.Plan.ID, PlanName: sub.Plan.Name, Price: price(sub.Plan), Status: sub.Status,
		Customer: sub.Customer, Reference: sub.ClientReferenceID, PeriodEnd: s.when(sub.PeriodEnd),
		Created: s.when(sub.Created), CancelAtPeriodEnd: sub.CancelAtPeriodEnd}
}

// subscriptionList pages through the app's subscriptions, newest first,
// as GET /v1/subscriptions does.
func (s *Server) subscriptionList(w http.ResponseWriter, r *http.Request) error {
	pg := &subsPage{Status: r.URL.Query().Get("status"), Plan: r.URL.Query().Get("plan"), Statuses: subStatuses}
	if pg.Status != "" && !slices.Contains(subStatuses, pg.Status) {
		return fmt.Errorf("%w: %q is not a subscription status", errFilter, pg.Status)
	}
	limit, after := paging(r, "starting_after")
	list, more, err := s.Subscriptions.List(r.Context(), subscriptions.ListFilter{AppID: who(r).AppID, Status: pg.Status,
		PlanID: pg.Plan, Limit: limit, StartingAfter: after})
	if err != nil {
		return err
	}
	for _, sub := range list {
		pg.Rows = append(pg.Rows, s.subRow(sub))
	}
	last := ""
	if len(list) > 0 {
		last = list[len(list)-1].ID
	}
	pg.Pager = newPager(r, "starting_after", more, last)
	s.render(w, r, http.StatusOK, "subscriptions", "Subscriptions", pg)
	return nil
}

type invoiceRow struct {
	ID, Amount, Refunded, Status, PeriodStart, PeriodEnd, NextAttempt, Paid string
	Attempts                                                                int
	Payment                                                                 bool // paid: it has a payment page
}

type subPage struct {
	subRow
	TrialEnd, PeriodStart, CanceledAt, CancellationReason, LatestInvoice, TestClock, ExpiresAt string
	Metadata                                                                                   map[string]string
	Cancelable, Ended                                                                          bool
	Invoices                                                                                   []invoiceRow
	InvoicePager                                                                               pager
	Events                                                                                     []eventRow
	EventPager                                                                                 pager
	Note, Error                                                                                string
}

var subNotes = map[string]string{"canceled": "Canceled.", "cancel_at_period_end": "Set to cancel at the end of the period."}

// subscription is one subscription's page: its plan, periods, invoices,
// events and a cancel form. Another app's is not found.
func (s *Server) subscription(w http.ResponseWriter, r *http.Request) error {
	pg, err := s.subPage(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	pg.Note = flash(r.URL.Query(), subNotes)
	s.render(w, r, http.StatusOK, "subscription", "Subscription "+pg.ID, pg)
	return nil
}

func (s *Server) subPage(r *http.Request, id string) (*subPage, error) {
	who := who(r)
	sub, err := s.Subscriptions.Get(r.Context(), who.AppID, id)
	if err != nil {
		return nil, err
	}
	ended := sub.Status == subscriptions.StatusCanceled || sub.Status == subscriptions.StatusIncompleteExpired
	pg := &subPage{subRow: s.subRow(sub), TrialEnd: s.when(sub.TrialEnd), PeriodStart: s.when(sub.PeriodStart),
		CanceledAt: s.when(sub.CanceledAt), CancellationReason: sub.CancellationReason, LatestInvoice: sub.LatestInvoice,
		TestClock: sub.TestClockID, Metadata: sub.Metadata, Ended: ended, Cancelable: !ended}
	if sub.Status == subscriptions.StatusIncomplete {
		pg.ExpiresAt = s.when(sub.ExpiresAt)
	}
	limit, after := paging(r, "invoices_after")
	invs, more, err := s.Subscriptions.ListInvoices(r.Context(), subscriptions.InvoiceFilter{AppID: who.AppID,
		SubscriptionID: sub.ID, Limit: limit, StartingAfter: after})
	if err != nil {
		return nil, err
	}
	objects := []string{sub.ID}
	for _, inv := range invs {
		pg.Invoices = append(pg.Invoices, s.invoiceRow(inv))
		objects = append(objects, inv.ID)
	}
	if len(invs) > 0 {
		pg.InvoicePager = newPager(r, "invoices_after", more, invs[len(invs)-1].ID)
	}
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

func (s *Server) invoiceRow(inv subscriptions.Invoice) invoiceRow {
	return invoiceRow{ID: inv.ID, Amount: money(inv.Currency, inv.Amount), Refunded: money(inv.Currency, inv.AmountRefunded),
		Status: inv.Status, PeriodStart: s.when(inv.PeriodStart), PeriodEnd: s.when(inv.PeriodEnd),
		NextAttempt: s.when(inv.NextPaymentAttempt), Paid: s.when(inv.PaidAt), Attempts: inv.AttemptCount,
		Payment: inv.Status == subscriptions.InvoicePaid}
}

// cancelSubscription cancels now or at the end of the period, as the app's
// POST /v1/subscriptions/{id}/cancel does (field when: now, period_end).
func (s *Server) cancelSubscription(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	p := subscriptions.CancelParams{AppID: who(r).AppID, SubscriptionID: id}
	switch r.PostFormValue("when") {
	case "now":
	case "period_end":
		p.AtPeriodEnd = true
	default:
		// Another app learns nothing from a bad form: its own 404 first.
		if _, err := s.Subscriptions.Get(r.Context(), p.AppID, id); err != nil {
			return err
		}
		return errCancelWhen
	}
	sub, err := s.Subscriptions.Cancel(r.Context(), p)
	if err != nil {
		var c interface{ Kind() string }
		if !errors.As(err, &c) || errors.Is(err, subscriptions.ErrSubscriptionNotFound) {
			return err
		}
		// A refused cancel (already canceled): the page again, saying why.
		pg, perr := s.subPage(r, id)
		if perr != nil {
			return perr
		}
		pg.Error = message(r, err)
		s.render(w, r, statusOf(err), "subscription", "Subscription "+pg.ID, pg)
		return nil
	}
	done := "canceled"
	if sub.Status != subscriptions.StatusCanceled {
		done = "cancel_at_period_end"
	}
	http.Redirect(w, r, "/console/subscriptions/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	return nil
}

type planRow struct {
	ID, Name, Price, Option, Created string
	TrialDays                        int
	Active                           bool
}

type plansPage struct {
	Rows                           []planRow
	Pager                          pager
	Intervals, Options, Currencies []string
	Error, Note, IdempotencyKey    string
	Form                           map[string]string // what was typed, after a refusal
}

var planNotes = map[string]string{"created": "Created plan"}

// plans lists the app's plans, with a form for a new one.
func (s *Server) plans(w http.ResponseWriter, r *http.Request) error {
	pg, err := s.plansPage(r)
	if err != nil {
		return err
	}
	pg.Note = flash(r.URL.Query(), planNotes)
	s.render(w, r, http.StatusOK, "plans", "Plans", pg)
	return nil
}

func (s *Server) plansPage(r *http.Request) (*plansPage, error) {
	who := who(r)
	app, err := s.Apps.GetApp(r.Context(), who.AppID)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", who.AppID, err)
	}
	pg := &plansPage{Intervals: planIntervals, Options: app.Options, Currencies: app.Currencies,
		IdempotencyKey: randomToken(), Form: map[string]string{"interval": subscriptions.IntervalMonth, "interval_count": "1"}}
	limit, after := paging(r, "starting_after")
	list, more, err := s.Subscriptions.ListPlans(r.Context(), who.AppID, limit, after)
	if err != nil {
		return nil, err
	}
	for _, p := range list {
		pg.Rows = append(pg.Rows, planRow{ID: p.ID, Name: p.Name, Price: price(p), Option: p.Option,
			Created: s.when(p.Created), TrialDays: p.TrialPeriodDays, Active: p.Active})
	}
	last := ""
	if len(list) > 0 {
		last = list[len(list)-1].ID
	}
	pg.Pager = newPager(r, "starting_after", more, last)
	return pg, nil
}

var planFields = []string{"name", "amount", "currency", "option", "interval", "interval_count", "trial_period_days"}

// createPlan makes a plan as POST /v1/plans does. The form's idempotency
// key makes a double submit one plan; the same key with other fields is
// refused, as the API refuses it.
func (s *Server) createPlan(w http.ResponseWriter, r *http.Request) error {
	appID, key := who(r).AppID, r.PostFormValue("idempotency_key")
	if key == "" || len(key) > 255 {
		return fmt.Errorf("%w: the form has no idempotency key; reload the page", errForm)
	}
	form := map[string]string{}
	h := sha256.New()
	for _, f := range planFields {
		form[f] = strings.TrimSpace(r.PostFormValue(f))
		fmt.Fprintf(h, "%s=%q\n", f, form[f])
	}
	count, err := formInt(form["interval_count"], "interval_count", 1)
	if err == nil {
		var trial int
		trial, err = formInt(form["trial_period_days"], "trial_period_days", 0)
		if err == nil {
			var p subscriptions.Plan
			p, err = s.Subscriptions.CreatePlan(r.Context(), subscriptions.PlanParams{
				ID: idempotency.DeriveID("plan", "console:"+appID, key), RequestHash: h.Sum(nil), AppID: appID,
				Name: form["name"], Amount: form["amount"], Currency: form["currency"], Option: form["option"],
				Interval: form["interval"], IntervalCount: count, TrialPeriodDays: trial})
			if err == nil {
				http.Redirect(w, r, "/console/plans?done=created&id="+url.QueryEscape(p.ID), http.StatusSeeOther)
				return nil
			}
		}
	}
	var c interface{ Kind() string }
	if !errors.As(err, &c) {
		return err
	}
	// A refused plan: the page again, with why and what was typed.
	pg, perr := s.plansPage(r)
	if perr != nil {
		return perr
	}
	pg.Error, pg.Form, pg.IdempotencyKey = message(r, err), form, key
	s.render(w, r, statusOf(err), "plans", "Plans", pg)
	return nil
}

// formInt reads a whole number field; "" is def.
func formInt(v, field string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, minipay.Field(field, fmt.Errorf("%w: %s is a whole number", subscriptions.ErrInvalid, field))
	}
	return n, nil
}

// invoiceFacts is what an invoice's payment page adds: its period, its
// attempts and its subscription.
type invoiceFacts struct {
	Subscription, PeriodStart, PeriodEnd, Status string
	Attempts                                     int
}

func (s *Server) invoiceFacts(r *http.Request, appID, id string) (*invoiceFacts, error) {
	inv, err := s.Subscriptions.GetInvoice(r.Context(), appID, id)
	if err != nil {
		return nil, err
	}
	return &invoiceFacts{Subscription: inv.SubscriptionID, PeriodStart: s.when(inv.PeriodStart),
		PeriodEnd: s.when(inv.PeriodEnd), Status: inv.Status, Attempts: inv.AttemptCount}, nil
}
