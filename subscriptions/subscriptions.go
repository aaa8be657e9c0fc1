// Package subscriptions is recurring debit under a signed agreement, as
// WeChat's entrusted debit, Alipay's periodic debit and Stripe Billing are:
// a developer defines plans and creates subscriptions; the user signs one
// in the host's agreement sheet; minipay then charges the same wallet
// every period, warns a day before, retries when the wallet is short
// (dunning) and stops when told or when the retries run out.
//
// Each charge is an invoice, and a paid invoice is a payment (package
// payments, id in_…) captured exactly as a paid checkout session is: one
// ledger transfer with the payment's row, the developer's balance
// transaction and the events, so refunds, disputes, settlement and the
// console treat it alike.
//
// Renewals run on one leader (RunRenewals) in two set-based steps: due
// subscriptions are advanced to their next period with an open invoice in
// one transaction per batch, then due invoices are charged through the
// ledger's group-commit poster, many at once. An invoice's id is derived
// from (subscription, period start) and the pair is unique, and the ledger
// transfer's id from the invoice's, so a period is charged at most once
// whatever crashes, replicas or retries happen; an open invoice is tried
// again until it is paid or voided, so it is charged at least once.
//
// Subscriptions made on a test clock (sandboxes only) live by the clock's
// time and renew only when the clock is advanced.
package subscriptions

import (
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/catalog"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
)

// Statuses of a subscription.
const (
	StatusIncomplete        = "incomplete"         // created, not signed yet
	StatusIncompleteExpired = "incomplete_expired" // not signed within 23 h
	StatusTrialing          = "trialing"           // signed, in its free trial
	StatusActive            = "active"             // paid up
	StatusPastDue           = "past_due"           // a renewal is unpaid; dunning retries it
	StatusCanceled          = "canceled"
)

// Statuses of an invoice.
const (
	InvoiceOpen = "open"
	InvoicePaid = "paid"
	InvoiceVoid = "void"
)

// Reasons a subscription was canceled.
const (
	ReasonDeveloper     = "developer"
	ReasonUser          = "user"
	ReasonPaymentFailed = "payment_failed"
)

// Limits.
const (
	NameLenMax         = 200
	ReferenceLenMax    = 200
	TrialPeriodDaysMax = 730
	// ClockAdvanceMax is how far one advance may move a test clock.
	ClockAdvanceMax = 2 * 365 * 24 * time.Hour
)

