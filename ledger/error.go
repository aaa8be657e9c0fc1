package ledger

// Error is a ledger failure that callers branch on with errors.Is. Each one
// carries a stable code, which the HTTP API reports verbatim, and a kind,
// which decides the HTTP status: "invalid" (400), "not_found" (404),
// "conflict" (409), "insufficient_funds" (402) or "unprocessable" (422).
type Error struct {
	code string
	kind string
	msg  string
}

func (e *Error) Error() string { return e.msg }

// Code is the stable machine-readable code, such as "insufficient_funds".
func (e *Error) Code() string { return e.code }

// Kind is the class of failure, which the API maps to an HTTP status.
func (e *Error) Kind() string { return e.kind }

// Internal reports whether the detail wrapped after the error speaks in
// the ledger's own names (account codes, which hold the host's users' ids,
// and transfer ids) rather than of the caller's input (an amount, a
// currency, metadata): callers other than the platform's operators are
// told only the error's own message.
func (e *Error) Internal() bool { return !inputErrors[e.code] }

// inputErrors are the errors whose detail is about the caller's own input.
var inputErrors = map[string]bool{
	"amount_invalid": true, "amount_precision": true, "amount_not_positive": true,
	"unknown_currency": true, "metadata_invalid": true,
}

func newError(kind, code, msg string) *Error { return &Error{code: code, kind: kind, msg: msg} }

// Errors about amounts and currencies.
var (
	// ErrUnknownCurrency: the currency is not an ISO 4217 code minipay supports.
	ErrUnknownCurrency = newError("invalid", "unknown_currency", "unknown currency")
	// ErrAmountInvalid: the amount is not a plain decimal string in major units.
	ErrAmountInvalid = newError("invalid", "amount_invalid", "invalid amount")
	// ErrAmountPrecision: the amount has more decimal places than its currency allows.
	// It is never rounded; the caller must send a representable amount.
	ErrAmountPrecision = newError("invalid", "amount_precision", "too many decimal places")
	// ErrAmountTooLarge: the amount, or a balance it would produce, does not fit
	// in int64 minor units.
	ErrAmountTooLarge = newError("invalid", "amount_too_large", "amount too large")
	// ErrMetadataInvalid: metadata over its limits (50 keys, keys of 1–40
	// characters, values of at most 500, valid UTF-8).
	ErrMetadataInvalid = newError("invalid", "metadata_invalid", "invalid metadata")
	// ErrAmountNotPositive: a posting amount is zero or negative.
	ErrAmountNotPositive = newError("invalid", "amount_not_positive", "amount must be greater than zero")
)

// Errors about accounts.
var (
	// ErrAccountNotFound: no account has the given id or code.
	ErrAccountNotFound = newError("not_found", "account_not_found", "account not found")
	// ErrAccountExists: an account with this code already exists with other attributes.
	ErrAccountExists = newError("conflict", "account_exists", "an account with this code already exists")
	// ErrAccountInvalid: the account's code or normal balance is malformed.
	ErrAccountInvalid = newError("invalid", "account_invalid", "invalid account")
)

// Errors about transfers.
var (
	// ErrTransferInvalid: the transfer is malformed (bad id or code, wrong number
	// of postings, a posting with both or neither of debit and credit, metadata
	// over its limits).
	ErrTransferInvalid = newError("invalid", "transfer_invalid", "invalid transfer")
	// ErrUnbalanced: the debits and credits of a currency do not sum to the same
	// amount. Every transfer must balance in each currency it touches.
	ErrUnbalanced = newError("invalid", "unbalanced", "debits and credits do not balance")
	// ErrDuplicateAccount: the same account appears in two postings of a transfer.
	ErrDuplicateAccount = newError("invalid", "duplicate_account", "account appears in more than one posting")
	// ErrInsufficientFunds: the transfer would take a no_overdraft account below zero.
	// Nothing was written; the caller may retry after funding the account.
	ErrInsufficientFunds = newError("insufficient_funds", "insufficient_funds", "insufficient funds")
	// ErrIdempotencyConflict: a transfer with this id exists with different content.
	ErrIdempotencyConflict = newError("conflict", "idempotency_conflict", "transfer id already used for a different transfer")
	// ErrTransferNotFound: no transfer has the given id.
	ErrTransferNotFound = newError("not_found", "transfer_not_found", "transfer not found")
	// ErrNotPending: post or void was asked of a transfer that was never pending.
	ErrNotPending = newError("unprocessable", "transfer_not_pending", "transfer is not pending")
	// ErrAlreadyPosted: void was asked of a pending transfer that has been posted.
	ErrAlreadyPosted = newError("conflict", "transfer_already_posted", "pending transfer was already posted")
	// ErrAlreadyVoided: post was asked of a pending transfer that has been voided
	// (by a caller or by its timeout).
	ErrAlreadyVoided = newError("conflict", "transfer_already_voided", "pending transfer was already voided")
	// ErrPendingExpired: post was asked of a pending transfer whose timeout has passed.
	ErrPendingExpired = newError("conflict", "transfer_expired", "pending transfer has expired")
	// ErrAlreadyReversed: the transfer was reversed before; a transfer is reversed at most once.
	ErrAlreadyReversed = newError("conflict", "transfer_already_reversed", "transfer was already reversed")
	// ErrNotReversible: only posted transfers (not pending or voided ones) can be reversed.
	ErrNotReversible = newError("unprocessable", "transfer_not_reversible", "only posted transfers can be reversed")
	// ErrClosed: the ledger was closed; nothing was written.
	ErrClosed = newError("unavailable", "ledger_closed", "ledger is shutting down")
)

// FieldError ties an error to the input field it is about, such as
// "postings[1].debit", so the API can report it as the error's param.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Param is the name of the field at fault.
func (e *FieldError) Param() string { return e.Field }

func fieldErr(field string, err error) error { return &FieldError{Field: field, Err: err} }
