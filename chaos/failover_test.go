package chaos_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/pgcluster"
)

// TestFailover runs three replicas under checkout and ledger load against a
// pg_auto_failover formation (a monitor, a primary and a synchronous
// secondary) with a multi-host DATABASE_URL and
// target_session_attrs=read-write. Round 1 kills the primary's PostgreSQL
// with SIGKILL while its keeper lives on; round 2, once the formation is
// whole again, kills the primary's whole node (server and keeper). Each time
// the monitor promotes the secondary, except when in round 1 the keeper
// restarts its server before the monitor has seen it gone (a race pg_auto_failover
// means the keeper to win when it can: a crash it recovers from in seconds
// needs no failover). Either way the replicas find the primary on their
// own, without a restart. Afterwards every acknowledged checkout and transfer is
// in the ledger exactly once, the ledger audits clean, every event reached
// the receiver and the bank's history is linearizable; the report gives the
// seconds from each kill to the promotion and to the first confirm
// acknowledged after it.
//
// This replaces a test that promoted a hand-made standby with pg_ctl: the
// monitor's failure detection, its fencing of the old primary (a promoted
// node takes no writes until the old one is demoted or timed out) and the
// old primary rejoining as a secondary are what operators run, and what
// minipay must ride through.
func TestFailover(t *testing.T) {
	pgcluster.NeedAutoFailover(t)
	phase := max(6*time.Second, chaosDuration(t)/4) // load between the events
	ctx, cancel := context.WithTimeout(context.Background(), 4*phase+6*time.Minute)
	defer cancel()
	// fsync is off only because the servers are throwaway and the faults kill
	// processes, not the machine: what keeps acknowledged commits is the
	// synchronous secondary.
	f := pgcluster.NewFormation(t, "minipay", 2, "fsync = off", "shared_buffers = 32MB", "max_connections = 200")
	dbURL := f.URL("minipay")
	sc := startScenario(t, ctx, dbURL)
	sc.logf("DATABASE_URL=%s", dbURL)

	var rounds []failoverRound
	kills := []struct {
		name string
		kill func(*pgcluster.Node) time.Time
	}{
		{"kill -9 of the primary's PostgreSQL", (*pgcluster.Node).KillPostgres},
		{"kill -9 of the primary's whole node (PostgreSQL and its keeper)", (*pgcluster.Node).KillNode},
	}
	for i, k := range kills {
		time.Sleep(phase)
		if i > 0 {
			f.WaitHealthy(2 * time.Minute) // the old primary is a secondary again
			sc.logf("formation whole again")
			time.Sleep(phase / 2)
		}
		old, err := f.Primary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := failoverRound{what: k.name, old: old.Name}
		sc.logf("round %d: %s (%s)", i+1, k.name, old.Name)
		r.killed = k.kill(old)
		f.WaitFor(time.Minute, "new primary, or the old one restarted", func(st []pgcluster.NodeState) bool {
			for _, s := range st {
				if s.Name != old.Name && s.Current == s.Assigned && (s.Current == "wait_primary" || s.Current == "primary") {
					r.next = s.Name
					return true
				}
			}
			// A keeper that outlived its server starts it again, and may do
			// so before the monitor has seen it gone: no failover, then.
			for _, s := range st {
				if s.Name == old.Name && s.Current == "primary" && s.Assigned == "primary" && s.Healthy && old.TakesWrites(ctx) {
					r.next, r.inPlace = s.Name, true
					return true
				}
			}
			return false
		})
		r.promoted = time.Now()
		sc.logf("round %d: %s", i+1, r.outcome())
		r.firstConfirm = waitConfirm(t, sc, r.killed, r.promoted.Add(idempotency.Lease/2))
		sc.logf("round %d: first confirm acknowledged", i+1)
		waitClientsResumed(t, sc, r.killed, r.promoted.Add(idempotency.Lease/2))
		sc.logf("round %d: every bank client resumed", i+1)
		rounds = append(rounds, r)
	}
	time.Sleep(phase)

	c := sc.stopLoad(dbURL)
	c.audit()
	lines := []string{"DATABASE_URL " + dbURL}
	for i, r := range rounds {
		lines = append(lines, fmt.Sprintf("round %d: %s (%s): %s after %.1f s; first confirm acknowledged %.1f s after the kill",
			i+1, r.what, r.old, r.outcome(), r.promoted.Sub(r.killed).Seconds(), r.firstConfirm.Seconds()))
	}
	c.report(lines...)
}

// failoverRound is one kill and what followed.
type failoverRound struct {
	what, old, next  string
	inPlace          bool          // the old primary's keeper restarted it before the monitor failed over
	killed, promoted time.Time     // promoted: when next took writes
	firstConfirm     time.Duration // from the kill to the first confirm sent and acknowledged after it
}

func (r failoverRound) outcome() string {
	if r.inPlace {
		return r.next + " restarted in place by its keeper (no failover)"
	}
	return r.next + " promoted"
}

// waitConfirm waits until a confirm sent after since has been acknowledged,
// and returns how long after since the first one was; it fails t if none is
// by deadline. Requests cut off by the failover must not hold the clients
// up for an idempotency claim's whole lease: the deadline is half of it
// after the promotion.
func waitConfirm(t *testing.T, sc *scenario, since, deadline time.Time) time.Duration {
	t.Helper()
	for {
		sc.load.mu.Lock()
		var acked []time.Time
		for _, o := range sc.load.ops {
			if o.kind == "confirm" && o.acked && o.ackSent.After(since) {
				acked = append(acked, o.ackAt)
			}
		}
		sc.load.mu.Unlock()
		if len(acked) > 0 {
			return slices.MinFunc(acked, func(a, b time.Time) int { return a.Compare(b) }).Sub(since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no confirm acknowledged within %v of the kill", time.Since(since).Round(time.Second))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitClientsResumed waits until every bank client has finished an
// operation it started after since, and fails t if one has not by
// deadline. A client whose transfer was cut off by the failover retries it
// with the same Idempotency-Key; if the retries waited for the claim of the
// attempt that died, for the claim's whole lease, the client would start
// nothing new until then.
func waitClientsResumed(t *testing.T, sc *scenario, since, deadline time.Time) {
	t.Helper()
	after := since.Sub(sc.bank.hist.start).Nanoseconds()
	for {
		resumed := map[int]bool{}
		sc.bank.hist.mu.Lock()
		for _, op := range sc.bank.hist.ops {
			if op.Call > after && op.Return < 1<<62 {
				resumed[op.ClientId] = true
			}
		}
		sc.bank.hist.mu.Unlock()
		if len(resumed) == bankClients {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d bank clients finished an operation started after the kill, %v later",
				len(resumed), bankClients, time.Since(since).Round(time.Second))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