// Errors a caller may branch on.
var (
	ErrInvalid = minipay.NewError(minipay.KindInvalid, "parameter_invalid", "invalid parameter")
	ErrMissing = minipay.NewError(minipay.KindInvalid, "parameter_missing", "a required parameter is missing")
	// ErrPlanNotFound: no such plan for this app.
	ErrPlanNotFound = minipay.NewError(minipay.KindNotFound, "plan_not_found", "no such plan")
	// ErrPlanInactive: the plan no longer takes new subscriptions.
	ErrPlanInactive = minipay.NewError(minipay.KindUnprocessable, "plan_inactive", "the plan is not active")
	// ErrOptionNotRecurring: the option cannot back a recurring plan
	// (catalog: recurring false).
	ErrOptionNotRecurring = minipay.NewError(minipay.KindInvalid, "option_not_recurring", "this monetization option cannot back a recurring plan")
	// ErrSubscriptionNotFound: no such subscription (for this app).
	ErrSubscriptionNotFound = minipay.NewError(minipay.KindNotFound, "subscription_not_found", "no such subscription")
	// ErrInvoiceNotFound: no such invoice (for this app).
	ErrInvoiceNotFound = minipay.NewError(minipay.KindNotFound, "invoice_not_found", "no such invoice")
	// ErrClientSecret: the client_secret is not this subscription's.
	ErrClientSecret = minipay.NewError(minipay.KindInvalid, "client_secret_invalid", "the client_secret does not belong to this subscription")
	// ErrAlreadySigned: the subscription was signed before; an agreement
	// is signed once.
	ErrAlreadySigned = minipay.NewError(minipay.KindConflict, "subscription_already_signed", "the subscription has been signed already")
	// ErrExpired: the subscription was not signed within 23 hours.
	ErrExpired = minipay.NewError(minipay.KindConflict, "subscription_expired", "the subscription was not signed in time and has expired")
	// ErrCanceled: the subscription is canceled; nothing more can change.
	ErrCanceled = minipay.NewError(minipay.KindConflict, "subscription_canceled", "the subscription is canceled")
	// ErrNotSubscriber: the user is not the one who signed the subscription.
	ErrNotSubscriber = minipay.NewError(minipay.KindForbidden, "not_subscriber", "only the user who signed a subscription can cancel it")
	// ErrNotSigned: the user cannot cancel what nobody signed.
	ErrNotSigned = minipay.NewError(minipay.KindConflict, "subscription_not_signed", "the subscription has not been signed")
	// ErrInsufficientFunds: the wallet cannot pay the first period; the
	// subscription stays incomplete and nothing moved.
	ErrInsufficientFunds = minipay.NewError(minipay.KindInsufficientFunds, "insufficient_funds", "the wallet does not have enough money for this payment")
	// ErrSandboxOnly: test clocks exist only in a sandbox (MINIPAY_SANDBOX).
	ErrSandboxOnly = minipay.NewError(minipay.KindForbidden, "sandbox_only", "test clocks work only in a sandbox (MINIPAY_SANDBOX=true)")
	// ErrClockNotFound: no such test clock (for this app).
	ErrClockNotFound = minipay.NewError(minipay.KindNotFound, "test_clock_not_found", "no such test clock")
	// ErrClockBackwards: a test clock only moves forward.
	ErrClockBackwards = minipay.NewError(minipay.KindInvalid, "test_clock_backwards", "a test clock can only be advanced to a later time")
	// ErrClockTooFar: one advance moves a clock at most two years.
	ErrClockTooFar = minipay.NewError(minipay.KindInvalid, "test_clock_too_far", "a test clock can be advanced at most two years at a time")
	// ErrClockAdvancing: another advance of the clock is running.
	ErrClockAdvancing = minipay.NewTransientError(minipay.KindConflict, "test_clock_advancing", "the test clock is being advanced; retry when it is ready")

	// errStateChanged: the subscription or invoice changed between reading
	// it and writing a change computed from it; nothing was written.
	errStateChanged = minipay.NewTransientError(minipay.KindConflict, "state_changed", "the subscription changed meanwhile; retry")
)

// Options configures a Service.
type Options struct {
	Catalog *catalog.Catalog // catalog.Default() when nil
	Log     *slog.Logger
	// Sandbox allows test clocks (MINIPAY_SANDBOX).
	Sandbox bool
	// ChargesInFlightMax bounds the renewal charges handed to the ledger
	// at once (default 512): enough to fill its groups, few enough to
	// bound memory.
	ChargesInFlightMax int
	// BatchMax bounds the subscriptions or invoices one renewal step reads
	// (default 2000).
	BatchMax int
	// ObserveCharge, if set, is told how long each renewal charge took
	// from its hand-over to the ledger to its answer (benchmarks).
	ObserveCharge func(time.Duration)
	// ObservePass, if set, is told what each pass of RunRenewals that
	// found work did and how long it took (metrics).
	ObservePass func(RenewStats, time.Duration)
}

// Service is subscriptions over one database. It is safe for concurrent use.
type Service struct {
	db       *pgxpool.Pool
	ledger   *ledger.Ledger
	apps     *apps.Service
	payments *payments.Service
	catalog  *catalog.Catalog
	log      *slog.Logger
	sandbox  bool
	inFlight int
	batchMax int
	observe  func(time.Duration)
	pass     func(RenewStats, time.Duration)
}

// New returns a Service.
func New(db *pgxpool.Pool, l *ledger.Ledger, a *apps.Service, p *payments.Service, opts Options) *Service {
	if opts.Catalog == nil {
		opts.Catalog = catalog.Default()
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.ChargesInFlightMax <= 0 {
		opts.ChargesInFlightMax = 512
	}
	if opts.BatchMax <= 0 {
		opts.BatchMax = 2000
	}
	s := &Service{db: db, ledger: l, apps: a, payments: p, catalog: opts.Catalog, log: opts.Log, sandbox: opts.Sandbox,
		inFlight: opts.ChargesInFlightMax, batchMax: opts.BatchMax, observe: opts.ObserveCharge, pass: opts.ObservePass}
	// An invoice paid on a test clock is refundable by that clock's time,
	// wherever payments are refunded from.
	p.UseClock(s.paymentTime)
	return s
}

// Sandbox reports whether test clocks are allowed.
func (s *Service) Sandbox() bool { return s.sandbox }

// utcNow is the real time, as the database stores it (microseconds).
func utcNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
