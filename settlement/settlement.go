// Package settlement pays developers: the balance transactions behind
// every developer's balance, periodic settlement runs that move matured
// money to payouts, and the reports finance exports.
//
// A run is a short sequence of steps, each recorded in the database when it
// commits, so a run interrupted anywhere resumes where it stopped:
//
//  1. created: the run row exists; its cutoff is unique, so every caller
//     and replica asking for that cutoff gets the same run.
//  2. planned: in one transaction the run sums each developer's matured,
//     unsettled balance transactions per currency, reconciles them with the
//     ledger, picks payout ids and marks the transactions with them. A
//     difference with the ledger ends the run as mismatch instead, and
//     nothing is marked or paid.
//  3. paying: one ledger transfer per payout, whose id derives from the
//     payout id, so a retried transfer lands once; the payout row, its
//     balance transaction and the payout.created event commit with it.
//  4. completed: the ledger is checked again and the run completes, with a
//     settlement_run.completed event for each developer in it.
package settlement

import (
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/ledger"
)

// Options configures a Service. The zero value is ready to use.
type Options struct {
	// MinimumPayout is the smallest net amount paid out, in minor units,
	// per currency. Currencies not listed use one major unit (1.00 CNY,
	// 1 JPY, 1.000 KWD). Less than that, or a negative net, is carried
	// forward to the next run.
	MinimumPayout map[string]int64
	// PayConcurrency bounds the payout transfers in flight at once
	// (default 256); they share the ledger's group commits.
	PayConcurrency int
	// Failpoint, if set, is called at named points of a run ("planned",
	// "payout" after each payout transfer, "paid"). Crash tests use it to
	// stop the process there; it has no other use.
	Failpoint func(point string)
	// Observe, if set, is called after each run that this process
	// advanced, for metrics.
	Observe func(RunStats)
	Log     *slog.Logger
}

// Service is settlement over one database. It is safe for concurrent use.
type Service struct {
	db     *pgxpool.Pool
	ledger *ledger.Ledger
	opts   Options
}

// New returns a Service with default options.
func New(db *pgxpool.Pool, l *ledger.Ledger) *Service {
	s := &Service{db: db, ledger: l}
	s.SetOptions(Options{})
	return s
}

// SetOptions replaces the service's options. Call it before the service is
// used; it is not safe to call concurrently with runs.
func (s *Service) SetOptions(o Options) {
	if o.PayConcurrency <= 0 {
		o.PayConcurrency = 256
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.opts = o
}

// minimumPayout is the smallest amount paid out in currency, in minor units.
func (s *Service) minimumPayout(currency string) int64 {
	if m, ok := s.opts.MinimumPayout[currency]; ok {
		return m
	}
	exp, err := ledger.Exponent(currency)
	if err != nil {
		return 1
	}
	m := int64(1)
	for i := int32(0); i < exp; i++ {
		m *= 10
	}
	return m
}

func (s *Service) failpoint(point string) {
	if s.opts.Failpoint != nil {
		s.opts.Failpoint(point)
	}
}
