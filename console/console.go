// Package console is minipay's web pages for people: developers see their
// app's payments, subscriptions, webhooks and balance; the platform's finance and
// operators see settlement, payouts, the ledger and the webhook backlog.
//
// Pages are rendered on the server with html/template and work without
// JavaScript; the one script draws the settlement chart. Every handler
// asks the domain packages (the same functions the API calls), fills a
// plain struct and renders it; forms post back to handlers that call the
// same domain functions the API's routes call. The package writes no SQL.
//
// Sign-in takes an API key and exchanges it for a session (package apps):
// the browser holds only a random session id in an HttpOnly, SameSite=Strict
// cookie. Every form carries a CSRF token derived from that id.
package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/catalog"
	"github.com/minipay/minipay/disputes"
	"github.com/minipay/minipay/internal/ratelimit"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/settlement"
	"github.com/minipay/minipay/subscriptions"
	"github.com/minipay/minipay/webhooks"
)

// Server serves the console. Set the fields, then call Handler.
type Server struct {
	Apps     *apps.Service
	Catalog  *catalog.Catalog
	Payments *payments.Service
	Disputes *disputes.Service
	// Subscriptions serves the app's plans, subscriptions and invoices.
	Subscriptions *subscriptions.Service
	Webhooks      *webhooks.Service
	Settlement    *settlement.Service
	Ledger        *ledger.Ledger
	Log           *slog.Logger
	// Location is the time zone pages show times in and in which days
	// begin (the settlement time zone); UTC when nil.
	Location *time.Location
	// TrustProxy says the server runs behind a reverse proxy that sets
	// X-Forwarded-Proto and X-Forwarded-For: then a request the proxy
	// received over https gets Secure cookies, and sign-in attempts are
	// counted per client address as the proxy saw it. Without it only a
	// request that reached this process over TLS gets Secure cookies.
	TrustProxy bool

	signIns ratelimit.Set
}

// Sign-in attempts allowed per client address: a burst of signInBurst,
// refilling at signInPerSecond (ten a minute).
const (
	signInBurst     = 10
	signInPerSecond = 10.0 / 60
)

