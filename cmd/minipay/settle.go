package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minipay/minipay/internal/pgdb"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/settlement"
)

// Settlement configuration, from the environment:
//
//	MINIPAY_SETTLEMENT_SCHEDULE   when serve settles: "daily" (00:00, the default),
//	                              "daily@HH:MM", "every <duration>" or "off"
//	MINIPAY_SETTLEMENT_TZ         the time zone of daily cutoffs (Asia/Shanghai)
//	MINIPAY_SETTLEMENT_MINIMUMS   minimum payouts, e.g. "CNY=1.00,JPY=100"
//	                              (default: one major unit of every currency)
//	MINIPAY_SETTLEMENT_CRASH_AT   tests only: exit the process at a point of a
//	                              run ("planned", "payout:N", "paid")
const crashExitCode = 86

// settlementOptions reads the settlement configuration that every command
// shares.
func settlementOptions(getenv func(string) string, log *slog.Logger) (settlement.Options, error) {
	o := settlement.Options{Log: log, MinimumPayout: map[string]int64{}}
	if spec := strings.TrimSpace(getenv("MINIPAY_SETTLEMENT_MINIMUMS")); spec != "" {
		for _, part := range strings.Split(spec, ",") {
			cur, amount, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok {
				return o, fmt.Errorf("MINIPAY_SETTLEMENT_MINIMUMS: %q is not CUR=amount", part)
			}
			minor, err := ledger.ParseAmount(cur, amount)
			if err != nil {
				return o, fmt.Errorf("MINIPAY_SETTLEMENT_MINIMUMS: %s: %w", cur, err)
			}
			o.MinimumPayout[cur] = minor
		}
	}
	o.Failpoint = crashAt(getenv("MINIPAY_SETTLEMENT_CRASH_AT"))
	return o, nil
}

// crashAt returns a failpoint that ends the process abruptly, as a kill
// would, at the named point of a run: the crash tests' tool.
func crashAt(spec string) func(string) {
	if spec == "" {
		return nil
	}
	point, nth, _ := strings.Cut(spec, ":")
	n, _ := strconv.Atoi(nth)
	var seen atomic.Int64
	return func(p string) {
		if p == point && seen.Add(1) >= int64(max(n, 1)) {
			fmt.Fprintf(os.Stderr, "minipay: crashing at settlement point %s\n", spec)
			os.Exit(crashExitCode)
		}
	}
}

// settlementScheduler configures the settlement service for serve and
// returns the scheduler loop. A malformed setting stops serve at start
// rather than leaving it running without settling.
func (a *application) settlementScheduler(cfg *config) (func(context.Context), error) {
	opts, err := settlementOptions(cfg.getenv, a.log)
	if err != nil {
		return nil, err
	}
	m := a.metrics.Settlement
	opts.Observe = func(s settlement.RunStats) {
		m.RunDuration.Observe(s.Duration.Seconds())
		m.Runs.WithLabelValues(s.Status).Inc()
		m.Payouts.Add(float64(s.Payouts))
	}
	a.settlement.SetOptions(opts)
	loc, err := time.LoadLocation(cfg.SettlementTZ)
	if err != nil {
		return nil, fmt.Errorf("settlement time zone %q: %w", cfg.SettlementTZ, err)
	}
	sched, err := settlement.ParseSchedule(cfg.getenv("MINIPAY_SETTLEMENT_SCHEDULE"), loc)
	if err != nil {
		return nil, fmt.Errorf("MINIPAY_SETTLEMENT_SCHEDULE: %w", err)
	}
	return func(ctx context.Context) { a.settlement.RunScheduler(ctx, sched, time.Second) }, nil
}

// settle is "minipay settle --cutoff <RFC 3339>": run settlement for a
// cutoff (or finish it), print the run as JSON. A run that does not
// reconcile is an error.
func settle(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("settle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := configFlags(fs, getenv)
	cutoffFlag := fs.String("cutoff", "", "the settlement cutoff, RFC 3339 (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cutoffFlag == "" {
		return fmt.Errorf("settle: --cutoff is required (RFC 3339, e.g. %s)", time.Now().UTC().Truncate(time.Hour).Format(time.RFC3339))
	}
	cutoff, err := time.Parse(time.RFC3339Nano, *cutoffFlag)
	if err != nil {
		return fmt.Errorf("settle: --cutoff: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	opts, err := settlementOptions(getenv, log)
	if err != nil {
		return err
	}
	pool, _, err := pgdb.Setup(ctx, cfg.DatabaseURL, int32(cfg.DBConns))
	if err != nil {
		return err
	}
	defer pool.Close()
	l := ledger.New(pool, ledger.Options{})
	defer l.Close()
	svc := settlement.New(pool, l)
	svc.SetOptions(opts)
	run, _, err := svc.Settle(ctx, cutoff, true)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(stdout).Encode(runSummary(run)); err != nil {
		return err
	}
	if run.Status == settlement.RunMismatch {
		return fmt.Errorf("settlement run %s does not reconcile with the ledger: %s", run.ID, strings.Join(run.Mismatch, "; "))
	}
	return nil
}

// runSummary is the run as the settle command prints it.
func runSummary(run settlement.Run) map[string]any {
	totals := []map[string]any{}
	for _, t := range run.Totals {
		f := func(v int64) string { return ledger.FormatAmount(t.Currency, v) }
		totals = append(totals, map[string]any{"currency": t.Currency, "gross": f(t.Gross), "refunds": f(t.Refunds),
			"disputes": f(t.Disputes), "fees": f(t.Fees), "net": f(t.Net), "payout_count": t.PayoutCount, "carried_forward": f(t.CarriedForward)})
	}
	return map[string]any{"id": run.ID, "cutoff": run.Cutoff.UTC().Format(time.RFC3339Nano), "status": run.Status,
		"payouts": run.PayoutCount, "totals": totals, "mismatch": run.Mismatch}
}

// export is "minipay export settlement --run <id> [--detail] [--out FILE]":
// the run's CSV report, as GET /v1/settlement_runs/{id}/report.csv serves
// it. A file is written whole or not at all.
func export(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "settlement" {
		return errors.New(`export: what to export? "minipay export settlement --run <id> [--detail] [--out FILE]"`)
	}
	fs := flag.NewFlagSet("export settlement", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := configFlags(fs, getenv)
	runID := fs.String("run", "", "the settlement run (sr_…) (required)")
	detail := fs.Bool("detail", false, "one row per balance transaction behind each payout")
	out := fs.String("out", "", "write to this file instead of stdout")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *runID == "" {
		return errors.New("export settlement: --run is required")
	}
	pool, err := pgdb.Open(ctx, cfg.DatabaseURL, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	l := ledger.New(pool, ledger.Options{})
	defer l.Close()
	svc := settlement.New(pool, l)
	if *out == "" {
		return svc.WriteReport(ctx, *runID, *detail, stdout)
	}
	if err := svc.CheckReport(ctx, *runID); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(*out), ".minipay-export-*")
	if err != nil {
		return fmt.Errorf("export settlement: %w", err)
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing left to remove
	if err := svc.WriteReport(ctx, *runID, *detail, f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("export settlement: %w", err)
	}
	return os.Rename(f.Name(), *out)
}
