// Package payments is the money of every captured payment, whatever it
// paid for: a checkout session or an invoice of a subscription. The owner
// of a payment (checkout, subscriptions) decides when money is captured and
// attaches Record's statements to the ledger transfer that captures it;
// from then on refunds, disputes, settlement and the console treat every
// payment alike, through the one row this package keeps for it.
//
// A payment's id is the id of what it paid for (cs_… or in_…), so each
// object is paid at most once and its owner finds its payment without a
// lookup.
package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/citus"
	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/settlement"
)

// Kinds of payment, by what they paid for; the id's prefix tells them apart.
const (
	KindCheckoutSession = "checkout_session" // cs_…
	KindInvoice         = "invoice"          // in_…
)

// Statuses of a payment, as a session's payment_status shows them.
const (
	StatusPaid              = "paid"
	StatusPartiallyRefunded = "partially_refunded"
	StatusRefunded          = "refunded"
)

// Errors a caller may branch on.
var (
	// ErrNotFound: no captured payment with this id for this app. The
	// object may exist unpaid; its owner can say (see the api's refunds).
	ErrNotFound = minipay.NewError(minipay.KindNotFound, "payment_not_found", "no such payment")
	// ErrInvalid: a parameter is malformed; the error names it.
	ErrInvalid = minipay.NewError(minipay.KindInvalid, "parameter_invalid", "invalid parameter")
	// ErrMissing: a required parameter is missing; the error names it.
	ErrMissing = minipay.NewError(minipay.KindInvalid, "parameter_missing", "a required parameter is missing")
)

// FeeRule is the platform's fee schedule a payment was charged under: the
// option's version, in basis points plus a fixed amount in major units.
type FeeRule struct {
	Option        string
	OptionVersion string
	BPS           int32
	Fixed         string
}

// Payment is one captured payment. Amounts are minor units of Currency.
type Payment struct {
	ID                string // the object paid for: cs_… or in_…
	AppID             string
	DeveloperID       string
	UserID            string // the host's user id: never shown to the app
	Customer          string // the app's pseudonymous id for the user
	Currency          string
	Amount            int64
	Fee               int64
	Rule              FeeRule
	AmountRefunded    int64
	FeeRefunded       int64
	AmountDisputed    int64 // held by an open dispute
	ClientReferenceID string
	Metadata          map[string]string
	RefundUntil       time.Time // zero: not refundable
	AvailableOn       time.Time // when it matures for settlement
	CapturedAt        time.Time
	Version           int // changes after capture: 0 until the first refund or dispute
}

// Kind is what the payment paid for.
func (p Payment) Kind() string { return KindOf(p.ID) }

// KindOf is the kind of payment whose id is id, or "" when the id names
// nothing that can be paid.
func KindOf(id string) string {
	switch {
	case strings.HasPrefix(id, "cs_"):
		return KindCheckoutSession
	case strings.HasPrefix(id, "in_"):
		return KindInvoice
	}
	return ""
}

// Status is paid, partially_refunded or refunded.
func (p Payment) Status() string {
	switch {
	case p.AmountRefunded == 0:
		return StatusPaid
	case p.AmountRefunded < p.Amount:
		return StatusPartiallyRefunded
	}
	return StatusRefunded
}

// Remaining is what can still be refunded or disputed: what was captured,
// less what was refunded and what an open dispute holds.
func (p Payment) Remaining() int64 { return p.Amount - p.AmountRefunded - p.AmountDisputed }

// Service is payments over one database. It is safe for concurrent use.
type Service struct {
	db     *pgxpool.Pool
	ledger *ledger.Ledger

	refundLocks stripedLocks
	clock       Clock

	// citusOnce learns once whether the database is a Citus coordinator,
	// where a payment's row is written by a statement of its own.
	citusOnce sync.Once
	onCitus   bool
}

// New returns a Service.
func New(db *pgxpool.Pool, l *ledger.Ledger) *Service {
	return &Service{db: db, ledger: l}
}

// A Clock tells the time a payment lives by when its refund window is
// checked: the real time, or for an invoice of a subscription on a
// sandbox's test clock, that clock's (the invoice was paid at the clock's
// time, so its window runs by it too).
type Clock func(ctx context.Context, pay Payment) (time.Time, error)

