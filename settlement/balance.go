package settlement

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/internal/id"
)

// Balance transaction types.
const (
	TxnPayment = "payment"
	TxnRefund  = "refund"
	TxnPayout  = "payout"
	// TxnDispute withdraws a dispute's amount from the developer when it
	// is opened (negative, no fee).
	TxnDispute = "dispute"
	// TxnDisputeReversal reinstates it when the developer wins (positive,
	// no fee).
	TxnDisputeReversal = "dispute_reversal"
	// TxnDisputeFeeReturn gives the developer back, when the dispute is
	// lost, the platform's fee share that goes to the user as for a
	// refund: amount 0, a negative fee, a positive net. A withdrawal and a
	// fee return together are what a refund of the amount would have been.
	TxnDisputeFeeReturn = "dispute_fee_return"
)

// BalanceTxn is one movement of a developer's money: a payment (positive),
// a refund (negative), a dispute's withdrawal, reinstatement or fee return,
// or a payout. Amounts are minor units of Currency; Net is Amount minus Fee.
type BalanceTxn struct {
	ID          string
	DeveloperID string
	AppID       string
	Type        string
	Currency    string
	Amount      int64
	Fee         int64
	Net         int64
	SourceID    string    // the payment (cs_…, in_…), refund (re_…), dispute (dp_…) or payout (po_…)
	PaymentID   string    // the payment behind a payment, refund or dispute
	AvailableOn time.Time // when it may be paid out
	PayoutID    string    // the payout that paid it out, once settled
	Created     time.Time
}

// InsertBalanceTxnRow returns what records t, for the caller to commit with
// the ledger transfer that moves the money: set-based SQL that takes each
// column as an array, and t's row, so that the balance transactions of many
// transfers are written by one statement (see ledger.Statement.Row).
func InsertBalanceTxnRow(t BalanceTxn) (sql string, row []any) {
	return `INSERT INTO balance_transactions (id, developer_id, app_id, type, currency, amount, fee, net, source_id, payment_id, available_on)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[],
			$9::text[], $10::text[], $11::timestamptz[])`, balanceTxnRow(t)
}

// balanceTxnRow is t's values in the column order of InsertBalanceTxnRow.
func balanceTxnRow(t BalanceTxn) []any {
	if t.ID == "" {
		t.ID = id.New("txn")
	}
	var app, payment *string
	if t.AppID != "" {
		app = &t.AppID
	}
	if t.PaymentID != "" {
		payment = &t.PaymentID
	}
	return []any{t.ID, t.DeveloperID, app, t.Type, t.Currency, t.Amount, t.Fee, t.Amount - t.Fee, t.SourceID, payment, t.AvailableOn}
}

// Money is an amount in minor units of a currency.
type Money struct {
	Currency string
	Amount   int64
}

// Balance is a developer's unsettled money per currency: Pending has not
// matured yet (its holding period runs), Available goes out with the next
// settlement run.
type Balance struct {
	Pending   []Money
	Available []Money
}

// Balance returns developer's balance now.
func (s *Service) Balance(ctx context.Context, developerID string) (Balance, error) {
	rows, err := s.db.Query(ctx, `
		SELECT currency,
		       coalesce(sum(net) FILTER (WHERE available_on > now()), 0)::text,
		       coalesce(sum(net) FILTER (WHERE available_on <= now()), 0)::text
		FROM balance_transactions
		WHERE developer_id = $1 AND payout_id IS NULL AND type <> 'payout'
		GROUP BY currency ORDER BY currency`, developerID)
	if err != nil {
		return Balance{}, fmt.Errorf("balance of %s: %w", developerID, err)
	}
	var (
		b                   Balance
		cur, pending, avail string
	)
	_, err = pgx.ForEachRow(rows, []any{&cur, &pending, &avail}, func() error {
		p, err1 := parseSum(pending)
		a, err2 := parseSum(avail)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("balance of %s in %s out of range", developerID, cur)
		}
		b.Pending = append(b.Pending, Money{Currency: cur, Amount: p})
		b.Available = append(b.Available, Money{Currency: cur, Amount: a})
		return nil
	})
	if err != nil {
		return Balance{}, fmt.Errorf("balance of %s: %w", developerID, err)
	}
	return b, nil
}

func parseSum(s string) (int64, error) {
	var v int64
	_, err := fmt.Sscan(s, &v)
	if err != nil || v == math.MaxInt64 || v == math.MinInt64 {
		return 0, fmt.Errorf("sum %q out of range", s)
	}
	return v, nil
}

const balanceTxnColumns = `id, developer_id, coalesce(app_id, ''), type, currency, amount, fee, net, source_id,
	coalesce(payment_id, ''), available_on, coalesce(payout_id, ''), created_at`

func scanBalanceTxn(row pgx.Row) (BalanceTxn, error) {
	var t BalanceTxn
	err := row.Scan(&t.ID, &t.DeveloperID, &t.AppID, &t.Type, &t.Currency, &t.Amount, &t.Fee, &t.Net, &t.SourceID,
		&t.PaymentID, &t.AvailableOn, &t.PayoutID, &t.Created)
	return t, err
}

// ListBalanceTransactions pages through a developer's balance
// transactions, newest first, after the id startingAfter.
func (s *Service) ListBalanceTransactions(ctx context.Context, developerID string, limit int, startingAfter string) ([]BalanceTxn, bool, error) {
	if startingAfter == "" {
		startingAfter = "\uffff"
	}
	rows, err := s.db.Query(ctx, `SELECT `+balanceTxnColumns+` FROM balance_transactions
		WHERE developer_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, developerID, startingAfter, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list balance transactions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (BalanceTxn, error) { return scanBalanceTxn(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list balance transactions: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
