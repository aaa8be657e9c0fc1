package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/subscriptions"
)

// subscriptionRoutes: the app's backend makes plans and subscriptions and
// reads invoices; the host reads a subscription for its agreement sheet
// and signs it for its user; either cancels (the user always at period
// end). Test clocks answer only in a sandbox.
func (s *Server) subscriptionRoutes(r chi.Router) {
	app, host, either := s.allow(apps.KindSecret), s.allow(apps.KindHost), s.allow(apps.KindSecret, apps.KindHost)
	r.With(app).Post("/plans", s.h(s.createPlan))
	r.With(app).Get("/plans", s.h(s.listPlans))
	r.With(app).Get("/plans/{id}", s.h(s.getPlan))
	r.With(app).Post("/subscriptions", s.h(s.createSubscription))
	r.With(either).Get("/subscriptions", s.h(s.listSubscriptions))
	r.With(either).Get("/subscriptions/{id}", s.h(s.getSubscription))
	r.With(host).Post("/subscriptions/{id}/sign", s.h(s.signSubscription))
	r.With(either).Post("/subscriptions/{id}/cancel", s.h(s.cancelSubscription))
	r.With(app).Get("/invoices", s.h(s.listInvoices))
	r.With(app).Get("/invoices/{id}", s.h(s.getInvoice))
	r.With(app).Post("/test_clocks", s.h(s.createClock))
	r.With(app).Get("/test_clocks/{id}", s.h(s.getClock))
	r.With(app).Post("/test_clocks/{id}/advance", s.h(s.advanceClock))
}

