// Package apitest runs the real API for tests of the API and of its
// clients: every service wired as serve wires them, over a test database,
// behind a real HTTP server.
package apitest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/api"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/checkout"
	"github.com/minipay/minipay/console"
	"github.com/minipay/minipay/disputes"
	"github.com/minipay/minipay/docs"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/metrics"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/sandbox"
	"github.com/minipay/minipay/settlement"
	"github.com/minipay/minipay/subscriptions"
	"github.com/minipay/minipay/webhooks"
)

// Secret is the server secret of test servers (pseudonyms, webhook
// secrets at rest).
var Secret = []byte("test secret, 32 bytes long......")

// Options are what tests vary.
type Options struct {
	RateLimit float64                 // requests per second per key; 0 is off
	Keys      map[apps.KeyKind]string // operator keys to create
	Sandbox   bool                    // test helpers allowed (MINIPAY_SANDBOX)
}

// Server is a running API and its services.
type Server struct {
	// URL serves what serve serves: the API, and the console under
	// /console/.
	URL string
	// Handler is the API's router alone.
	Handler http.Handler
	// Metrics is what the metrics listener serves.
	Metrics  http.Handler
	Apps     *apps.Service
	Ledger   *ledger.Ledger
	Checkout *checkout.Service
	Payments *payments.Service
	Disputes *disputes.Service
	// Subscriptions' renewals are not run in the background: a test runs
	// RenewDue, or advances a test clock.
	Subscriptions *subscriptions.Service
	Webhooks      *webhooks.Service
	Settlement    *settlement.Service
	Console       *console.Server
}

// Start builds the services over pool and serves them until the test ends.
// Background loops (the webhook dispatcher, sweepers) are not started; a
// test runs those it needs.
func Start(tb testing.TB, pool *pgxpool.Pool, o Options) *Server {
	tb.Helper()
	s := &Server{Apps: apps.New(pool, Secret), Ledger: ledger.New(pool, ledger.Options{})}
	s.Payments = payments.New(pool, s.Ledger)
	s.Checkout = checkout.New(pool, s.Ledger, s.Apps, s.Payments, checkout.Options{})
	s.Disputes = disputes.New(pool, s.Ledger, s.Payments, disputes.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s.Subscriptions = subscriptions.New(pool, s.Ledger, s.Apps, s.Payments,
		subscriptions.Options{Catalog: s.Checkout.Catalog(), Log: log, Sandbox: o.Sandbox})
	s.Webhooks = webhooks.New(pool, webhooks.Options{Secret: Secret, AllowPrivate: true, Log: log})
	s.Settlement = settlement.New(pool, s.Ledger)
	srv := &api.Server{
		Ledger: s.Ledger, Apps: s.Apps, Checkout: s.Checkout, Payments: s.Payments, Disputes: s.Disputes,
		Subscriptions: s.Subscriptions, Settlement: s.Settlement,
		Sandbox: &sandbox.Service{Apps: s.Apps, Checkout: s.Checkout, Payments: s.Payments, Disputes: s.Disputes,
			Settlement: s.Settlement, Webhooks: s.Webhooks, Subscriptions: s.Subscriptions},
		IsSandbox: o.Sandbox,
		Webhooks:  s.Webhooks, Idem: idempotency.New(pool, Secret), Metrics: metrics.New(), RateLimit: o.RateLimit,
		Log:     log,
		Ready:   func(ctx context.Context) error { return pool.Ping(ctx) },
		OpenAPI: docs.OpenAPI,
	}
	s.Handler, s.Metrics = srv.Handler(), srv.MetricsHandler()
	s.Console = &console.Server{Apps: s.Apps, Catalog: s.Checkout.Catalog(), Payments: s.Payments, Disputes: s.Disputes, Webhooks: s.Webhooks,
		Subscriptions: s.Subscriptions, Settlement: s.Settlement, Ledger: s.Ledger, Log: log}
	hs := httptest.NewServer(s.Console.Beside(s.Handler))
	s.URL = hs.URL
	tb.Cleanup(func() {
		hs.Close()
		s.Checkout.Close()
		s.Ledger.Close()
	})
	for kind, key := range o.Keys {
		if _, err := s.Apps.EnsureOperatorKey(context.Background(), kind, key); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}
