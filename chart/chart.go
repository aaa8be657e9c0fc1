// Package chart is the platform's chart of accounts: the codes and kinds of
// the ledger accounts and the ids of the ledger transfers that the domain
// packages write and settlement reads back. All name them only through
// here, so a payment posted by one is always found by the other's
// reconciliation.
package chart

import "github.com/minipay/minipay/ledger"

// Prefixes of the account codes, for SQL that matches codes by currency or
// developer; the functions below build whole codes.
const (
	WalletPrefix           = "wallet:"                      // wallet:<user>:<CUR>
	DeveloperPrefix        = "dev:"                         // dev:<developer>:pending:<CUR>
	FeesPrefix             = "platform:fees:"               // platform:fees:<CUR>
	FundingPrefix          = "platform:funding:"            // platform:funding:<CUR>
	PayoutsInTransitPrefix = "platform:payouts_in_transit:" // platform:payouts_in_transit:<CUR>
	DisputesPrefix         = "platform:disputes:"           // platform:disputes:<CUR>
)

// Wallet is a host user's money in currency; it never goes below zero.
func Wallet(user, currency string) string { return WalletPrefix + user + ":" + currency }

// DeveloperPending is a developer's money not yet paid out: payments credit
// it, refunds debit it, settlement empties it.
func DeveloperPending(developerID, currency string) string {
	return DeveloperPrefix + developerID + pendingInfix + currency
}

const pendingInfix = ":pending:"

// Fees is the platform's fee income in currency.
func Fees(currency string) string { return FeesPrefix + currency }

// WalletAccount is the account of Wallet: credit-normal, never overdrawn.
func WalletAccount(user, currency string) ledger.AccountSpec {
	return ledger.AccountSpec{Code: Wallet(user, currency), Currency: currency, NormalBalance: ledger.CreditNormal, NoOverdraft: true}
}

// DeveloperPendingAccount is the account of DeveloperPending: credit-normal,
// and it may go negative (refunds and disputes after a payout).
func DeveloperPendingAccount(developerID, currency string) ledger.AccountSpec {
	return ledger.AccountSpec{Code: DeveloperPending(developerID, currency), Currency: currency, NormalBalance: ledger.CreditNormal}
}

// FeesAccount is the account of Fees: credit-normal.
func FeesAccount(currency string) ledger.AccountSpec {
	return ledger.AccountSpec{Code: Fees(currency), Currency: currency, NormalBalance: ledger.CreditNormal}
}

// Disputes holds the money of open disputes in currency: opening a dispute
// moves the disputed amount here from the developer's pending balance, and
// the ruling moves it on, back to the developer or to the user's wallet.
func Disputes(currency string) string { return DisputesPrefix + currency }

// DisputesAccount is the account of Disputes: credit-normal, like the
// pending balances its money comes from; it never goes below zero, since
// it only ever gives back what a dispute put in.
func DisputesAccount(currency string) ledger.AccountSpec {
	return ledger.AccountSpec{Code: Disputes(currency), Currency: currency, NormalBalance: ledger.CreditNormal, NoOverdraft: true}
}

// Funding is the platform's bank account in currency: top-ups come from it,
// paid-out payouts go back to it.
func Funding(currency string) string { return FundingPrefix + currency }

// FundingAccount is the account of Funding: debit-normal, an asset.
func FundingAccount(currency string) ledger.AccountSpec {
	return ledger.AccountSpec{Code: Funding(currency), Currency: currency, NormalBalance: ledger.DebitNormal}
}

// PayoutsInTransit holds payouts on their way to developers' banks.
func PayoutsInTransit(currency string) string { return PayoutsInTransitPrefix + currency }

// Prefixes of the transfer ids, derived from the objects they move money
// for, so a retry lands once.
const (
	PaymentPrefix    = "pay_"         // pay_<cs_…>; its capture is the ledger's <id>:post
	RefundPrefix     = "refund_"      // refund_<re_…>
	PayoutPrefix     = "payout_"      // payout_<po_…>
	PayoutPaidPrefix = "payout_paid_" // payout_paid_<po_…>
	// A dispute moves money twice: into the disputes account when opened,
	// out of it when ruled (won or lost, one ruling, so one id).
	DisputePrefix      = "dispute_"       // dispute_<dp_…>
	DisputeClosePrefix = "dispute_close_" // dispute_close_<dp_…>
)

// Payment is the transfer that pays checkout session sessionID.
func Payment(sessionID string) string { return PaymentPrefix + sessionID }

// Refund is the transfer of refund refundID.
func Refund(refundID string) string { return RefundPrefix + refundID }

// Payout is the transfer that moves payout payoutID into transit.
func Payout(payoutID string) string { return PayoutPrefix + payoutID }

// Dispute is the transfer that withdraws the amount of dispute disputeID
// from the developer.
func Dispute(disputeID string) string { return DisputePrefix + disputeID }

// DisputeClose is the transfer that moves the money of dispute disputeID
// on when it is ruled.
func DisputeClose(disputeID string) string { return DisputeClosePrefix + disputeID }

// PayoutPaid is the transfer that records payout payoutID as paid.
func PayoutPaid(payoutID string) string { return PayoutPaidPrefix + payoutID }

// SQL spellings of the codes, for queries that join the ledger on them:
// each takes SQL expressions (such as column names) and returns a SQL
// expression that builds the same code as its Go namesake.

// WalletSQL is Wallet in SQL.
func WalletSQL(user, currency string) string {
	return quote(WalletPrefix) + " || " + user + " || ':' || " + currency
}

// DeveloperPendingSQL is DeveloperPending in SQL.
func DeveloperPendingSQL(developerID, currency string) string {
	return quote(DeveloperPrefix) + " || " + developerID + " || " + quote(pendingInfix) + " || " + currency
}

// FeesSQL is Fees in SQL.
func FeesSQL(currency string) string { return quote(FeesPrefix) + " || " + currency }

// FundingSQL is Funding in SQL.
func FundingSQL(currency string) string { return quote(FundingPrefix) + " || " + currency }

// PayoutsInTransitSQL is PayoutsInTransit in SQL.
func PayoutsInTransitSQL(currency string) string {
	return quote(PayoutsInTransitPrefix) + " || " + currency
}

// quote makes a SQL string literal of one of the constants above (none
// contains a quote).
func quote(s string) string { return "'" + s + "'" }
