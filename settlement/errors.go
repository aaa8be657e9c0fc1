package settlement

import "github.com/minipay/minipay"

// Errors a caller may branch on.
var (
	// ErrCutoffInvalid: the cutoff is missing or in the future. A run pays
	// out what has matured, so its cutoff must have passed.
	ErrCutoffInvalid = minipay.NewError(minipay.KindInvalid, "cutoff_invalid", "the cutoff must be an RFC 3339 time that has passed")
	// ErrRunNotFound: no settlement run has this id.
	ErrRunNotFound = minipay.NewError(minipay.KindNotFound, "settlement_run_not_found", "no such settlement run")
	// ErrRunNotFinished: the run is still running; its report is not final.
	// Retry once the run has completed.
	ErrRunNotFinished = minipay.NewError(minipay.KindConflict, "settlement_run_running", "the settlement run has not finished")
	// ErrPayoutNotFound: no payout with this id that the caller may see.
	ErrPayoutNotFound = minipay.NewError(minipay.KindNotFound, "payout_not_found", "no such payout")
	// ErrPayoutChanged: the payout was marked paid concurrently; read it again.
	ErrPayoutChanged = minipay.NewError(minipay.KindConflict, "payout_changed", "the payout changed meanwhile")
	// ErrScheduleInvalid: a settlement schedule that cannot be parsed.
	ErrScheduleInvalid = minipay.NewError(minipay.KindInvalid, "schedule_invalid", `settlement schedule must be "daily", "daily@HH:MM", "every <duration>" or "off"`)
)
