package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/api"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/catalog"
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

// application is every service of one minipay process, wired together.
type application struct {
	log        *slog.Logger
	pool       *pgxpool.Pool
	metrics    *metrics.Metrics
	ledger     *ledger.Ledger
	apps       *apps.Service
	checkout   *checkout.Service
	payments   *payments.Service
	disputes   *disputes.Service
	subs       *subscriptions.Service
	settlement *settlement.Service
	webhooks   *webhooks.Service
	idem       *idempotency.Store
	server     *api.Server
	console    *console.Server
	settle     func(context.Context) // the settlement scheduler loop
	schedule   settlement.Schedule
}

// assemble builds the services from the configuration. Keys and the server
// secret generated on first start are printed once to stdout.
// builtIn, if not nil, makes the catalog used when none is configured
// (dev's has short holding periods); nil means checkout's default.
func assemble(ctx context.Context, cfg *config, pool *pgxpool.Pool, log *slog.Logger, stdout io.Writer,
	builtIn func() (*catalog.Catalog, error)) (*application, error) {
	secret, generated, err := apps.LoadSecret(ctx, pool, cfg.Secret)
	if err != nil {
		return nil, err
	}
	if generated {
		log.Warn("MINIPAY_SECRET is not set: generated a server secret and stored it in the database; set MINIPAY_SECRET in production")
	}
	cat := catalog.Default()
	switch {
	case cfg.Catalog != "":
		if cat, err = catalog.Load(cfg.Catalog); err != nil {
			return nil, err
		}
	case builtIn != nil:
		if cat, err = builtIn(); err != nil {
			return nil, err
		}
	}
	a := &application{log: log, pool: pool, metrics: metrics.New()}
	a.apps = apps.New(pool, secret)
	if err := ensureOperatorKeys(ctx, a.apps, cfg, log, stdout); err != nil {
		return nil, err
	}
	a.ledger = ledger.New(pool, ledger.Options{Observe: observeLedger(a.metrics), Log: log})
	a.payments = payments.New(pool, a.ledger)
	a.checkout = checkout.New(pool, a.ledger, a.apps, a.payments, checkout.Options{Catalog: cat, Log: log})
	a.disputes = disputes.New(pool, a.ledger, a.payments, disputes.Options{Log: log})
	a.subs = subscriptions.New(pool, a.ledger, a.apps, a.payments, subscriptions.Options{Catalog: cat, Log: log, Sandbox: cfg.Sandbox,
		ObservePass: observeRenewals(a.metrics)})
	a.settlement = settlement.New(pool, a.ledger)
	if a.settle, err = a.settlementScheduler(cfg); err != nil {
		return nil, err
	}
	a.webhooks = webhooks.New(pool, webhooks.Options{Secret: secret, AllowPrivate: cfg.WebhookAllowPrivate, Log: log, Metrics: a.metrics,
		Schedule: cfg.WebhookSchedule, Timeout: cfg.WebhookTimeout, Lease: 2 * cfg.WebhookTimeout})
	a.idem = idempotency.New(pool, secret)
	a.server = &api.Server{
		Ledger: a.ledger, Apps: a.apps, Checkout: a.checkout, Payments: a.payments, Disputes: a.disputes, Settlement: a.settlement,
		Subscriptions: a.subs, Webhooks: a.webhooks,
		Sandbox: &sandbox.Service{Apps: a.apps, Checkout: a.checkout, Payments: a.payments, Disputes: a.disputes,
			Settlement: a.settlement, Webhooks: a.webhooks, Subscriptions: a.subs},
		IsSandbox: cfg.Sandbox,
		Idem:      a.idem, Metrics: a.metrics, Log: log, RateLimit: cfg.RateLimit,
		Ready:   func(ctx context.Context) error { return pool.Ping(ctx) },
		OpenAPI: docs.OpenAPI,
	}
	loc, err := time.LoadLocation(cfg.SettlementTZ)
	if err != nil {
		return nil, fmt.Errorf("settlement time zone %q: %w", cfg.SettlementTZ, err)
	}
	a.console = &console.Server{Apps: a.apps, Catalog: cat, Payments: a.payments, Disputes: a.disputes, Webhooks: a.webhooks,
		Subscriptions: a.subs, Settlement: a.settlement, Ledger: a.ledger, Log: log, Location: loc, TrustProxy: cfg.TrustProxy}
	return a, nil
}

// handler is everything serve answers: the API, and the console's pages
// under /console/.
func (a *application) handler() http.Handler { return a.console.Beside(a.server.Handler()) }

