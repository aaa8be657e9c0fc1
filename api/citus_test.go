package api_test

import (
	"testing"

	"github.com/minipay/minipay/internal/testdb"
)

// TestOnCitus runs the HTTP API's checkout tests on a Citus cluster (a
// coordinator and two workers, tables distributed as `minipay migrate`
// does): checkout and refunds, manual capture, expiry of open sessions,
// races of confirms and refunds, disputes, and the platform changing what
// an app may sell (apps are a reference table there).
func TestOnCitus(t *testing.T) {
	testdb.WithCitus(t)
	t.Run("CheckoutFlow", TestCheckoutFlow)
	t.Run("ManualCapture", TestManualCapture)
	t.Run("SessionLifecycle", TestSessionLifecycle)
	t.Run("ConfirmRace", TestConfirmRace)
	t.Run("RefundRace", TestRefundRace)
	t.Run("DisputesOverHTTP", TestDisputesOverHTTP)
	t.Run("UpdateAppOptions", TestUpdateAppOptions)
}
