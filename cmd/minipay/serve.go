package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/api"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/docs"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/metrics"
	"github.com/minipay/minipay/internal/pgdb"
	"github.com/minipay/minipay/ledger"
)

// shutdownGrace bounds how long in-flight requests get to finish.
const shutdownGrace = 30 * time.Second

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := configFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))

	pool, applied, err := pgdb.Setup(ctx, cfg.DatabaseURL, int32(cfg.DBConns))
	if err != nil {
		return err
	}
	defer pool.Close()
	for _, a := range applied {
		log.Info("migration applied", "name", a.Name, "ms", a.Duration.Milliseconds())
	}

	m := metrics.New()
	appSvc := apps.New(pool)
	if err := ensureOperatorKeys(ctx, appSvc, cfg, stdout); err != nil {
		return err
	}
	led := ledger.New(pool, ledger.Options{Observe: observeLedger(m)})
	defer led.Close() // after the HTTP server has drained

	srv := &api.Server{
		Ledger: led, Apps: appSvc, Idem: idempotency.New(pool), Metrics: m, Log: log,
		Ready:   func(ctx context.Context) error { return pool.Ping(ctx) },
		OpenAPI: docs.OpenAPI,
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      45 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	startWorkers(workCtx, &workers, log, led, pool)

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		stopWork()
		workers.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests")
	srv.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
	}
	stopWork()
	workers.Wait()
	log.Info("stopped")
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startWorkers runs the background loops of serve until ctx ends.
func startWorkers(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger, led *ledger.Ledger, pool *pgxpool.Pool) {
	idem := idempotency.New(pool)
	loops := []func(){
		func() { led.RunTimeouts(ctx, time.Second, log) },
		func() { every(ctx, time.Hour, func() { purgeIdempotency(ctx, idem, log) }) },
	}
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop()
		}()
	}
}

// every calls fn now and then every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func purgeIdempotency(ctx context.Context, idem *idempotency.Store, log *slog.Logger) {
	for {
		n, err := idem.Purge(ctx, 10000)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("purge idempotency keys", "err", err)
			}
			return
		}
		if n < 10000 {
			return
		}
	}
}

// ensureOperatorKeys stores the admin and host keys from the configuration,
// or generates them on first start and prints them once.
func ensureOperatorKeys(ctx context.Context, svc *apps.Service, cfg *config, stdout io.Writer) error {
	for _, k := range []struct {
		kind  apps.KeyKind
		given string
		env   string
	}{{apps.KindAdmin, cfg.AdminKey, "MINIPAY_ADMIN_KEY"}, {apps.KindHost, cfg.HostKey, "MINIPAY_HOST_KEY"}} {
		generated, err := svc.EnsureOperatorKey(ctx, k.kind, k.given)
		if err != nil {
			return err
		}
		if generated != "" {
			fmt.Fprintf(stdout, "minipay: generated %s key (shown once; set %s to choose your own): %s\n", k.kind, k.env, generated)
		}
	}
	return nil
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