// close stops what the services run; the pool is the caller's.
func (a *application) close() {
	a.checkout.Close()
	a.ledger.Close()
}

// startWorkers runs the background loops of serve until ctx ends. Every
// loop is safe with any number of replicas running it too.
func (a *application) startWorkers(ctx context.Context, wg *sync.WaitGroup) {
	loops := []func(){
		func() { a.ledger.RunTimeouts(ctx, time.Second, a.log) },
		func() { every(ctx, time.Hour, func() { purgeIdempotency(ctx, a.idem, a.log) }) },
		func() {
			every(ctx, time.Hour, func() { a.sweep(ctx, "purge console sessions", a.apps.PurgeConsoleSessions) })
		},
		func() { every(ctx, time.Second, func() { a.sweep(ctx, "expire sessions", a.checkout.ExpireDue) }) },
		func() {
			every(ctx, 10*time.Second, func() { a.sweep(ctx, "void expired holds", a.checkout.VoidExpiredHolds) })
		},
		func() { a.webhooks.Run(ctx) }, // on shutdown: finishes or gives back what it claimed
		func() { every(ctx, 10*time.Second, func() { a.measureWebhookBacklog(ctx) }) },
		func() { a.settle(ctx) },
		// On one leader: loses the disputes nobody answered in time.
		func() { a.disputes.RunDeadlines(ctx, time.Second) },
		// On one leader: renews subscriptions (not those on test clocks).
		func() { a.subs.RunRenewals(ctx, time.Second) },
	}
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop()
		}()
	}
}

// measureWebhookBacklog sets the delivery queue's gauges.
func (a *application) measureWebhookBacklog(ctx context.Context) {
	b, err := a.webhooks.Backlog(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("webhook backlog", "err", err)
		}
		return
	}
	a.metrics.WebhookBacklog.WithLabelValues("pending").Set(float64(b.Pending))
	a.metrics.WebhookBacklog.WithLabelValues("due").Set(float64(b.Due))
	a.metrics.WebhookOldestDue.Set(b.OldestDue.Seconds())
}

// sweep runs fn in batches until a batch comes back short.
func (a *application) sweep(ctx context.Context, what string, fn func(context.Context, int) (int, error)) {
	const batch = 500
	for ctx.Err() == nil {
		n, err := fn(ctx, batch)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Error(what, "err", err)
			}
			return
		}
		if n > 0 {
			a.log.Info(what, "count", n)
		}
		if n < batch {
			return
		}
	}
}

// ensureOperatorKeys stores the admin and host keys from the configuration,
// or generates them on first start and prints them once.
func ensureOperatorKeys(ctx context.Context, svc *apps.Service, cfg *config, log *slog.Logger, stdout io.Writer) error {
	for _, k := range []struct {
		kind  apps.KeyKind
		given string
		env   string
	}{{apps.KindAdmin, cfg.AdminKey, "MINIPAY_ADMIN_KEY"}, {apps.KindHost, cfg.HostKey, "MINIPAY_HOST_KEY"}} {
		key, err := svc.EnsureOperatorKey(ctx, k.kind, k.given)
		if err != nil {
			return fmt.Errorf("%s: %w", k.env, err)
		}
		if key.Generated != "" {
			fmt.Fprintf(stdout, "minipay: generated %s key (shown once; set %s to choose your own): %s\n", k.kind, k.env, key.Generated)
		}
		if !key.RetiresAt.IsZero() {
			log.Warn(k.env+" was replaced by a newer key; it stops working at retires_at: update this replica's configuration",
				"kind", k.kind, "retires_at", key.RetiresAt)
		}
	}
	return nil
}

func observeRenewals(m *metrics.Metrics) func(subscriptions.RenewStats, time.Duration) {
	return func(st subscriptions.RenewStats, d time.Duration) {
		r := m.Renewals
		r.Results.WithLabelValues("paid").Add(float64(st.Paid))
		r.Results.WithLabelValues("failed").Add(float64(st.Failed))
		r.Results.WithLabelValues("canceled").Add(float64(st.Canceled))
		r.Results.WithLabelValues("step").Add(float64(st.Steps))
		r.PassDuration.Observe(d.Seconds())
	}
}

func observeLedger(m *metrics.Metrics) func(ledger.BatchStats) {
	return func(s ledger.BatchStats) {
		m.LedgerGroups.Inc()
		m.LedgerGroupSize.Observe(float64(s.Ops))
		m.LedgerGroupDuration.Observe(s.Duration.Seconds())
		m.LedgerTransfers.Add(float64(s.Written))
		m.LedgerGroupAttempts.Add(float64(s.Attempts))
	}
}
