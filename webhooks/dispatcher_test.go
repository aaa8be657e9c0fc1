package webhooks

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/metrics"
)

func TestDeliversSignedEventsAndLogsAttempts(t *testing.T) {
	f := newFixture(t, quick())
	rc := newReceiver(t, ok)
	ep := f.endpoint(rc.URL+"/hooks", CheckoutSessionCompleted)
	other := Owner{AppID: "app_other", DeveloperID: "dev_other"}
	want := f.emit(f.app, CheckoutSessionCompleted, 3)
	f.emit(f.app, RefundSucceeded, 2) // not subscribed
	f.emit(other, CheckoutSessionCompleted, 2)
	f.run()

	f.waitFor("3 deliveries", func() bool {
		return f.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'`) == 3
	})
	got := rc.receipts()
	if len(got) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(got))
	}
	mustVerify(t, ep.Secret, got)
	ref, err := standardwebhooks.NewWebhook(ep.Secret)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		if err := ref.Verify(r.body, r.header); err != nil {
			t.Fatalf("the reference library rejects our signature: %v", err)
		}
		if r.header.Get("webhook-id") != r.eventID() || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("headers %v for %s", r.header, r.body)
		}
		// The body is what GET /v1/events/{id} returns, byte for byte.
		stored, err := f.svc.GetEvent(context.Background(), f.app, r.eventID())
		if err != nil || string(stored) != string(r.body) {
			t.Fatalf("body %s, stored %s (%v)", r.body, stored, err)
		}
		ids = append(ids, r.eventID())
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("got events %v, want %v", ids, want)
	}

	atts, _, err := f.svc.ListAttempts(context.Background(), f.app, ep.ID, 10, "")
	if err != nil || len(atts) != 3 {
		t.Fatalf("attempts %v %v", atts, err)
	}
	for _, a := range atts {
		if a.Outcome != "succeeded" || a.StatusCode == nil || *a.StatusCode != 200 || a.ResponseExcerpt != "ok" ||
			a.Error != "" || a.Attempt != 1 || a.NextAttemptAt != nil || a.LatencyMs <= 0 || a.Created == "" {
			t.Fatalf("attempt %+v", a)
		}
	}
	if _, _, err := f.svc.ListAttempts(context.Background(), other, ep.ID, 10, ""); !errors.Is(err, ErrEndpointNotFound) {
		t.Fatalf("another app reads the attempt log: %v", err)
	}
}

func TestFailingEndpointFollowsScheduleThenFails(t *testing.T) {
	f := newFixture(t, quick())
	long := strings.Repeat("é", 1000) // 2000 bytes: the excerpt cuts a rune in half
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(long))
	})
	ep := f.endpoint(rc.URL)
	f.emit(f.app, CheckoutSessionCompleted, 1)
	f.run()

	f.waitFor("the delivery to fail", func() bool {
		return f.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'`) == 1
	})
	if n := rc.count(); n != 4 {
		t.Fatalf("receiver got %d requests, want 1 + 3 retries", n)
	}
	atts, _, err := f.svc.ListAttempts(context.Background(), f.app, ep.ID, 10, "")
	if err != nil || len(atts) != 4 {
		t.Fatalf("attempts %v %v", atts, err)
	}
	slices.Reverse(atts)
	for i, a := range atts {
		if a.Attempt != i+1 || a.Outcome != "failed" || a.StatusCode == nil || *a.StatusCode != 500 ||
			!strings.Contains(a.Error, "500") || len(a.ResponseExcerpt) > 1024 || len(a.ResponseExcerpt) < 1000 {
			t.Fatalf("attempt %d: %+v", i, a)
		}
		if i == len(atts)-1 {
			if a.NextAttemptAt != nil {
				t.Fatalf("last attempt rescheduled: %+v", a)
			}
			continue
		}
		next, _ := time.Parse(time.RFC3339, *a.NextAttemptAt)
		started, _ := time.Parse(time.RFC3339, a.Created)
		if min := f.svc.opts.Schedule[i] * 9 / 10; next.Sub(started) < min {
			t.Fatalf("attempt %d rescheduled %s after it started, before the schedule's %s", i+1, next.Sub(started), min)
		}
	}
	if f.count(`SELECT count(*) FROM webhook_endpoints WHERE failing_since IS NOT NULL`) != 1 {
		t.Fatal("the endpoint is not marked failing")
	}
}

