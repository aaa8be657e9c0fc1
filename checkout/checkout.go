// Package checkout is how users pay mini-apps: wallets funded by the host, checkout sessions created by developers and
// confirmed by the host's wallet service, manual capture, and refunds.
// Every movement of money is one ledger transfer that commits, in the same
// database transaction, the session's new state, the developer's balance
// transaction and the event that tells the developer.
package checkout

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/catalog"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
)

// Options configures a Service.
type Options struct {
	Catalog *catalog.Catalog // catalog.Default() when nil
	// HoldWindow is how long a manual-capture hold lasts before it is
	// voided (default 7 days).
	HoldWindow time.Duration
	Log        *slog.Logger
}

// Service is checkout over one database. It is safe for concurrent use.
type Service struct {
	db       *pgxpool.Pool
	ledger   *ledger.Ledger
	apps     *apps.Service
	payments *payments.Service
	catalog  *catalog.Catalog
	hold     time.Duration
	log      *slog.Logger

	recent   recent // sessions created here and perhaps still open
	inserter *inserter

	// onCitus is whether the database is a Citus coordinator, learnt by
	// the first ExpireDue (see expireDueCitusSQL).
	citusOnce sync.Once
	onCitus   bool
}

// New returns a Service.
func New(db *pgxpool.Pool, l *ledger.Ledger, a *apps.Service, p *payments.Service, opts Options) *Service {
	if opts.Catalog == nil {
		opts.Catalog = catalog.Default()
	}
	if opts.HoldWindow <= 0 {
		opts.HoldWindow = 7 * 24 * time.Hour
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Service{db: db, ledger: l, apps: a, payments: p, catalog: opts.Catalog, hold: opts.HoldWindow, log: opts.Log,
		inserter: newInserter(db)}
}

// Close stops the background writers after what they hold is written.
// Creating a session after Close fails with ErrClosed.
func (s *Service) Close() { s.inserter.close() }

// Catalog returns the monetization catalog.
func (s *Service) Catalog() *catalog.Catalog { return s.catalog }

// Errors a caller may branch on.
var (
	ErrInvalid = minipay.NewError(minipay.KindInvalid, "parameter_invalid", "invalid parameter")
	ErrMissing = minipay.NewError(minipay.KindInvalid, "parameter_missing", "a required parameter is missing")
	ErrClosed  = minipay.NewError(minipay.KindUnavailable, "shutting_down", "the server is shutting down")

	ErrSessionNotFound  = minipay.NewError(minipay.KindNotFound, "session_not_found", "no such checkout session")
	ErrSessionNotOpen   = minipay.NewError(minipay.KindConflict, "session_not_open", "the checkout session is already complete")
	ErrSessionExpired   = minipay.NewError(minipay.KindConflict, "session_expired", "the checkout session has expired")
	ErrSessionCanceled  = minipay.NewError(minipay.KindConflict, "session_canceled", "the checkout session was canceled")
	ErrClientSecret     = minipay.NewError(minipay.KindInvalid, "client_secret_invalid", "the client_secret does not belong to this session")
	ErrNotManualCapture = minipay.NewError(minipay.KindUnprocessable, "capture_not_applicable", "only sessions with capture_method manual are captured or voided")
	ErrNotCapturable    = minipay.NewError(minipay.KindConflict, "payment_not_capturable", "the payment is not an uncaptured hold")
	ErrHoldExpired      = minipay.NewError(minipay.KindConflict, "hold_expired", "the hold's capture window has ended")

	ErrNotCaptured    = minipay.NewError(minipay.KindConflict, "payment_not_captured", "the session has no captured payment")
	errStateChanged   = minipay.NewTransientError(minipay.KindConflict, "state_changed", "the session changed meanwhile; retry")
	ErrWalletNotFound = minipay.NewError(minipay.KindNotFound, "wallet_not_found", "this user has no wallet")
	// ErrInsufficientFunds: the payer's wallet cannot pay; nothing moved
	// and the session stays open.
	ErrInsufficientFunds = minipay.NewError(minipay.KindInsufficientFunds, "insufficient_funds", "the wallet does not have enough money for this payment")
	ErrTopUpNotPositive  = minipay.NewError(minipay.KindInvalid, "amount_not_positive", "the amount must be greater than zero")
)

// ensure creates the ledger accounts of specs that do not exist yet.
func (s *Service) ensure(ctx context.Context, specs ...ledger.AccountSpec) error {
	for _, spec := range specs {
		if _, err := s.ledger.EnsureAccount(ctx, spec); err != nil {
			return fmt.Errorf("account %s: %w", spec.Code, err)
		}
	}
	return nil
}

// statement turns SQL into a ledger statement with an optional check.
func statement(sql string, args []any, check func(pgconn.CommandTag) error) ledger.Statement {
	return ledger.Statement{SQL: sql, Args: args, Check: check}
}
