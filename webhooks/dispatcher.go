package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/jackc/pgx/v5"
	"github.com/sony/gobreaker/v2"

	"github.com/minipay/minipay/internal/id"
)

// How much of a response body the attempt log keeps, and how much more is
// read (and thrown away) so the connection can be reused.
const (
	excerptBytesMax = 1024
	drainBytesMax   = 64 << 10
	flushBatchMax   = 512
)

// job is one claimed delivery: everything needed to attempt it.
type job struct {
	deliveryID int64
	token      int64 // the claim's lock token; finishing needs it
	eventID    string
	eventType  string
	endpointID string
	url        string
	enabled    bool // the endpoint is still enabled
	attempts   int  // attempts made before this one
	body       []byte
	keys       [][]byte // signing keys, current first
	keyErr     error    // the secret could not be decrypted
	leaseEnd   time.Time
	created    time.Time // when the event was written
}

// outcome is how one claimed delivery ended in this process.
type outcome int

const (
	outcomeSucceeded outcome = iota // a 2xx answer
	outcomeFailed                   // sent (or tried), no 2xx: retried per the schedule
	outcomeSkipped                  // not sent, the endpoint's circuit holds requests back: due again when it lets them through, no attempt spent
	outcomeReleased                 // not attempted (shutdown, lease too short): due again now
	outcomeCanceled                 // the endpoint is disabled or deleted: never sent
)

var outcomeNames = [...]string{"succeeded", "failed", "skipped", "released", "canceled"}

func (o outcome) String() string { return outcomeNames[o] }

// result is one finished job, to be written by the finisher.
type result struct {
	job       *job
	outcome   outcome
	retryAt   time.Time // skipped: when the circuit lets requests through again
	started   time.Time
	latency   time.Duration
	status    int
	excerpt   string
	err       string
	attemptID string
}

// dispatcher is one process's share of the delivery work. Claimed jobs
// wait in per-endpoint queues, each served by at most EndpointConcurrency
// goroutines, so a slow endpoint only ever holds its own workers and
// queue; endpoints whose queue is full are left out of the next claims.
type dispatcher struct {
	s       *Service
	client  *retryablehttp.Client
	sendCtx context.Context // canceled when the shutdown grace ends
	results chan result
	wake    chan struct{} // capacity was freed

	outstanding atomic.Int64 // claimed and not yet written back
	stopping    atomic.Bool
	workers     sync.WaitGroup

	mu        sync.Mutex
	endpoints map[string]*endpointState
}

type endpointState struct {
	breaker *gobreaker.CircuitBreaker[sent]
	queue   []*job
	active  int // workers serving the queue
	// openUntil is when the open circuit lets its probe through (Unix
	// nanoseconds). Written by the breaker's state changes, which run
	// under the breaker's lock: atomic, so they need no other lock.
	openUntil atomic.Int64
}

// heldBack reports whether the endpoint's circuit holds requests back in
// this process: open, or half-open with its one probe out.
func (st *endpointState) heldBack() bool {
	switch st.breaker.State() {
	case gobreaker.StateOpen:
		return true
	case gobreaker.StateHalfOpen:
		return st.breaker.Counts().Requests > 0
	}
	return false
}

// sent is what one HTTP attempt got back.
type sent struct {
	status  int
	excerpt string
}

// Run delivers due webhooks until ctx ends, then lets attempts in flight
// finish for up to ShutdownGrace, gives the rest of its claims back, and
// writes every outcome before returning. Any number of processes may run
// it on the same database.
func (s *Service) Run(ctx context.Context) {
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	d := &dispatcher{
		s: s, client: s.newClient(), sendCtx: sendCtx,
		results:   make(chan result, s.opts.Workers),
		wake:      make(chan struct{}, 1),
		endpoints: map[string]*endpointState{},
	}
	s.running.Store(d)
	defer s.running.CompareAndSwap(d, nil)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		d.finishLoop()
	}()
	maintained := make(chan struct{})
	go func() {
		defer close(maintained)
		s.maintain(ctx)
	}()

	d.claimLoop(ctx)

	d.stopping.Store(true)
	d.releaseQueued()
	grace := time.AfterFunc(s.opts.ShutdownGrace, cancelSend)
	d.workers.Wait()
	grace.Stop()
	close(d.results)
	<-finished
	<-maintained
}