func TestScheduleJitterBounds(t *testing.T) {
	s := New(nil, Options{})
	if !slices.Equal(s.opts.Schedule, []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}) {
		t.Fatalf("default schedule %v", s.opts.Schedule)
	}
	now := time.Now()
	for n, d := range s.opts.Schedule {
		seen := map[time.Time]bool{}
		for range 200 {
			at, ok := s.nextAttempt(n+1, now)
			if !ok || at.Sub(now) < d*9/10 || at.Sub(now) > d*11/10 {
				t.Fatalf("after attempt %d: %s, want %s ±10%%", n+1, at.Sub(now), d)
			}
			seen[at] = true
		}
		if len(seen) < 50 {
			t.Fatalf("after attempt %d: only %d distinct times in 200: no jitter", n+1, len(seen))
		}
	}
	if _, ok := s.nextAttempt(len(s.opts.Schedule)+1, now); ok {
		t.Fatal("retried after the schedule ran out")
	}
}

func TestTimeoutConnectionCloseSlowAndFlapping(t *testing.T) {
	o := quick()
	o.Timeout = 300 * time.Millisecond
	o.Schedule = []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
	f := newFixture(t, o)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hang := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	closer := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	slow := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		time.Sleep(100 * time.Millisecond)
		ok(w, r, n)
	})
	flap := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n < 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ok(w, r, n)
	})
	eps := map[string]EndpointObject{}
	for name, rc := range map[string]*receiver{"hang": hang, "close": closer, "slow": slow, "flap": flap} {
		eps[name] = f.endpoint(rc.URL)
	}
	f.emit(f.app, CheckoutSessionCompleted, 1)
	f.run()
	f.waitFor("every delivery to end", func() bool {
		return f.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`) == 0
	})

	status := func(name string) (string, int) {
		var s string
		var n int
		if err := f.db.Pool.QueryRow(context.Background(), `SELECT status, attempts FROM webhook_deliveries WHERE endpoint_id = $1`,
			eps[name].ID).Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		return s, n
	}
	if s, n := status("slow"); s != "succeeded" || n != 1 {
		t.Fatalf("slow: %s after %d", s, n)
	}
	if s, n := status("flap"); s != "succeeded" || n != 3 {
		t.Fatalf("flapping: %s after %d attempts, want success at the third", s, n)
	}
	if f.count(`SELECT count(*) FROM webhook_endpoints WHERE id = $1 AND failing_since IS NULL`, eps["flap"].ID) != 1 {
		t.Fatal("a success did not end the flapping endpoint's failure run")
	}
	for _, name := range []string{"hang", "close"} {
		if s, n := status(name); s != "failed" || n != 4 {
			t.Fatalf("%s: %s after %d attempts", name, s, n)
		}
		atts, _, err := f.svc.ListAttempts(context.Background(), f.app, eps[name].ID, 1, "")
		if err != nil || len(atts) != 1 || atts[0].StatusCode != nil || atts[0].Error == "" {
			t.Fatalf("%s attempts: %+v %v", name, atts, err)
		}
		if name == "hang" && !strings.Contains(atts[0].Error, "no answer within") {
			t.Fatalf("timeout logged as %q", atts[0].Error)
		}
	}
	// The transport retries a closed connection inside each attempt.
	if n := closer.count(); n != 4*(1+o.TransportRetries) {
		t.Fatalf("closing receiver saw %d requests, want %d", n, 4*(1+o.TransportRetries))
	}
}

// TestOpenCircuitSpendsNoAttempts: an endpoint that always fails opens its
// circuit, which holds deliveries back instead of sending them. Held back
// is not an attempt: each delivery is marked failed only after the
// schedule's every real request, and the log tells the two apart.
func TestOpenCircuitSpendsNoAttempts(t *testing.T) {
	o := quick()
	o.BreakerFailures = 3
	o.BreakerCooldown = 50 * time.Millisecond
	o.EndpointConcurrency = 1 // one at a time, so exactly three requests trip it
	o.Metrics = metrics.New()
	f := newFixture(t, o)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusBadGateway) })
	ep := f.endpoint(rc.URL)
	f.emit(f.app, CheckoutSessionCompleted, 10)
	if b, err := f.svc.Backlog(context.Background()); err != nil || b.Pending != 10 || b.Due != 10 {
		t.Fatalf("backlog before the dispatcher runs: %+v, %v; want 10 pending, all due", b, err)
	}
	f.run()
	f.waitFor("every delivery to fail", func() bool {
		return f.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'`) == 10
	})
	attempts := 1 + len(o.Schedule)
	if n := rc.count(); n != 10*attempts {
		t.Fatalf("receiver got %d requests, want %d: every delivery's real attempts", n, 10*attempts)
	}
	if n := f.count(`SELECT count(*) FROM webhook_deliveries WHERE attempts <> $1`, attempts); n != 0 {
		t.Fatalf("%d deliveries failed with other than %d attempts", n, attempts)
	}
	skipped := f.count(`SELECT count(*) FROM webhook_attempts WHERE endpoint_id = $1 AND outcome = 'skipped' AND status_code IS NULL
		AND next_attempt_at IS NOT NULL`, ep.ID)
	sent := f.count(`SELECT count(*) FROM webhook_attempts WHERE endpoint_id = $1 AND outcome = 'failed'`, ep.ID)
	if skipped == 0 || sent != 10*attempts {
		t.Fatalf("%d held back and %d sent attempts logged; want some held back and %d sent", skipped, sent, 10*attempts)
	}
	breakers := o.Metrics.WebhookBreakers
	closed := testutil.ToFloat64(breakers.WithLabelValues("closed"))
	notClosed := testutil.ToFloat64(breakers.WithLabelValues("open")) + testutil.ToFloat64(breakers.WithLabelValues("half-open"))
	if closed != 0 || notClosed != 1 {
		t.Fatalf("breaker gauges: %v closed, %v open or half-open; want the one endpoint not closed", closed, notClosed)
	}
	if b, err := f.svc.Backlog(context.Background()); err != nil || b.Pending != 0 || b.Due != 0 || b.OldestDue != 0 {
		t.Fatalf("backlog after every delivery failed: %+v, %v", b, err)
	}
}

