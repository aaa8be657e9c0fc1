package chart_test

import (
	"context"
	"testing"

	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/internal/testdb"
)

// TestSQLSpellings has PostgreSQL build each code from its SQL spelling and
// compares it with the Go one: reconciliation joins the ledger on them.
func TestSQLSpellings(t *testing.T) {
	db := testdb.New(t)
	var wallet, dev, fees, funding, transit string
	err := db.Pool.QueryRow(context.Background(), `SELECT `+chart.WalletSQL("$3::text", "$2::text")+`, `+
		chart.DeveloperPendingSQL("$1::text", "$2::text")+`, `+chart.FeesSQL("$2::text")+`, `+
		chart.FundingSQL("$2::text")+`, `+chart.PayoutsInTransitSQL("$2::text"),
		"dev_X1", "JPY", "usr_7").Scan(&wallet, &dev, &fees, &funding, &transit)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ sql, goCode string }{
		{wallet, chart.Wallet("usr_7", "JPY")},
		{dev, chart.DeveloperPending("dev_X1", "JPY")},
		{funding, chart.Funding("JPY")},
		{fees, chart.Fees("JPY")},
		{transit, chart.PayoutsInTransit("JPY")},
	} {
		if c.sql != c.goCode {
			t.Errorf("SQL builds %q, Go %q", c.sql, c.goCode)
		}
	}
}