func (d *dispatcher) claimLoop(ctx context.Context) {
	o := d.s.opts
	for ctx.Err() == nil {
		free := int64(o.Workers) - d.outstanding.Load()
		full := false
		if free > 0 {
			limit := min(int(free), o.ClaimBatch)
			jobs, err := d.s.claim(ctx, limit, d.saturated())
			if err != nil && ctx.Err() == nil {
				o.Log.Error("webhooks: claim deliveries", "err", err)
			}
			d.outstanding.Add(int64(len(jobs)))
			for _, j := range jobs {
				d.enqueue(j)
			}
			full = len(jobs) == limit
		}
		if full {
			continue // more may be due right now
		}
		t := time.NewTimer(o.PollInterval)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-d.wake:
			if free > 0 {
				<-t.C // capacity was not what held us back: keep polling on time
			}
		}
		t.Stop()
	}
}

// saturated lists the endpoints with a full round of jobs already waiting
// here, or whose circuit holds requests back, which the next claim leaves
// to other processes or to later.
func (d *dispatcher) saturated() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for id, st := range d.endpoints {
		if len(st.queue) >= d.s.opts.EndpointConcurrency || st.heldBack() {
			out = append(out, id)
		}
	}
	return out
}

func (d *dispatcher) endpoint(endpointID string) *endpointState {
	st := d.endpoints[endpointID]
	if st == nil {
		o := d.s.opts
		st = &endpointState{}
		st.breaker = gobreaker.NewCircuitBreaker[sent](gobreaker.Settings{
			Name:        endpointID,
			MaxRequests: 1,
			Timeout:     o.BreakerCooldown,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(o.BreakerFailures) },
			// An attempt cut short by our own shutdown says nothing about the endpoint.
			IsExcluded: func(err error) bool { return errors.Is(err, errShutdown) },
			OnStateChange: func(_ string, from, to gobreaker.State) {
				if to == gobreaker.StateOpen {
					st.openUntil.Store(time.Now().Add(o.BreakerCooldown).UnixNano())
				}
				o.Metrics.WebhookBreakers.WithLabelValues(from.String()).Dec()
				o.Metrics.WebhookBreakers.WithLabelValues(to.String()).Inc()
			},
		})
		o.Metrics.WebhookBreakers.WithLabelValues(gobreaker.StateClosed.String()).Inc()
		d.endpoints[endpointID] = st
	}
	return st
}

func (d *dispatcher) enqueue(j *job) {
	if !j.enabled {
		d.results <- result{job: j, outcome: outcomeCanceled}
		return
	}
	d.mu.Lock()
	st := d.endpoint(j.endpointID)
	st.queue = append(st.queue, j)
	spawn := st.active < d.s.opts.EndpointConcurrency
	if spawn {
		st.active++
	}
	d.mu.Unlock()
	if spawn {
		d.workers.Add(1)
		go d.serve(st)
	}
}

// serve works through an endpoint's queue and exits when it is empty.
func (d *dispatcher) serve(st *endpointState) {
	defer d.workers.Done()
	for {
		d.mu.Lock()
		if len(st.queue) == 0 {
			st.active--
			d.mu.Unlock()
			return
		}
		j := st.queue[0]
		st.queue[0] = nil
		st.queue = st.queue[1:]
		d.mu.Unlock()
		d.results <- d.attempt(st, j)
	}
}

// releaseQueued gives back every job not yet started.
func (d *dispatcher) releaseQueued() {
	d.mu.Lock()
	var jobs []*job
	for _, st := range d.endpoints {
		jobs = append(jobs, st.queue...)
		st.queue = nil
	}
	d.mu.Unlock()
	for _, j := range jobs {
		d.results <- result{job: j, outcome: outcomeReleased}
	}
}

var errShutdown = errors.New("webhooks: shutting down")