// Handler returns the console's routes, all under /console/.
func (s *Server) Handler() http.Handler {
	if s.Location == nil {
		s.Location = time.UTC
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	r := chi.NewRouter()
	r.Use(s.headers, s.recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { s.fail(w, r, errPageNotFound) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) { s.fail(w, r, errMethod) })
	r.Get("/console/static/{name}", serveAsset)
	r.Get("/console/login", s.page(s.loginForm))
	r.Post("/console/login", s.page(s.login))
	r.Group(func(r chi.Router) {
		r.Use(s.signedIn)
		r.Post("/console/logout", s.page(s.logout))
		r.Get("/console/", s.home)
		r.Group(func(r chi.Router) { // both: an app its own, the admin every app's
			r.Use(s.allow(apps.KindSecret, apps.KindAdmin))
			r.Get("/console/disputes", s.page(s.disputeList))
			r.Get("/console/disputes/{id}", s.page(s.dispute))
		})
		r.Group(func(r chi.Router) { // a mini-app's developer
			r.Use(s.allow(apps.KindSecret))
			r.Get("/console/payments", s.page(s.payments))
			r.Get("/console/payments/{id}", s.page(s.payment))
			r.Post("/console/payments/{id}/refunds", s.page(s.refund))
			r.Get("/console/subscriptions", s.page(s.subscriptionList))
			r.Get("/console/subscriptions/{id}", s.page(s.subscription))
			r.Post("/console/subscriptions/{id}/cancel", s.page(s.cancelSubscription))
			r.Get("/console/plans", s.page(s.plans))
			r.Post("/console/plans", s.page(s.createPlan))
			r.Post("/console/disputes/{id}/respond", s.page(s.respond))
			r.Get("/console/webhooks", s.page(s.endpoints))
			r.Get("/console/webhooks/{id}", s.page(s.endpoint))
			r.Post("/console/webhooks/{id}/rotate_secret", s.page(s.rotateSecret))
			r.Post("/console/webhooks/{id}/redeliver", s.page(s.redeliver))
			r.Get("/console/balance", s.page(s.balance))
		})
		r.Group(func(r chi.Router) { // the platform's finance and operators
			r.Use(s.allow(apps.KindAdmin))
			r.Get("/console/developers", s.page(s.developers))
			r.Post("/console/developers", s.page(s.createDeveloper))
			r.Get("/console/developers/{id}", s.page(s.developer))
			r.Post("/console/apps", s.page(s.createApp))
			r.Get("/console/apps/{id}", s.page(s.app))
			r.Post("/console/apps/{id}/roll_key", s.page(s.rollKey))
			r.Post("/console/apps/{id}/grants", s.page(s.updateGrants))
			r.Get("/console/settlement_runs", s.page(s.runs))
			r.Post("/console/settlement_runs", s.page(s.createRun))
			r.Get("/console/settlement_runs/{id}", s.page(s.run))
			r.Get("/console/settlement_runs/{id}/report.csv", s.report)
			r.Get("/console/payouts", s.page(s.payouts))
			r.Post("/console/payouts/{id}/mark_paid", s.page(s.markPaid))
			r.Post("/console/disputes/{id}/close", s.page(s.closeDispute))
			r.Get("/console/ledger", s.page(s.trialBalance))
			r.Get("/console/webhook_backlog", s.page(s.backlog))
		})
	})
	return r
}

// home sends each kind of key to its first page.
func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	to := "/console/settlement_runs"
	if who(r).Kind == apps.KindSecret {
		to = "/console/payments"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// Errors of the console itself.
var (
	errPageNotFound = minipay.NewError(minipay.KindNotFound, "page_not_found", "There is no such page.")
	errMethod       = minipay.NewError(minipay.KindInvalid, "method_not_allowed", "This page does not take that method.")
	errWrongKind    = minipay.NewError(minipay.KindForbidden, "forbidden", "This page is not for the key you signed in with.")
	errCSRF         = minipay.NewError(minipay.KindForbidden, "csrf_token_invalid", "The form has expired or did not come from this console. Go back, reload the page and try again.")
	errSignedOut    = minipay.NewError(minipay.KindForbidden, "signed_out", "You are not signed in (or your session ended). Sign in and try again.")
	errWrongKey     = minipay.NewError(minipay.KindUnauthenticated, "invalid_key", "That key is not valid.")
	errTooMany      = minipay.NewError(minipay.KindRateLimited, "rate_limited", "Too many sign-in attempts. Wait a minute and try again.")
	errForm         = minipay.NewError(minipay.KindInvalid, "form_invalid", "The form could not be read.")
)

// headers sets what every console response carries: no caching (pages
// show money and, once, secrets), no framing, and a content security
// policy that allows only the console's own script and styles.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a logged 500 page.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Log.Error("console panic", "path", r.URL.Path, "panic", v)
				s.fail(w, r, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// handlerFunc is a page handler: it renders its page or returns an error,
// which fail turns into an error page.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) page(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.fail(w, r, err)
		}
	}
}

// statusOf is the HTTP status for err: its kind's, or 500 for a fault.
func statusOf(err error) int {
	var c interface{ Kind() string }
	if errors.As(err, &c) {
		if st := minipay.HTTPStatus(c.Kind()); st != 0 {
			return st
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// message is what a person is told about err: the domain's explanation,
// as the API tells it (minipay.PublicMessage: never the internal context,
// nor the ledger's names to an app), or, for a fault, that it was ours.
func message(r *http.Request, err error) string {
	msg, _, ok := minipay.PublicMessage(err, who(r).Kind == apps.KindAdmin)
	if !ok || statusOf(err) >= 500 {
		return "Something went wrong on our side. Try again in a moment."
	}
	return msg
}

// fail renders the error page for err.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status >= 500 {
		s.Log.Error("console", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "60")
	}
	s.render(w, r, status, "error", "Error", &errorPage{Status: status, Message: message(r, err)})
}

type errorPage struct {
	Status  int
	Message string
}

// Beside returns what a minipay server answers: the console under
// /console/, the root redirected to it, and everything else from next
// (the API).
func (s *Server) Beside(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/console/", s.Handler())
	mux.Handle("/console", http.RedirectHandler("/console/", http.StatusMovedPermanently))
	mux.Handle("/{$}", http.RedirectHandler("/console/", http.StatusFound))
	mux.Handle("/", next)
	return mux
}