func (s *Server) createPlan(r *http.Request) (int, any, error) {
	var in struct {
		Name            string `json:"name"`
		Amount          string `json:"amount"`
		Currency        string `json:"currency"`
		Option          string `json:"option"`
		Interval        string `json:"interval"`
		IntervalCount   int    `json:"interval_count"`
		TrialPeriodDays int    `json:"trial_period_days"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	p, err := s.Subscriptions.CreatePlan(r.Context(), subscriptions.PlanParams{ID: idempotentID(r, "plan"),
		RequestHash: requestHash(r), AppID: principal(r).AppID, Name: in.Name, Amount: in.Amount, Currency: in.Currency,
		Option: in.Option, Interval: in.Interval, IntervalCount: in.IntervalCount, TrialPeriodDays: in.TrialPeriodDays})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, p.Public(), nil
}

func (s *Server) getPlan(r *http.Request) (int, any, error) {
	p, err := s.Subscriptions.GetPlan(r.Context(), principal(r).AppID, chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p.Public(), nil
}

func (s *Server) listPlans(r *http.Request) (int, any, error) {
	limit, after, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	ps, more, err := s.Subscriptions.ListPlans(r.Context(), principal(r).AppID, limit, after)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, listOf(ps, more, subscriptions.Plan.Public), nil
}

func (s *Server) createSubscription(r *http.Request) (int, any, error) {
	var in struct {
		Plan              string            `json:"plan"`
		ClientReferenceID string            `json:"client_reference_id"`
		Metadata          map[string]string `json:"metadata"`
		TestClock         string            `json:"test_clock"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	sub, err := s.Subscriptions.Create(r.Context(), subscriptions.CreateParams{ID: idempotentID(r, "sub"),
		RequestHash: requestHash(r), AppID: principal(r).AppID, PlanID: in.Plan, ClientReferenceID: in.ClientReferenceID,
		Metadata: in.Metadata, TestClockID: in.TestClock})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, sub.WithSecret(), nil
}

// getSubscription: the app reads its own, with the client secret; the
// host reads any, as its agreement sheet shows it.
func (s *Server) getSubscription(r *http.Request) (int, any, error) {
	if principal(r).Kind == apps.KindHost {
		sub, err := s.Subscriptions.Get(r.Context(), "", chi.URLParam(r, "id"))
		if err != nil {
			return 0, nil, err
		}
		return s.subscriptionForHost(r, sub)
	}
	sub, err := s.Subscriptions.Get(r.Context(), principal(r).AppID, chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, sub.WithSecret(), nil
}

// listSubscriptions: the app lists its own; the host lists those its user
// (user_id, required) signed with any app, as the user's page of automatic
// renewals shows them. Apps know their users only by pseudonym, so an app
// key cannot ask by user_id.
func (s *Server) listSubscriptions(r *http.Request) (int, any, error) {
	limit, after, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	f := subscriptions.ListFilter{AppID: principal(r).AppID, Status: q.Get("status"), PlanID: q.Get("plan"),
		Limit: limit, StartingAfter: after}
	host := principal(r).Kind == apps.KindHost
	switch {
	case host && q.Get("user_id") == "":
		return 0, nil, minipay.Field("user_id", fmt.Errorf("%w: the host lists the subscriptions of one user", subscriptions.ErrMissing))
	case host:
		f.AppID, f.UserID = "", q.Get("user_id")
	case q.Has("user_id"):
		return 0, nil, minipay.Field("user_id", fmt.Errorf("%w: an app lists its own subscriptions, without user_id", errInvalidParam))
	}
	subs, more, err := s.Subscriptions.List(r.Context(), f)
	if err != nil {
		return 0, nil, err
	}
	if host {
		return s.subscriptionsForHost(r, subs, more)
	}
	return http.StatusOK, listOf(subs, more, subscriptions.Subscription.WithSecret), nil
}

// subscriptionsForHost answers with a page of subscriptions as the host
// sees them (hostSubscription).
func (s *Server) subscriptionsForHost(r *http.Request, subs []subscriptions.Subscription, more bool) (int, any, error) {
	out := make([]subscriptions.HostObject, len(subs))
	for i, sub := range subs {
		var err error
		if out[i], err = s.hostSubscription(r, sub); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusOK, newList(out, more), nil
}

func (s *Server) signSubscription(r *http.Request) (int, any, error) {
	var in struct {
		UserID       string `json:"user_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	sub, err := s.Subscriptions.Sign(r.Context(), chi.URLParam(r, "id"), in.UserID, in.ClientSecret)
	if err != nil {
		return 0, nil, err
	}
	return s.subscriptionForHost(r, sub)
}

// subscriptionForHost answers with sub as the host sees it (hostSubscription).
func (s *Server) subscriptionForHost(r *http.Request, sub subscriptions.Subscription) (int, any, error) {
	out, err := s.hostSubscription(r, sub)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// hostSubscription is sub as the host sees it: without its client secret
// and customer, with its app's name for the agreement sheet (apps are
// cached in memory, so a page of them costs no query per subscription).
func (s *Server) hostSubscription(r *http.Request, sub subscriptions.Subscription) (subscriptions.HostObject, error) {
	app, err := s.Apps.GetApp(r.Context(), sub.AppID)
	if err != nil {
		return subscriptions.HostObject{}, fmt.Errorf("app of subscription %s: %w", sub.ID, err)
	}
	return sub.ForHost(app.Name), nil
}

// cancelSubscription: the app cancels now or at period end; the host
// cancels for the user who signed, always at period end.
func (s *Server) cancelSubscription(r *http.Request) (int, any, error) {
	var in struct {
		AtPeriodEnd *bool  `json:"at_period_end"`
		UserID      string `json:"user_id"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	p := subscriptions.CancelParams{SubscriptionID: chi.URLParam(r, "id")}
	host := principal(r).Kind == apps.KindHost
	switch {
	case host && in.AtPeriodEnd != nil:
		return 0, nil, minipay.Field("at_period_end", fmt.Errorf("%w: a user's cancel is always at period end", errInvalidParam))
	case host:
		p.UserID = in.UserID
	case in.UserID != "":
		return 0, nil, minipay.Field("user_id", fmt.Errorf("%w: an app cancels as the developer, without user_id", errInvalidParam))
	default:
		p.AppID = principal(r).AppID
		p.AtPeriodEnd = in.AtPeriodEnd != nil && *in.AtPeriodEnd
	}
	sub, err := s.Subscriptions.Cancel(r.Context(), p)
	if err != nil {
		return 0, nil, err
	}
	if host {
		return s.subscriptionForHost(r, sub)
	}
	return http.StatusOK, sub.WithSecret(), nil
}

func (s *Server) getInvoice(r *http.Request) (int, any, error) {
	inv, err := s.Subscriptions.GetInvoice(r.Context(), principal(r).AppID, chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, inv.Public(), nil
}

func (s *Server) listInvoices(r *http.Request) (int, any, error) {
	limit, after, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	invs, more, err := s.Subscriptions.ListInvoices(r.Context(), subscriptions.InvoiceFilter{AppID: principal(r).AppID,
		SubscriptionID: q.Get("subscription"), Status: q.Get("status"), Limit: limit, StartingAfter: after})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, listOf(invs, more, subscriptions.Invoice.Public), nil
}

// frozenTime parses a test clock's time (RFC 3339).
func frozenTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, minipay.Field("frozen_time", fmt.Errorf("%w: frozen_time", subscriptions.ErrMissing))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, minipay.Field("frozen_time", fmt.Errorf("%w: frozen_time is an RFC 3339 time such as 2027-01-31T09:00:00Z", errInvalidParam))
	}
	return t, nil
}

// clockBody reads a test clock request's body, after refusing every test
// clock route outside a sandbox.
func (s *Server) clockBody(r *http.Request) (time.Time, error) {
	if !s.Subscriptions.Sandbox() {
		return time.Time{}, subscriptions.ErrSandboxOnly
	}
	var in struct {
		FrozenTime string `json:"frozen_time"`
	}
	if err := decode(r, &in); err != nil {
		return time.Time{}, err
	}
	return frozenTime(in.FrozenTime)
}

func (s *Server) createClock(r *http.Request) (int, any, error) {
	at, err := s.clockBody(r)
	if err != nil {
		return 0, nil, err
	}
	c, err := s.Subscriptions.CreateClock(r.Context(), idempotentID(r, "clock"), requestHash(r), principal(r).AppID, at)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, c.Public(), nil
}

func (s *Server) getClock(r *http.Request) (int, any, error) {
	c, err := s.Subscriptions.GetClock(r.Context(), principal(r).AppID, chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, c.Public(), nil
}

func (s *Server) advanceClock(r *http.Request) (int, any, error) {
	at, err := s.clockBody(r)
	if err != nil {
		return 0, nil, err
	}
	c, err := s.Subscriptions.Advance(r.Context(), principal(r).AppID, chi.URLParam(r, "id"), at)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, c.Public(), nil
}