// attempt delivers j once, through the endpoint's circuit breaker.
func (d *dispatcher) attempt(st *endpointState, j *job) result {
	o := d.s.opts
	// Never start what might outlive the lease: another process could
	// claim the delivery mid-request.
	if d.stopping.Load() || time.Until(j.leaseEnd) < o.Timeout {
		return result{job: j, outcome: outcomeReleased}
	}
	r := result{job: j, started: time.Now(), attemptID: newAttemptID()}
	if j.keyErr != nil {
		r.outcome, r.err = outcomeFailed, j.keyErr.Error()
		return r
	}
	got, err := st.breaker.Execute(func() (sent, error) { return d.send(j) })
	r.latency = time.Since(r.started)
	r.status, r.excerpt = got.status, got.excerpt
	switch {
	case err == nil:
		r.outcome = outcomeSucceeded
	case errors.Is(err, gobreaker.ErrOpenState):
		r.outcome, r.err = outcomeSkipped, "not sent: the endpoint's circuit is open after repeated failures"
		r.retryAt = time.Unix(0, st.openUntil.Load())
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		// Half-open: one probe is out and decides for the rest.
		r.outcome, r.err = outcomeSkipped, "not sent: the endpoint's circuit is testing it with another delivery"
		r.retryAt = time.Now().Add(min(o.BreakerCooldown, time.Second))
	case errors.Is(err, errShutdown):
		r.outcome = outcomeReleased
	default:
		r.outcome, r.err = outcomeFailed, err.Error()
	}
	o.Metrics.WebhookAttempts.WithLabelValues(r.outcome.String()).Inc()
	if r.outcome == outcomeSucceeded || r.outcome == outcomeFailed {
		o.Metrics.WebhookAttemptDuration.Observe(r.latency.Seconds())
	}
	if r.outcome == outcomeSucceeded {
		o.Metrics.WebhookEventToDelivery.Observe(time.Since(j.created).Seconds())
	}
	if r.outcome == outcomeSucceeded || r.outcome == outcomeFailed {
		o.Log.Info("webhook attempt", "event", j.eventID, "type", j.eventType, "endpoint", j.endpointID,
			"url", redactedURL(j.url), "attempt", j.attempts+1, "outcome", r.outcome.String(), "status", r.status,
			"ms", r.latency.Milliseconds(), "err", r.err)
	}
	return r
}

// redactedURL is u without its query and user info, which may hold tokens:
// logs never carry a secret.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable url)"
	}
	p.User, p.RawQuery, p.Fragment = nil, "", ""
	return p.String()
}

// send POSTs the event, signed, and reads the start of the answer. A non-2xx
// answer is an error (with the answer) so the breaker counts it.
func (d *dispatcher) send(j *job) (sent, error) {
	ctx, cancel := context.WithTimeout(d.sendCtx, d.s.opts.Timeout)
	defer cancel()
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, j.url, j.body)
	if err != nil {
		return sent{}, fmt.Errorf("build request: %w", err)
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "minipay-webhooks/1")
	req.Header.Set(HeaderID, j.eventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, signature(j.keys, j.eventID, now, j.body))
	resp, err := d.client.Do(req)
	if err != nil {
		if d.sendCtx.Err() != nil {
			return sent{}, errShutdown
		}
		// The attempt's deadline and the transport's header timeout are the
		// same length; whichever fires first, it is the same failure.
		var ne net.Error
		if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
			return sent{}, fmt.Errorf("no answer within %s: %w", d.s.opts.Timeout, err)
		}
		return sent{}, err
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, excerptBytesMax))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytesMax))
	got := sent{status: resp.StatusCode, excerpt: cleanText(head)}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return got, fmt.Errorf("answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return got, nil
}

// cleanText makes response bytes storable as PostgreSQL text.
func cleanText(b []byte) string {
	return strings.ReplaceAll(strings.ToValidUTF8(string(b), "\uFFFD"), "\x00", "")
}

func newAttemptID() string { return id.New("wa") }

