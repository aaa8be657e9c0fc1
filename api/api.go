// Package api is minipay's HTTP API: routing, authentication, idempotency
// keys, the error format, pagination and JSON. It is thin: every handler
// decodes, calls a domain package, and encodes. It writes no SQL.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/checkout"
	"github.com/minipay/minipay/disputes"
	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/metrics"
	"github.com/minipay/minipay/internal/ratelimit"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/sandbox"
	"github.com/minipay/minipay/settlement"
	"github.com/minipay/minipay/subscriptions"
	"github.com/minipay/minipay/webhooks"
)

// Server serves the API. Set every field, then call Handler.
type Server struct {
	Ledger   *ledger.Ledger
	Apps     *apps.Service
	Checkout *checkout.Service
	Payments *payments.Service
	Disputes *disputes.Service
	// Subscriptions: plans, subscriptions, invoices and test clocks.
	Subscriptions *subscriptions.Service
	Webhooks      *webhooks.Service
	Settlement    *settlement.Service
	// Sandbox runs the test helpers, which answer 403 sandbox_only unless
	// IsSandbox (MINIPAY_SANDBOX) is set.
	Sandbox   *sandbox.Service
	IsSandbox bool
	Idem      *idempotency.Store
	// RateLimit is the requests per second allowed to each key (a burst of
	// twice as many); 0 turns rate limiting off.
	RateLimit float64
	Metrics   *metrics.Metrics
	Log       *slog.Logger
	// Ready reports whether the server can take traffic (database reachable,
	// schema current); /readyz answers 503 when it returns an error.
	Ready func(context.Context) error
	// OpenAPI is the document served at /openapi.yaml.
	OpenAPI []byte

	draining atomic.Bool
	limiters ratelimit.Set
}

// Drain makes /readyz fail, so load balancers stop sending traffic while
// in-flight requests finish.
func (s *Server) Drain() { s.draining.Store(true) }

// Handler returns the router.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.requestID, s.observe, s.recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, errNotFound) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, errMethod) })

	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.readyz)
	r.Get("/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(s.OpenAPI)
	})

	r.Route("/v1", func(r chi.Router) {
		r.Use(s.authenticate, s.rateLimit, s.readBody, s.idempotent)
		r.Group(func(r chi.Router) { // the platform's operators and finance
			r.Use(s.allow(apps.KindAdmin))
			s.ledgerRoutes(r)
			s.adminAppRoutes(r)
			// (settlement admin routes)
			s.settlementAdminRoutes(r)
		})
		r.Group(func(r chi.Router) { // the super-app's wallet service
			r.Use(s.allow(apps.KindHost))
			s.hostRoutes(r)
		})
		r.Group(func(r chi.Router) { // a mini-app's backend
			r.Use(s.allow(apps.KindSecret))
			s.checkoutRoutes(r)
			s.webhookRoutes(r)
			s.developerToolRoutes(r)
			// (settlement app routes)
		})
		r.Group(func(r chi.Router) { // a mini-app's backend or the host, each with its own view
			r.Use(s.allow(apps.KindHost, apps.KindSecret))
			s.sessionReadRoutes(r)
		})
		r.Group(func(r chi.Router) { // any key
			r.Use(s.allow(apps.KindAdmin, apps.KindHost, apps.KindSecret))
			s.catalogRoutes(r)
			// (settlement any-key routes)
			s.payoutRoutes(r)
			s.disputeRoutes(r)
			s.subscriptionRoutes(r)
		})
	})
	return r
}

// MetricsHandler serves /metrics (Prometheus text format). It belongs on a
// listener of its own (MINIPAY_METRICS_ADDR) that only the scraper
// reaches: the counts of every route and the ledger's volumes are not for
// the API's callers, so the API's Handler does not serve them.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{}))
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.writeError(w, r, errShuttingDown)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		s.Log.Warn("not ready", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type requestIDKey struct{}

func requestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}

// requestID gives every request an id, returned in the Request-Id header
// and in errors, and logged.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := id.New("req")
		w.Header().Set("Request-Id", rid)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, rid)))
	})
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// observe logs one line per request and records its metrics by route pattern.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		s.Metrics.HTTPRequests.WithLabelValues(route, r.Method, strconv.Itoa(sw.status)).Inc()
		s.Metrics.HTTPDuration.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
		if route == "/healthz" || route == "/readyz" {
			return
		}
		// Typed attributes in an array on the stack: the line is written
		// for every request, and key-value pairs of type any cost an
		// allocation each and a parse.
		var buf [8]slog.Attr
		attrs := append(buf[:0], slog.String("request_id", requestID(r.Context())), slog.String("method", r.Method),
			slog.String("route", route), slog.Int("status", sw.status),
			slog.Float64("ms", float64(elapsed.Microseconds())/1000))
		if p, ok := principalFrom(r.Context()); ok {
			attrs = append(attrs, slog.String("key_kind", string(p.Kind)), slog.String("key", p.KeyID))
			if p.AppID != "" {
				attrs = append(attrs, slog.String("app", p.AppID))
			}
		}
		s.Log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// recoverer turns a panic into a logged 500 instead of a dropped connection.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type principalKey struct{}

func principalFrom(ctx context.Context) (apps.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(apps.Principal)
	return p, ok
}

func principal(r *http.Request) apps.Principal {
	p, _ := principalFrom(r.Context())
	return p
}

// authenticate requires a valid bearer key.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || key == "" {
			s.writeError(w, r, errNoKey)
			return
		}
		p, err := s.Apps.Authenticate(r.Context(), strings.TrimSpace(key))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// allow admits only the given kinds of key.
func (s *Server) allow(kinds ...apps.KeyKind) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := principal(r)
			for _, k := range kinds {
				if p.Kind == k {
					next.ServeHTTP(w, r)
					return
				}
			}
			s.writeError(w, r, errWrongKind)
		})
	}
}

// handler adapts a function returning (status, body, error) to http.Handler.
type handler func(r *http.Request) (int, any, error)

func (s *Server) h(fn handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, body, err := fn(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, status, body)
	}
}