// UseClock makes s check refund windows by c instead of the real time. It
// is set once, when the services are put together, before s is used.
func (s *Service) UseClock(c Clock) { s.clock = c }

// now is the time pay lives by.
func (s *Service) now(ctx context.Context, pay Payment) (time.Time, error) {
	if s.clock == nil {
		return time.Now(), nil
	}
	return s.clock(ctx, pay)
}

// Transfer is the ledger transfer that captures p: the payer's wallet pays
// the amount, the developer's pending balance gets it less the fee, the
// platform's fee account gets the fee. pending places a hold instead
// (manual capture). Its id is derived from the payment's, so a retry lands
// once.
func Transfer(p Payment, pending bool) ledger.Transfer {
	cur := p.Currency
	postings := []ledger.Posting{{Account: chart.Wallet(p.UserID, cur), Debit: p.Amount}}
	if net := p.Amount - p.Fee; net > 0 {
		postings = append(postings, ledger.Posting{Account: chart.DeveloperPending(p.DeveloperID, cur), Credit: net})
	}
	if p.Fee > 0 {
		postings = append(postings, ledger.Posting{Account: chart.Fees(cur), Credit: p.Fee})
	}
	return ledger.Transfer{ID: chart.Payment(p.ID), Code: "payment", Postings: postings, Pending: pending,
		Metadata: LedgerMetadata(p)}
}

// EnsureAccounts creates the accounts a payment of userID to developerID in
// currency moves money between, if they do not exist yet.
func (s *Service) EnsureAccounts(ctx context.Context, userID, developerID, currency string) error {
	for _, spec := range []ledger.AccountSpec{chart.WalletAccount(userID, currency),
		chart.DeveloperPendingAccount(developerID, currency), chart.FeesAccount(currency)} {
		if _, err := s.ledger.EnsureAccount(ctx, spec); err != nil {
			return fmt.Errorf("account %s: %w", spec.Code, err)
		}
	}
	return nil
}

// record returns what records p as captured, for its owner to attach to
// the ledger transfer that captures the money: the payment's row and the
// developer's balance transaction. Both are set-based (ledger.Statement.Row),
// so a group of captures writes each with one statement.
func record(p Payment) []ledger.Statement {
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	md, _ := json.Marshal(p.Metadata) // a map of strings always encodes
	row := []any{p.ID, p.AppID, p.DeveloperID, p.UserID, p.Customer, p.Currency, p.Amount, p.Fee,
		p.Rule.Option, p.Rule.OptionVersion, p.Rule.BPS, p.Rule.Fixed, null.String(p.ClientReferenceID), string(md),
		null.Time(p.RefundUntil), p.AvailableOn, p.CapturedAt}
	sql, txn := settlement.InsertBalanceTxnRow(settlement.BalanceTxn{
		DeveloperID: p.DeveloperID, AppID: p.AppID, Type: settlement.TxnPayment, Currency: p.Currency,
		Amount: p.Amount, Fee: p.Fee, SourceID: p.ID, PaymentID: p.ID, AvailableOn: p.AvailableOn,
	})
	return []ledger.Statement{{SQL: insertSQL, Args: row, Row: true}, {SQL: sql, Args: txn, Row: true}}
}

const insertSQL = `
	INSERT INTO payments (id, app_id, developer_id, user_id, customer, currency, amount, fee, option, option_version,
		fee_bps, fee_fixed, client_reference_id, metadata, refund_until, available_on, captured_at)
	SELECT id, app, dev, usr, customer, currency, amount, fee, option, version, bps, fixed, ref, md::jsonb,
		refund_until, available_on, captured_at
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[],
		$9::text[], $10::text[], $11::int4[], $12::text[], $13::text[], $14::text[], $15::timestamptz[],
		$16::timestamptz[], $17::timestamptz[])
		AS u(id, app, dev, usr, customer, currency, amount, fee, option, version, bps, fixed, ref, md,
			refund_until, available_on, captured_at)`