// finishLoop writes results back in batches: whatever arrived while the
// previous batch was being written goes into the next one.
func (d *dispatcher) finishLoop() {
	batch := make([]result, 0, flushBatchMax)
	for r := range d.results {
		batch = append(batch, r)
	gather:
		for len(batch) < flushBatchMax {
			select {
			case r, ok := <-d.results:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		d.flush(batch)
		d.outstanding.Add(-int64(len(batch)))
		select {
		case d.wake <- struct{}{}:
		default:
		}
		clear(batch)
		batch = batch[:0]
	}
}

func (d *dispatcher) flush(batch []result) {
	// Written even while shutting down: the writes are what makes the
	// work done (or given back).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.s.finish(ctx, batch); err != nil {
		// The leases run out and the deliveries are attempted again:
		// at least once, never lost.
		d.s.opts.Log.Error("webhooks: record attempts", "count", len(batch), "err", err)
	}
}

// nextAttempt says when attempt number n+1 is due after n attempts failed,
// or false when the schedule is used up. Each delay gets ±10 % jitter so
// deliveries that failed together do not come back together.
func (s *Service) nextAttempt(n int, now time.Time) (time.Time, bool) {
	if n < 1 || n > len(s.opts.Schedule) {
		return time.Time{}, false
	}
	return now.Add(jitter(s.opts.Schedule[n-1])), true
}

func jitter(d time.Duration) time.Duration {
	span := int64(d) / 5 // ±10 %
	if span <= 0 {
		return d
	}
	n, err := rand.Int(rand.Reader, big.NewInt(span+1))
	if err != nil {
		return d
	}
	return d - time.Duration(span/2) + time.Duration(n.Int64())
}

// claimSQL takes up to $1 due deliveries, skipping rows other processes
// hold and endpoints in $3, and leases them by moving next_attempt_at
// ahead: if this process dies, they come due again when the lease ends.
const claimSQL = `WITH due AS (
	SELECT id FROM webhook_deliveries
	WHERE status = 'pending' AND next_attempt_at <= now() AND NOT (endpoint_id = ANY ($3::text[]))
	ORDER BY next_attempt_at
	LIMIT $1
	FOR UPDATE SKIP LOCKED
), claimed AS (
	UPDATE webhook_deliveries d SET next_attempt_at = now() + $2::bigint * interval '1 microsecond', lock_token = $4
	FROM due WHERE d.id = due.id
	RETURNING d.id, d.event_id, d.endpoint_id, d.attempts
)
SELECT c.id, c.event_id, c.endpoint_id, c.attempts,
	e.type, e.created_at, e.data::text,
	w.url, w.status = 'enabled', w.secret_enc,
	CASE WHEN w.old_secret_expires_at > now() THEN w.old_secret_enc END
FROM claimed c
JOIN events e ON e.id = c.event_id
JOIN webhook_endpoints w ON w.id = c.endpoint_id`

func (s *Service) claim(ctx context.Context, limit int, exclude []string) ([]*job, error) {
	if exclude == nil {
		exclude = []string{}
	}
	token := randomToken()
	leaseEnd := time.Now().Add(s.opts.Lease)
	rows, err := s.db.Query(ctx, claimSQL, limit, s.opts.Lease.Microseconds(), exclude, token)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	var jobs []*job
	for rows.Next() {
		var (
			j             = &job{token: token, leaseEnd: leaseEnd}
			typ           string
			data          []byte
			secret, older []byte
		)
		if err := rows.Scan(&j.deliveryID, &j.eventID, &j.endpointID, &j.attempts, &typ, &j.created, &data,
			&j.url, &j.enabled, &secret, &older); err != nil {
			rows.Close()
			return jobs, fmt.Errorf("claim deliveries: %w", err)
		}
		j.eventType = typ
		if j.body, err = renderEvent(j.eventID, typ, j.created, data); err != nil {
			j.keyErr = err
		}
		j.keys, err = s.signingKeys(j.endpointID, secret, older)
		if err != nil {
			j.keyErr = err
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return jobs, fmt.Errorf("claim deliveries: %w", err)
	}
	return jobs, nil
}

// signingKeys decrypts an endpoint's current secret and, during a
// rotation, its previous one.
func (s *Service) signingKeys(endpointID string, secret, older []byte) ([][]byte, error) {
	key, err := s.openSecret(endpointID, secret)
	if err != nil {
		return nil, err
	}
	keys := [][]byte{key}
	if older != nil {
		if old, err := s.openSecret(endpointID, older); err == nil {
			keys = append(keys, old)
		}
	}
	return keys, nil
}

func randomToken() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:]) >> 1)
}

