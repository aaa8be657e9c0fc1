package subscriptions_test

import (
	"testing"

	"github.com/minipay/minipay/internal/testdb"
)

// TestOnCitus runs subscriptions on a Citus cluster (a coordinator and two
// workers, tables placed as `minipay migrate` places them): signing once
// under concurrency, dunning, replicas renewing at once, refunds by a test
// clock, and a year of renewals that settles to the minor unit.
func TestOnCitus(t *testing.T) {
	testdb.WithCitus(t)
	t.Run("SignChargesTheFirstPeriod", TestSignChargesTheFirstPeriod)
	t.Run("SignedOnceUnderConcurrency", TestSignedOnceUnderConcurrency)
	t.Run("DunningRunsOut", TestDunningRunsOut)
	t.Run("TwoReplicasRenewAtOnce", TestTwoReplicasRenewAtOnce)
	t.Run("RefundWindowRunsByTheClock", TestRefundWindowRunsByTheClock)
	t.Run("Year", TestYearOfMonthlyRenewals)
}
