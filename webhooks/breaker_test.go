package webhooks

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestShortOutageLosesNothing: a receiver that fails for a while, long
// enough to open the endpoint's circuit, then recovers. Attempts the open
// circuit holds back are not attempts: they take no slot of the schedule,
// so every event is delivered once the receiver answers again, well within
// the real attempts the schedule allows.
func TestShortOutageLosesNothing(t *testing.T) {
	o := quick()
	o.Schedule = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, 1600 * time.Millisecond}
	o.BreakerFailures = 3
	o.BreakerCooldown = 300 * time.Millisecond
	o.EndpointConcurrency = 2
	f := newFixture(t, o)
	var healthy atomic.Bool
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		ok(w, r, n)
	})
	ep := f.endpoint(rc.URL)
	const events = 10
	f.emit(f.app, CheckoutSessionCompleted, events)
	f.run()
	f.waitFor("the circuit to open", func() bool {
		return f.count(`SELECT count(*) FROM webhook_attempts WHERE outcome = 'skipped'`) > 0
	})
	time.Sleep(700 * time.Millisecond) // the outage: about a second in all
	healthy.Store(true)
	f.waitFor("every delivery to end", func() bool {
		return f.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`) == 0
	})
	if n := f.count(`SELECT count(*) FROM webhook_deliveries WHERE status <> 'succeeded'`); n != 0 {
		t.Fatalf("%d of %d deliveries did not succeed after a short outage", n, events)
	}
	if rc.distinct() != events {
		t.Fatalf("the receiver got %d of %d events", rc.distinct(), events)
	}
	// attempts counts real requests only: the failed ones and the success.
	if n := f.count(`SELECT count(*) FROM webhook_deliveries d WHERE attempts <> (SELECT count(*) FROM webhook_attempts a
		WHERE a.delivery_id = d.id AND a.outcome <> 'skipped')`); n != 0 {
		t.Fatalf("%d deliveries count attempts that were never sent", n)
	}
	if n := f.count(`SELECT count(*) FROM webhook_attempts WHERE endpoint_id = $1 AND outcome <> 'skipped'`, ep.ID); n != rc.count() {
		t.Fatalf("%d attempts logged as sent, the receiver got %d requests", n, rc.count())
	}
}