// finishSQL writes outcomes back, for rows still held by the same claim.
const finishSQL = `UPDATE webhook_deliveries d SET
	status = u.status, attempts = d.attempts + u.inc,
	next_attempt_at = u.next, lock_token = NULL,
	last_error = CASE WHEN u.inc = 0 THEN d.last_error ELSE NULLIF(u.err, '') END,
	finished_at = CASE WHEN u.status = 'pending' THEN NULL ELSE now() END
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[], $5::timestamptz[], $6::text[])
	AS u(id, token, status, inc, next, err)
WHERE d.id = u.id AND d.lock_token = u.token`

const attemptsSQL = `INSERT INTO webhook_attempts
	(id, delivery_id, endpoint_id, event_id, attempt, outcome, status_code, latency_us, response_excerpt, error, next_attempt_at, created_at)
SELECT u.id, u.delivery, u.endpoint, u.event, u.attempt, u.outcome, NULLIF(u.status, 0), u.latency, u.excerpt, u.err,
	CASE WHEN u.retry THEN u.next END, u.created
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::text[], $7::int[], $8::bigint[],
	$9::text[], $10::text[], $11::timestamptz[], $12::bool[], $13::timestamptz[])
	AS u(id, delivery, endpoint, event, attempt, outcome, status, latency, excerpt, err, next, retry, created)`

