package webhooks

import (
	"testing"

	"github.com/minipay/minipay/internal/testdb"
)

// TestOnCitus runs the outbox's tests on a Citus cluster (a coordinator and
// two workers, tables placed as `minipay migrate` places them): the feed
// (ordered by the coordinator's transaction ids) never skips an event of a
// late commit, and concurrent dispatchers never claim one delivery twice.
func TestOnCitus(t *testing.T) {
	testdb.WithCitus(t)
	t.Run("FeedWaitsForALateCommit", TestFeedWaitsForALateCommit)
	t.Run("FeedConcurrentWriters", TestFeedConcurrentWriters)
	t.Run("ConcurrentClaimsNeverOverlap", TestConcurrentClaimsNeverOverlap)
}