// Record is record(p) for this database: on a Citus cluster a group's
// payments are one multi-row VALUES insert (ledger.Statement.Values), which
// Citus splits into one insert per shard it touches, where the set-based
// insert from arrays would be collected on the coordinator and spread over
// the shards.
func (s *Service) Record(ctx context.Context, p Payment) []ledger.Statement {
	stmts := record(p)
	s.citusOnce.Do(func() {
		on, err := citus.Enabled(ctx, s.db)
		s.onCitus = on && err == nil
	})
	if s.onCitus {
		stmts[0] = ledger.Statement{SQL: insertOneSQL, Args: stmts[0].Args, Row: true, Values: true}
	}
	return stmts
}

const insertOneSQL = `
	INSERT INTO payments (id, app_id, developer_id, user_id, customer, currency, amount, fee, option, option_version,
		fee_bps, fee_fixed, client_reference_id, metadata, refund_until, available_on, captured_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15, $16, $17)`

// Columns is the payments columns in the order Scan reads them, for owners
// that read their objects joined with their payment (LEFT JOIN payments p
// ON p.id = …): alias the table p. A missing payment scans as zero.
const Columns = `p.id, p.app_id, p.developer_id, p.user_id, p.customer, p.currency, p.amount, p.fee, p.option,
	p.option_version, p.fee_bps, p.fee_fixed, p.amount_refunded, p.fee_refunded, p.amount_disputed,
	p.client_reference_id, p.metadata, p.refund_until, p.available_on, p.captured_at, p.version`

// Scanned is a payment read through Columns, perhaps missing (a LEFT JOIN
// that found none). Pass Dest to Scan, then call Payment.
type Scanned struct {
	id, app, dev, user, customer, currency, option, version, fixed, ref *string
	amount, fee, refunded, feeRefunded, disputed                        *int64
	bps                                                                 *int32
	md                                                                  []byte
	refundUntil, availableOn, capturedAt                                *time.Time
	ver                                                                 *int32
}

// Dest is what to pass to Scan for Columns.
func (s *Scanned) Dest() []any {
	return []any{&s.id, &s.app, &s.dev, &s.user, &s.customer, &s.currency, &s.amount, &s.fee, &s.option,
		&s.version, &s.bps, &s.fixed, &s.refunded, &s.feeRefunded, &s.disputed, &s.ref, &s.md,
		&s.refundUntil, &s.availableOn, &s.capturedAt, &s.ver}
}

// Payment returns what was scanned, and false when there was no payment.
func (s *Scanned) Payment() (Payment, bool, error) {
	if s.id == nil {
		return Payment{}, false, nil
	}
	p := Payment{ID: *s.id, AppID: *s.app, DeveloperID: *s.dev, UserID: *s.user, Customer: *s.customer,
		Currency: *s.currency, Amount: *s.amount, Fee: *s.fee,
		Rule:           FeeRule{Option: *s.option, OptionVersion: *s.version, BPS: *s.bps, Fixed: *s.fixed},
		AmountRefunded: *s.refunded, FeeRefunded: *s.feeRefunded, AmountDisputed: *s.disputed,
		AvailableOn: *s.availableOn, CapturedAt: *s.capturedAt, Version: int(*s.ver)}
	if s.ref != nil {
		p.ClientReferenceID = *s.ref
	}
	if s.refundUntil != nil {
		p.RefundUntil = *s.refundUntil
	}
	if err := json.Unmarshal(s.md, &p.Metadata); err != nil {
		return Payment{}, false, fmt.Errorf("metadata of payment %s: %w", p.ID, err)
	}
	return p, true, nil
}

// Get returns the payment id of app appID; another app's payment, or an
// object never paid, is ErrNotFound. An empty appID reads any payment (the
// platform's and the host's view).
func (s *Service) Get(ctx context.Context, appID, id string) (Payment, error) {
	return get(ctx, s.db, appID, id)
}

