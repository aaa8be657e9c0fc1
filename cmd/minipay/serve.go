package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/pgdb"
)

// shutdownGrace bounds how long in-flight requests get to finish.
const shutdownGrace = 30 * time.Second

func serveCommand(fs *flag.FlagSet, e *env) runFunc {
	cfg := newConfig(e.getenv)
	cfg.databaseFlags(fs, defaultDatabaseURL)
	cfg.serverFlags(fs)
	return noArgs("serve", func(ctx context.Context) error { return serve(ctx, cfg, e.stdout, e.stderr) })
}

func serve(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	if err := cfg.check(); err != nil {
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

	app, err := assemble(ctx, cfg, pool, log, stdout, nil)
	if err != nil {
		return err
	}
	defer app.close() // after the HTTP server has drained
	srv := app.server
	ln, err := listen(cfg.Addr, "addr", "MINIPAY_ADDR")
	if err != nil {
		return err
	}
	httpSrv := &http.Server{
		Handler:           app.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      45 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	if cfg.DebugAddr != "" {
		go serveDebug(cfg.DebugAddr, log)
	}
	if cfg.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, srv.MetricsHandler(), log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	app.startWorkers(workCtx, &workers)

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
	// Records stored in clear by an earlier version are sealed first.
	for ctx.Err() == nil {
		n, err := idem.SealLegacy(ctx, 1000)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("seal idempotency records", "err", err)
			}
			break
		}
		if n < 1000 {
			break
		}
	}
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

// serveMetrics serves /metrics on its own address, never on the API's:
// only the scraper should reach it. It returns a function that stops it.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := listen(addr, "metrics-addr", "MINIPAY_METRICS_ADDR")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Info("metrics listening", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// serveDebug serves the Go profiler on its own address, never on the
// public one.
func serveDebug(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("debug listening", "addr", addr)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		log.Error("debug server", "err", err)
	}
}
