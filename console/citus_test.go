package console_test

import (
	"testing"

	"github.com/minipay/minipay/internal/testdb"
)

// TestOnCitus runs the console's pages on a Citus cluster (a coordinator
// and two workers, tables placed as `minipay migrate` places them): their
// lists and joins read distributed, reference and coordinator tables
// together.
func TestOnCitus(t *testing.T) {
	testdb.WithCitus(t)
	t.Run("PaymentPageAndRefund", TestPaymentPageAndRefund)
	t.Run("AdminPages", TestAdminPages)
	t.Run("FinancePages", TestFinancePages)
	t.Run("DisputeRuling", TestDisputeRuling)
}
