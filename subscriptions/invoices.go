package subscriptions

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/catalog"
	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
)

// Invoice is one period's charge of a subscription. Amounts are minor
// units of Currency.
type Invoice struct {
	ID                 string
	SubscriptionID     string
	AppID              string
	DeveloperID        string
	TestClockID        string
	Amount             int64
	Currency           string
	Status             string
	AttemptCount       int
	NextPaymentAttempt time.Time // zero unless open
	PeriodStart        time.Time // also its due date
	PeriodEnd          time.Time
	Fee                *int64 // fixed when paid
	Created            time.Time
	PaidAt             time.Time
	VoidedAt           time.Time
	Version            int
	// From its payment, once paid.
	AmountRefunded int64
	PaymentVersion int
}

// crockford is the alphabet of minipay's ids (package id).
var crockford = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// InvoiceID is the id of subscription subID's invoice for the period
// starting at periodStart. Derived, not random, so that every replica
// and every retry that renews a period names the same invoice (and, through
// it, the same payment and ledger transfer): the period is charged once.
// Like every minipay id (package id) it begins with its time, here the
// period's start to the millisecond, then 80 bits of a hash of the pair:
// renewals fall due in period order, so the invoices, payments, transfers
// and events that a batch of renewals writes land next to each other in
// their indexes instead of at random places in a million-entry B-tree.
func InvoiceID(subID string, periodStart time.Time) string {
	var raw [16]byte
	ms := uint64(periodStart.UnixMilli())
	binary.BigEndian.PutUint16(raw[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(raw[2:6], uint32(ms))
	sum := sha256.Sum256([]byte(subID + "|" + strconv.FormatInt(periodStart.UTC().UnixMicro(), 10)))
	copy(raw[6:], sum[:10])
	return "in_" + crockford.EncodeToString(raw[:])
}

// insertInvoicesSQL writes new invoices, set-based, and returns those it
// wrote: an invoice whose period another process invoiced first is not
// written (and the change that made it is refused).
const insertInvoicesSQL = `
	INSERT INTO subscription_invoices (id, subscription_id, app_id, developer_id, test_clock_id, amount, currency, status,
		attempt_count, next_payment_attempt, period_start, period_end, fee, created_at, paid_at, version)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::text[],
		$9::int4[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::int8[], $14::timestamptz[],
		$15::timestamptz[], $16::int4[])
	ON CONFLICT DO NOTHING
	RETURNING id`

func insertRow(inv Invoice) []any {
	return []any{inv.ID, inv.SubscriptionID, inv.AppID, inv.DeveloperID, null.String(inv.TestClockID), inv.Amount, inv.Currency,
		inv.Status, int32(inv.AttemptCount), null.Time(inv.NextPaymentAttempt), inv.PeriodStart, inv.PeriodEnd, inv.Fee,
		inv.Created, null.Time(inv.PaidAt), int32(inv.Version)}
}

// saveInvoicesSQL writes invoices' changing columns, each only if it is
// still at the version the change was computed from, and returns those it
// wrote.
const saveInvoicesSQL = `
	UPDATE subscription_invoices i SET status = u.status, attempt_count = u.attempts, next_payment_attempt = u.npa,
		fee = u.fee, paid_at = u.paid, voided_at = u.voided, version = u.version
	FROM unnest($1::text[], $2::text[], $3::int4[], $4::timestamptz[], $5::int8[], $6::timestamptz[], $7::timestamptz[],
		$8::int4[]) AS u(id, status, attempts, npa, fee, paid, voided, version)
	WHERE i.id = u.id AND i.version = u.version - 1
	RETURNING i.id`

func saveInvoiceRow(next Invoice) []any {
	return []any{next.ID, next.Status, int32(next.AttemptCount), null.Time(next.NextPaymentAttempt), next.Fee,
		null.Time(next.PaidAt), null.Time(next.VoidedAt), int32(next.Version)}
}

const invoiceColumns = `i.id, i.subscription_id, i.app_id, i.developer_id, i.test_clock_id, i.amount, i.currency, i.status,
	i.attempt_count, i.next_payment_attempt, i.period_start, i.period_end, i.fee, i.created_at, i.paid_at, i.voided_at,
	i.version, coalesce(pay.amount_refunded, 0), coalesce(pay.version, 0)`

const invoiceFrom = ` FROM subscription_invoices i LEFT JOIN payments pay ON pay.id = i.id `

// invoiceScan holds an invoice's columns as scanned.
type invoiceScan struct {
	inv               Invoice
	clock             *string
	npa, paid, voided *time.Time
	payVersion        int32
}

func (x *invoiceScan) dest() []any {
	inv := &x.inv
	return []any{&inv.ID, &inv.SubscriptionID, &inv.AppID, &inv.DeveloperID, &x.clock, &inv.Amount, &inv.Currency,
		&inv.Status, &inv.AttemptCount, &x.npa, &inv.PeriodStart, &inv.PeriodEnd, &inv.Fee, &inv.Created, &x.paid, &x.voided,
		&inv.Version, &inv.AmountRefunded, &x.payVersion}
}

func (x *invoiceScan) finish() Invoice {
	inv := x.inv
	inv.TestClockID, inv.PaymentVersion = null.Value(x.clock), int(x.payVersion)
	inv.NextPaymentAttempt, inv.PaidAt, inv.VoidedAt = null.Value(x.npa), null.Value(x.paid), null.Value(x.voided)
	inv.PeriodStart, inv.PeriodEnd, inv.Created = inv.PeriodStart.UTC(), inv.PeriodEnd.UTC(), inv.Created.UTC()
	return inv
}

func scanInvoice(row pgx.Row) (Invoice, error) {
	var x invoiceScan
	if err := row.Scan(x.dest()...); err != nil {
		return Invoice{}, err
	}
	return x.finish(), nil
}

// GetInvoice returns invoice invoiceID of app appID; another app's is
// ErrInvoiceNotFound.
func (s *Service) GetInvoice(ctx context.Context, appID, invoiceID string) (Invoice, error) {
	inv, err := scanInvoice(s.db.QueryRow(ctx, `SELECT `+invoiceColumns+invoiceFrom+` WHERE i.id = $1`, invoiceID))
	if errors.Is(err, pgx.ErrNoRows) || err == nil && appID != "" && inv.AppID != appID {
		return Invoice{}, fmt.Errorf("%w: %s", ErrInvoiceNotFound, invoiceID)
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("get invoice %s: %w", invoiceID, err)
	}
	return inv, nil
}

// InvoiceFilter selects invoices of one app.
type InvoiceFilter struct {
	AppID          string
	SubscriptionID string
	Status         string
	Limit          int
	StartingAfter  string
}

// ListInvoices pages through an app's invoices, the latest period first.
func (s *Service) ListInvoices(ctx context.Context, f InvoiceFilter) ([]Invoice, bool, error) {
	switch f.Status {
	case "", InvoiceOpen, InvoicePaid, InvoiceVoid:
	default:
		return nil, false, minipay.Field("status", fmt.Errorf("%w: status is open, paid or void", ErrInvalid))
	}
	rows, err := s.db.Query(ctx, `SELECT `+invoiceColumns+invoiceFrom+`
		WHERE i.app_id = $1 AND ($2 = '' OR i.subscription_id = $2) AND ($3 = '' OR i.status = $3)
		  AND ($4 = '' OR (i.period_start, i.id) < (SELECT period_start, id FROM subscription_invoices WHERE id = $4 AND app_id = $1))
		ORDER BY i.period_start DESC, i.id DESC LIMIT $5`, f.AppID, f.SubscriptionID, f.Status, f.StartingAfter, f.Limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list invoices: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invoice, error) { return scanInvoice(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list invoices: %w", err)
	}
	if len(out) > f.Limit {
		return out[:f.Limit], true, nil
	}
	return out, false, nil
}

// newInvoice is sub's open invoice for the period [start, end), due at
// start, not written yet (version 0: the write that makes it gives it 1).
func newInvoice(sub Subscription, start, end, now time.Time) Invoice {
	return Invoice{ID: InvoiceID(sub.ID, start), SubscriptionID: sub.ID, AppID: sub.AppID, DeveloperID: sub.DeveloperID,
		TestClockID: sub.TestClockID, Amount: sub.Plan.Amount, Currency: sub.Plan.Currency, Status: InvoiceOpen,
		NextPaymentAttempt: start, PeriodStart: start, PeriodEnd: end, Created: now}
}

// capture is what paying inv for sub at now makes: the invoice as paid, and
// its payment, with the fee of the plan's option in effect at now.
func (s *Service) capture(sub Subscription, inv Invoice, now time.Time) (Invoice, payments.Payment, error) {
	opt, ok := s.catalog.At(sub.Plan.Option, now)
	if vs := s.catalog.Versions(sub.Plan.Option); !ok && len(vs) > 0 {
		// A test clock set before the option's first fee schedule took
		// effect: that schedule is the one the sandbox means.
		opt, ok = vs[0], true
	}
	if !ok {
		return Invoice{}, payments.Payment{}, fmt.Errorf("%w: %s", catalog.ErrUnknownOption, sub.Plan.Option)
	}
	fee, err := opt.Fee(inv.Currency, inv.Amount)
	if err != nil {
		return Invoice{}, payments.Payment{}, err
	}
	paid := inv
	paid.Status, paid.AttemptCount, paid.NextPaymentAttempt = InvoicePaid, inv.AttemptCount+1, time.Time{}
	paid.Fee, paid.PaidAt, paid.Version = &fee, now, inv.Version+1
	p := payments.Payment{ID: inv.ID, AppID: sub.AppID, DeveloperID: sub.DeveloperID, UserID: sub.UserID,
		Customer: sub.Customer, Currency: inv.Currency, Amount: inv.Amount, Fee: fee,
		Rule: payments.FeeRule{Option: opt.Name, OptionVersion: opt.Version(), BPS: int32(opt.FeeBPS),
			Fixed: opt.FeeFixed.String()},
		ClientReferenceID: sub.ClientReferenceID, Metadata: sub.Metadata, AvailableOn: now.Add(opt.HoldingPeriod),
		CapturedAt: now}
	if opt.Refundable {
		p.RefundUntil = now.Add(opt.RefundWindow)
	}
	return paid, p, nil
}

// chargeStatements are what commits with the ledger transfer that pays an
// invoice: the invoice (inserted when new, else updated only if unchanged),
// the subscription (only if unchanged), the payment's records
// (payments.Service.Record) and the events.
func chargeStatements(paid Invoice, insert bool, next Subscription, record, events []ledger.Statement) []ledger.Statement {
	var stmts []ledger.Statement
	if insert {
		stmts = append(stmts, ledger.Statement{SQL: insertInvoicesSQL, Args: insertRow(paid), Row: true, Required: errStateChanged})
	} else {
		stmts = append(stmts, ledger.Statement{SQL: saveInvoicesSQL, Args: saveInvoiceRow(paid), Row: true, Required: errStateChanged})
	}
	stmts = append(stmts, saveStatement(next))
	stmts = append(stmts, record...)
	return append(stmts, events...)
}

// ErrInvoiceNotPaid: the invoice has no captured payment (open or void).
var ErrInvoiceNotPaid = minipay.NewError(minipay.KindConflict, "invoice_not_paid", "the invoice has not been paid")

// WhyUnpaid explains why invoice invoiceID of app appID has no payment: it
// does not exist (for this app), or it is not paid.
func (s *Service) WhyUnpaid(ctx context.Context, appID, invoiceID string) error {
	inv, err := s.GetInvoice(ctx, appID, invoiceID)
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s is %s", ErrInvoiceNotPaid, inv.ID, inv.Status)
}
