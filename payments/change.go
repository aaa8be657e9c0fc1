package payments

import (
	"time"

	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
)

// A payment's totals change after capture in three ways, each written by
// change's one guarded statement: a refund (amount_refunded and
// fee_refunded grow), a dispute opened (amount_disputed grows) and a
// dispute ruled (amount_disputed shrinks; when lost, what it held becomes
// refunded). The statement is guarded by the totals the change was
// computed from, so two changes computed from the same totals cannot both
// commit: the second affects no row, fails with ErrStateChanged and writes
// nothing. Together with the table's check (refunded + disputed <= amount)
// that is what keeps refunds and disputes of one payment, on any number of
// replicas, within what was captured.

// totalsDelta is a change of a payment's totals, in minor units.
type totalsDelta struct {
	refunded, feeRefunded, disputed int64
}

// changeSQL applies a totalsDelta; $8, when not null, also requires the
// refund window to be open at that time.
const changeSQL = `UPDATE payments SET amount_refunded = amount_refunded + $2, fee_refunded = fee_refunded + $3,
	amount_disputed = amount_disputed + $4, version = version + 1
	WHERE id = $1 AND amount_refunded = $5 AND fee_refunded = $6 AND amount_disputed = $7
	  AND ($8::timestamptz IS NULL OR refund_until > $8)`

// change is the statement that applies d to pay, for the caller to attach
// to the ledger transfer that moves the money; refundBy, when set, is the
// time by which the payment's refund window must still be open.
func change(pay Payment, d totalsDelta, refundBy time.Time) ledger.Statement {
	return ledger.Statement{SQL: changeSQL,
		Args: []any{pay.ID, d.refunded, d.feeRefunded, d.disputed, pay.AmountRefunded, pay.FeeRefunded, pay.AmountDisputed,
			null.Time(refundBy)},
		Check: ledger.ExpectRows(1, ErrStateChanged)}
}

// Hold is the statement that records amount of pay as held by a dispute
// just opened. pay must be the payment as the dispute's amount was
// computed from it: if it changed meanwhile the statement fails with
// ErrStateChanged, and so does the transfer it is attached to.
func Hold(pay Payment, amount int64) ledger.Statement {
	return change(pay, totalsDelta{disputed: amount}, time.Time{})
}

// Release is the statement that ends the hold of a dispute won: the amount
// is no longer disputed and the payment is whole again.
func Release(pay Payment, amount int64) ledger.Statement {
	return change(pay, totalsDelta{disputed: -amount}, time.Time{})
}

// Lose is the statement that ends the hold of a dispute lost: the amount
// becomes refunded, with feeShare of the platform's fee (FeeShare of pay
// and amount, as for a refund).
func Lose(pay Payment, amount, feeShare int64) ledger.Statement {
	return change(pay, totalsDelta{refunded: amount, feeRefunded: feeShare, disputed: -amount}, time.Time{})
}
