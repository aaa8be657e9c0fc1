package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

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
func settlementOptions(cfg *config, log *slog.Logger) (settlement.Options, error) {
	o := settlement.Options{Log: log, MinimumPayout: map[string]int64{}}
	if spec := strings.TrimSpace(cfg.SettlementMinimums); spec != "" {
		for _, part := range strings.Split(spec, ",") {
			cur, amount, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok {
				return o, fmt.Errorf("settlement minimums (--settlement-minimums, MINIPAY_SETTLEMENT_MINIMUMS): %q is not CUR=amount, such as CNY=1.00", part)
			}
			minor, err := ledger.ParseAmount(cur, amount)
			if err != nil {
				return o, fmt.Errorf("settlement minimums (--settlement-minimums, MINIPAY_SETTLEMENT_MINIMUMS): %s: %w", cur, err)
			}
			o.MinimumPayout[cur] = minor
		}
	}
	o.Failpoint = crashAt(cfg.getenv("MINIPAY_SETTLEMENT_CRASH_AT"))
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
	opts, err := settlementOptions(cfg, a.log)
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
	loc, err := cfg.location()
	if err != nil {
		return nil, err
	}
	sched, err := settlement.ParseSchedule(cfg.SettlementSchedule, loc)
	if err != nil {
		return nil, fmt.Errorf("settlement schedule (--settlement-schedule, MINIPAY_SETTLEMENT_SCHEDULE): %w", err)
	}
	a.schedule = sched
	return func(ctx context.Context) { a.settlement.RunScheduler(ctx, sched, time.Second) }, nil
}