// finish records a batch of outcomes: the deliveries' new state, the
// attempt log, and each endpoint's run of failures, disabling endpoints
// that have failed for DisableAfter.
func (s *Service) finish(ctx context.Context, batch []result) error {
	n := len(batch)
	var (
		ids, tokens             = make([]int64, n), make([]int64, n)
		statuses, errs          = make([]string, n), make([]string, n)
		incs                    = make([]int32, n)
		nexts                   = make([]time.Time, n)
		aIDs, aEndpoints, aEvts []string
		aDeliveries, aLatency   []int64
		aNums, aStatus          []int32
		aOutcomes, aExc, aErrs  []string
		aNext, aCreated         []time.Time
		aRetry                  []bool
		succeeded, failing      []string
	)
	now := time.Now()
	for i, r := range batch {
		j := r.job
		ids[i], tokens[i], errs[i], nexts[i] = j.deliveryID, j.token, r.err, now
		switch r.outcome {
		case outcomeReleased:
			statuses[i] = "pending"
			continue
		case outcomeCanceled:
			statuses[i] = "canceled"
			continue
		case outcomeSucceeded:
			statuses[i], incs[i] = "succeeded", 1
			succeeded = append(succeeded, j.endpointID)
		case outcomeFailed:
			next, retry := s.nextAttempt(j.attempts+1, now)
			statuses[i], incs[i] = "failed", 1
			if retry {
				statuses[i], nexts[i] = "pending", next
			}
			failing = append(failing, j.endpointID)
		case outcomeSkipped:
			// Nothing was sent, so no attempt is spent: a delivery fails
			// only once its real attempts run out. It is due again when
			// the circuit lets requests through.
			statuses[i], nexts[i] = "pending", later(r.retryAt, now)
		}
		aIDs = append(aIDs, r.attemptID)
		aDeliveries = append(aDeliveries, j.deliveryID)
		aEndpoints = append(aEndpoints, j.endpointID)
		aEvts = append(aEvts, j.eventID)
		aNums = append(aNums, int32(j.attempts+1))
		aOutcomes = append(aOutcomes, r.outcome.String())
		aStatus = append(aStatus, int32(r.status))
		aLatency = append(aLatency, r.latency.Microseconds())
		aExc = append(aExc, r.excerpt)
		aErrs = append(aErrs, cleanText([]byte(r.err)))
		aNext = append(aNext, nexts[i])
		aRetry = append(aRetry, statuses[i] == "pending")
		aCreated = append(aCreated, r.started)
	}
	succeeded, failing = endpointRuns(succeeded, failing)
	b := &pgx.Batch{}
	b.Queue(finishSQL, ids, tokens, statuses, incs, nexts, errs)
	if len(aIDs) > 0 {
		b.Queue(attemptsSQL, aIDs, aDeliveries, aEndpoints, aEvts, aNums, aOutcomes, aStatus, aLatency, aExc, aErrs, aNext, aRetry, aCreated)
	}
	if len(succeeded) > 0 {
		b.Queue(`UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ANY ($1) AND failing_since IS NOT NULL`, succeeded)
	}
	if len(failing) > 0 {
		b.Queue(`UPDATE webhook_endpoints SET failing_since = now() WHERE id = ANY ($1) AND failing_since IS NULL`, failing)
	}
	// One round trip, one implicit transaction.
	if err := s.db.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("finish %d deliveries: %w", n, err)
	}
	if len(failing) > 0 {
		return s.disableFailing(ctx, failing)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// endpointRuns sorts the endpoints of a batch into those whose run of
// failures ends (any success) and those failing (only failures), sorted so
// concurrent finishers lock endpoint rows in the same order.
func endpointRuns(succeeded, failing []string) ([]string, []string) {
	slices.Sort(succeeded)
	succeeded = slices.Compact(succeeded)
	failing = slices.DeleteFunc(failing, func(id string) bool {
		_, ok := slices.BinarySearch(succeeded, id)
		return ok
	})
	slices.Sort(failing)
	return succeeded, slices.Compact(failing)
}

// disableFailing disables those of the endpoints that have failed without
// a success for DisableAfter and tells their owners with an event, in the
// same transaction.
func (s *Service) disableFailing(ctx context.Context, endpointIDs []string) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = 'failing',
				updated_at = now(), version = version + 1
			WHERE id = ANY ($1) AND status = 'enabled' AND failing_since <= now() - $2::bigint * interval '1 microsecond'
			RETURNING developer_id, version, `+endpointColumns, endpointIDs, s.opts.DisableAfter.Microseconds())
		if err != nil {
			return fmt.Errorf("disable failing endpoints: %w", err)
		}
		type disabled struct {
			dev     string
			version int
			e       EndpointObject
		}
		out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (disabled, error) {
			var d disabled
			e, err := scanEndpoint(prefixScanner{r, []any{&d.dev, &d.version}})
			d.e = e
			return d, err
		})
		if err != nil {
			return fmt.Errorf("disable failing endpoints: %w", err)
		}
		for _, d := range out {
			s.opts.Log.Warn("webhooks: endpoint disabled after failing", "endpoint", d.e.ID, "app", d.e.App, "for", s.opts.DisableAfter.String())
			err := Emit(ctx, tx, Event{Type: EndpointDisabled, DeveloperID: d.dev, AppID: d.e.App,
				Object: endpointEventObject(d.e, d.version), ObjectID: d.e.ID, ObjectVersion: d.version})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// endpointEventObject is an endpoint as events carry it, with its version.
func endpointEventObject(e EndpointObject, version int) map[string]any {
	return map[string]any{
		"id": e.ID, "object": e.Object, "app": e.App, "url": e.URL, "description": e.Description,
		"enabled_events": e.EnabledEvents, "status": e.Status, "disabled_reason": e.DisabledReason,
		"created": e.Created, "updated": e.Updated, "version": version,
	}
}

// prefixScanner scans leading columns into extra, the rest into dest.
type prefixScanner struct {
	row   pgx.Row
	extra []any
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.row.Scan(append(slices.Clone(p.extra), dest...)...)
}

// maintain deletes finished deliveries and attempts past the retention
// period, now and then.
func (s *Service) maintain(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		for _, q := range []string{
			`DELETE FROM webhook_attempts WHERE id IN (SELECT id FROM webhook_attempts
				WHERE created_at < now() - $1::bigint * interval '1 microsecond' LIMIT 10000)`,
			`DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries
				WHERE status <> 'pending' AND finished_at < now() - $1::bigint * interval '1 microsecond' LIMIT 10000)`,
		} {
			for ctx.Err() == nil {
				tag, err := s.db.Exec(ctx, q, s.opts.Retention.Microseconds())
				if err != nil {
					if ctx.Err() == nil {
						s.opts.Log.Error("webhooks: purge old deliveries", "err", err)
					}
					break
				}
				if tag.RowsAffected() < 10000 {
					break
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