func get(ctx context.Context, q querier, appID, id string) (Payment, error) {
	var sc Scanned
	err := q.QueryRow(ctx, `SELECT `+Columns+` FROM payments p WHERE p.id = $1`, id).Scan(sc.Dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Payment{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Payment{}, fmt.Errorf("get payment %s: %w", id, err)
	}
	p, _, err := sc.Payment()
	if err != nil {
		return Payment{}, err
	}
	if appID != "" && p.AppID != appID {
		return Payment{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return p, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Filter selects payments of one app for List. Zero fields select all.
type Filter struct {
	AppID         string
	Kind          string    // KindCheckoutSession or KindInvoice
	Status        string    // StatusPaid, StatusPartiallyRefunded or StatusRefunded
	CapturedFrom  time.Time // at or after
	CapturedTo    time.Time // before
	Limit         int       // 1–100
	StartingAfter string    // a payment id of the previous page
}

func (f Filter) validate() error {
	if f.Kind != "" && kindPrefix(f.Kind) == "" {
		return minipay.Field("kind", fmt.Errorf("%w: kind is checkout_session or invoice", ErrInvalid))
	}
	switch f.Status {
	case "", StatusPaid, StatusPartiallyRefunded, StatusRefunded:
	default:
		return minipay.Field("status", fmt.Errorf("%w: status is paid, partially_refunded or refunded", ErrInvalid))
	}
	return nil
}

// List pages through an app's payments, newest capture first.
func (s *Service) List(ctx context.Context, f Filter) ([]Payment, bool, error) {
	if f.Limit < 1 || f.Limit > 100 {
		return nil, false, minipay.Field("limit", fmt.Errorf("%w: limit is 1–100", ErrInvalid))
	}
	if err := f.validate(); err != nil {
		return nil, false, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+Columns+` FROM payments p WHERE `+filterSQL+`
		  AND ($6 = '' OR (p.captured_at, p.id) < (SELECT captured_at, id FROM payments WHERE id = $6 AND app_id = $1))
		ORDER BY p.captured_at DESC, p.id DESC LIMIT $7`,
		f.AppID, kindPrefix(f.Kind), f.Status, null.Time(f.CapturedFrom), null.Time(f.CapturedTo), f.StartingAfter, f.Limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list payments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Payment, error) {
		var sc Scanned
		if err := r.Scan(sc.Dest()...); err != nil {
			return Payment{}, err
		}
		p, _, err := sc.Payment()
		return p, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("list payments: %w", err)
	}
	if len(out) > f.Limit {
		return out[:f.Limit], true, nil
	}
	return out, false, nil
}

// filterSQL is a Filter's selection over payments p, with $1 the app, $2 the
// id prefix, $3 the status, $4 and $5 the capture window.
const filterSQL = `p.app_id = $1 AND ($2 = '' OR starts_with(p.id, $2))
	AND ($3 = '' OR $3 = CASE WHEN p.amount_refunded = 0 THEN 'paid'
		WHEN p.amount_refunded < p.amount THEN 'partially_refunded' ELSE 'refunded' END)
	AND ($4::timestamptz IS NULL OR p.captured_at >= $4) AND ($5::timestamptz IS NULL OR p.captured_at < $5)`

// Totals sums the payments a filter selects, per currency.
type Totals struct {
	Currency       string
	Count          int64
	Amount         int64
	Fee            int64
	AmountRefunded int64
	FeeRefunded    int64
}

// Sum totals what f selects (Limit and StartingAfter are ignored), per
// currency in code order.
func (s *Service) Sum(ctx context.Context, f Filter) ([]Totals, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT p.currency, count(*), sum(p.amount)::int8, sum(p.fee)::int8,
			sum(p.amount_refunded)::int8, sum(p.fee_refunded)::int8
		FROM payments p WHERE `+filterSQL+` GROUP BY p.currency ORDER BY p.currency`,
		f.AppID, kindPrefix(f.Kind), f.Status, null.Time(f.CapturedFrom), null.Time(f.CapturedTo))
	if err != nil {
		return nil, fmt.Errorf("sum payments: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Totals])
	if err != nil {
		return nil, fmt.Errorf("sum payments: %w", err)
	}
	return out, nil
}

func kindPrefix(kind string) string {
	switch kind {
	case KindCheckoutSession:
		return "cs_"
	case KindInvoice:
		return "in_"
	}
	return ""
}