func TestHealthyEndpointsNotDelayedByDeadOrHanging(t *testing.T) {
	o := quick()
	o.Timeout = 5 * time.Minute // the hanging endpoint holds its workers for the whole test
	o.Schedule = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
	o.BreakerFailures = 5
	f := newFixture(t, o)
	release := make(chan struct{})
	var once sync.Once
	unhang := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unhang)
	hang := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		<-release
		ok(w, r, n)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // connections are refused from now on
	healthy := newReceiver(t, ok)
	f.endpoint(hang.URL)
	f.endpoint(dead)
	f.endpoint(healthy.URL)
	const events = 300
	f.emit(f.app, CheckoutSessionCompleted, events)
	f.run()
	// If the hanging endpoint blocked the others, this would wait for
	// its five-minute timeout and give up first.
	f.waitFor("the healthy endpoint to get every event", func() bool { return healthy.distinct() == events })
	if n := hang.count(); n > o.EndpointConcurrency {
		t.Fatalf("the hanging endpoint has %d requests in flight, more than its %d", n, o.EndpointConcurrency)
	}
	unhang()
	f.waitFor("the hanging endpoint to catch up", func() bool { return hang.distinct() == events })
}

func TestRedeliver(t *testing.T) {
	f := newFixture(t, quick())
	rc := newReceiver(t, ok)
	ep := f.endpoint(rc.URL)
	evt := f.emit(f.app, CheckoutSessionCompleted, 1)[0]
	f.run()
	f.waitFor("the first delivery", func() bool { return rc.count() == 1 })
	r, err := f.svc.Redeliver(context.Background(), f.app, evt, "")
	if err != nil || !slices.Equal(r.Endpoints, []string{ep.ID}) {
		t.Fatalf("redeliver: %+v %v", r, err)
	}
	f.waitFor("the redelivery", func() bool { return rc.count() == 2 })
	got := rc.receipts()
	if got[0].header.Get("webhook-id") != got[1].header.Get("webhook-id") || string(got[0].body) != string(got[1].body) {
		t.Fatal("a redelivery differs from the delivery")
	}
	mustVerify(t, ep.Secret, got)

	other := Owner{AppID: "app_other", DeveloperID: "dev_other"}
	if _, err := f.svc.Redeliver(context.Background(), other, evt, ""); !errors.Is(err, ErrEventNotFound) {
		t.Fatalf("another app redelivers: %v", err)
	}
	if _, err := f.svc.Redeliver(context.Background(), f.app, "evt_nope", ""); !errors.Is(err, ErrEventNotFound) {
		t.Fatalf("unknown event: %v", err)
	}
	disabled := StatusDisabled
	if _, err := f.svc.UpdateEndpoint(context.Background(), f.app, ep.ID, EndpointUpdate{Status: &disabled}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Redeliver(context.Background(), f.app, evt, ep.ID); !errors.Is(err, ErrEndpointDisabled) {
		t.Fatalf("redeliver to a disabled endpoint: %v", err)
	}
	if _, err := f.svc.Redeliver(context.Background(), f.app, evt, ""); !errors.Is(err, ErrNoEndpoints) {
		t.Fatalf("redeliver with no enabled endpoint: %v", err)
	}
}

func TestEndpointFailingTooLongIsDisabledWithAnEvent(t *testing.T) {
	o := quick()
	o.DisableAfter = 300 * time.Millisecond
	o.Schedule = []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond,
		100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}
	f := newFixture(t, o)
	broken := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusInternalServerError) })
	watcher := newReceiver(t, ok)
	bad := f.endpoint(broken.URL)
	f.endpoint(watcher.URL, EndpointDisabled)
	f.emit(f.app, CheckoutSessionCompleted, 1)
	f.run()
	f.waitFor("the disabled event", func() bool { return watcher.count() == 1 })

	e, err := f.svc.GetEndpoint(context.Background(), f.app, bad.ID)
	if err != nil || e.Status != StatusDisabled || e.DisabledReason == nil || *e.DisabledReason != "failing" {
		t.Fatalf("endpoint %+v %v", e, err)
	}
	got := watcher.receipts()[0]
	if !strings.Contains(string(got.body), `"type":"webhook_endpoint.disabled"`) || !strings.Contains(string(got.body), bad.ID) {
		t.Fatalf("disabled event %s", got.body)
	}
	// Its remaining retries are canceled, not sent.
	f.waitFor("the delivery to be canceled", func() bool {
		return f.count(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'canceled'`, bad.ID) == 1
	})
	sent := broken.count()
	if sent > 7 {
		t.Fatalf("%d requests to a disabled endpoint", sent)
	}
}

func TestRotationSignsWithBothSecrets(t *testing.T) {
	f := newFixture(t, quick())
	rc := newReceiver(t, ok)
	ep := f.endpoint(rc.URL)
	rotated, err := f.svc.RotateSecret(context.Background(), f.app, ep.ID, Rotation{})
	if err != nil || rotated.Secret == "" || rotated.Secret == ep.Secret || rotated.PreviousSecretExpiresAt == nil {
		t.Fatalf("rotate: %+v %v", rotated, err)
	}
	f.emit(f.app, CheckoutSessionCompleted, 1)
	f.run()
	f.waitFor("the delivery", func() bool { return rc.count() == 1 })
	got := rc.receipts()
	if sigs := strings.Fields(got[0].header.Get("webhook-signature")); len(sigs) != 2 {
		t.Fatalf("signatures %q, want two", sigs)
	}
	mustVerify(t, ep.Secret, got)
	mustVerify(t, rotated.Secret, got)

	// After the grace period only the new secret signs.
	if _, err := f.db.Pool.Exec(context.Background(), `UPDATE webhook_endpoints SET old_secret_expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	f.emit(f.app, CheckoutSessionCompleted, 1)
	f.waitFor("the second delivery", func() bool { return rc.count() == 2 })
	last := rc.receipts()[1:]
	if sigs := strings.Fields(last[0].header.Get("webhook-signature")); len(sigs) != 1 {
		t.Fatalf("signatures %q after the grace period", sigs)
	}
	mustVerify(t, rotated.Secret, last)
	ref, _ := standardwebhooks.NewWebhook(ep.Secret)
	if err := ref.Verify(last[0].body, last[0].header); err == nil {
		t.Fatal("the retired secret still verifies")
	}
}

// Concurrent claimers never share a row.
func TestConcurrentClaimsNeverOverlap(t *testing.T) {
	o := quick()
	o.Lease = time.Hour
	f := newFixture(t, o)
	f.endpoint("http://127.0.0.1:9/")
	f.emit(f.app, CheckoutSessionCompleted, 300)
	var (
		mu     sync.Mutex
		claims = map[int64]int{}
		wg     sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				jobs, err := f.svc.claim(context.Background(), 7, nil)
				if err != nil {
					t.Error(err)
				}
				if len(jobs) == 0 {
					return
				}
				mu.Lock()
				for _, j := range jobs {
					claims[j.deliveryID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for id, n := range claims {
		if n > 1 {
			t.Fatalf("delivery %d claimed %d times", id, n)
		}
	}
	if len(claims) != 300 {
		t.Fatalf("claimed %d of 300", len(claims))
	}
}

// A process that claims deliveries and dies (no finish, no release) only
// delays them by the lease.
func TestDeadClaimersLeaseRunsOut(t *testing.T) {
	o := quick()
	o.Timeout = 250 * time.Millisecond
	o.Lease = 500 * time.Millisecond
	f := newFixture(t, o)
	rc := newReceiver(t, ok)
	f.endpoint(rc.URL)
	f.emit(f.app, CheckoutSessionCompleted, 50)
	jobs, err := f.svc.claim(context.Background(), 100, nil)
	if err != nil || len(jobs) != 50 {
		t.Fatalf("claimed %d: %v", len(jobs), err)
	}
	// The claimer "dies" here. A dispatcher delivers everything once the lease ends.
	f.run()
	f.waitFor("every event", func() bool { return rc.distinct() == 50 })
	f.waitFor("every delivery to be recorded", func() bool {
		return f.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded' AND attempts = 1`) == 50
	})
}

func TestShutdownReleasesInFlightDeliveries(t *testing.T) {
	o := quick()
	o.ShutdownGrace = 100 * time.Millisecond
	o.Timeout = time.Minute
	f := newFixture(t, o)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	f.endpoint(rc.URL)
	f.emit(f.app, CheckoutSessionCompleted, 10)
	stop := f.run()
	f.waitFor("requests in flight", func() bool { return rc.count() >= 4 })
	stop()
	if n := f.count(`SELECT count(*) FROM webhook_deliveries
		WHERE status = 'pending' AND lock_token IS NULL AND attempts = 0 AND next_attempt_at <= now()`); n != 10 {
		t.Fatalf("%d of 10 deliveries given back at shutdown", n)
	}
	if n := f.count(`SELECT count(*) FROM webhook_attempts`); n != 0 {
		t.Fatalf("%d attempts logged for deliveries cut short by shutdown", n)
	}
}

// Deliveries are made in the event's own transaction, so an event whose
// transaction commits after a later one is not skipped.
func TestEventsCommittedOutOfOrderAreDelivered(t *testing.T) {
	f := newFixture(t, quick())
	rc := newReceiver(t, ok)
	f.endpoint(rc.URL)
	ctx := context.Background()
	early, err := f.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Rollback(ctx)
	earlyID := id.New("evt")
	if err := Emit(ctx, early, Event{ID: earlyID, Type: PaymentCaptured, DeveloperID: f.app.DeveloperID, AppID: f.app.AppID,
		Object: map[string]any{"version": 1}, ObjectID: "cs_1", ObjectVersion: 1}); err != nil {
		t.Fatal(err)
	}
	f.run()
	f.emit(f.app, PaymentCaptured, 1)
	f.waitFor("the later event", func() bool { return rc.count() == 1 })
	if err := early.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	f.waitFor("the earlier event", func() bool { return rc.count() == 2 })
	if rc.receipts()[1].eventID() != earlyID {
		t.Fatal("wrong event")
	}
	// A rolled-back event is never sent.
	err = pgx.BeginFunc(ctx, f.db.Pool, func(tx pgx.Tx) error {
		if err := Emit(ctx, tx, Event{Type: PaymentCaptured, DeveloperID: f.app.DeveloperID, AppID: f.app.AppID,
			Object: map[string]any{}, ObjectID: "x"}); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if err == nil || f.count(`SELECT count(*) FROM webhook_deliveries`) != 2 {
		t.Fatalf("rolled-back event: %v", err)
	}
}
