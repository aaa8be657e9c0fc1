package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/pgdb"
	"github.com/minipay/minipay/webhooks"
)

// Shape of the webhooks benchmark.
const (
	whHealthyEndpoints = 4  // every event goes to each
	whEventsPerTx      = 25 // events committed per producer transaction
	whBacklogEventsMax = 2000
)

// benchWebhooks measures the dispatcher in this process against a real
// local receiver, in two runs on one database:
//
//  1. throughput: producers keep a bounded backlog of committed events,
//     so the dispatcher is never idle; deliveries/s is the headline number.
//  2. isolation: one dead endpoint (connection refused) among the healthy
//     ones, events committed at half the measured rate; the commit-to-
//     delivery latency to the healthy endpoints is the headline p50/p99.
func benchWebhooks(ctx context.Context, o Options) (*Result, error) {
	if o.Clients <= 0 {
		o.Clients = 4
	}
	dbURL, drop, err := freshDatabase(ctx, o.DatabaseURL, "webhooks", o.Keep)
	if err != nil {
		return nil, err
	}
	defer drop()
	pool, _, err := pgdb.Setup(ctx, dbURL, 48)
	if err != nil {
		return nil, err
	}
	defer pool.Close()

	rc, err := newWebhookReceiver()
	if err != nil {
		return nil, err
	}
	defer rc.close()

	stopProfile, err := profile(o.CPUProfile)
	if err != nil {
		return nil, err
	}
	first, err := webhookRun(ctx, o, pool, rc, "app_tput", false, 0)
	stopProfile()
	if err != nil {
		return nil, err
	}
	rate := first.deliveriesPerSec / 2 / whHealthyEndpoints // events/s
	second, err := webhookRun(ctx, o, pool, rc, "app_dead", true, rate)
	if err != nil {
		return nil, err
	}
	return &Result{
		Kind: "webhooks", Unit: "deliveries", Clients: o.Clients, Duration: o.Duration,
		Throughput: first.deliveriesPerSec,
		P50:        second.p50, P99: second.p99,
		Extra: []KV{
			{"saturated_p50_ms", round(ms(first.p50), 3)},
			{"saturated_p99_ms", round(ms(first.p99), 3)},
			{"dead_run_deliveries_per_s", round(second.deliveriesPerSec, 1)},
			{"dead_run_events_per_s_offered", round(rate, 1)},
			{"dead_run_dead_attempts", second.deadAttempts},
		},
		Notes: []string{
			fmt.Sprintf("throughput: %d healthy endpoints on a local receiver, backlog of at most %d events; p50/p99: commit-to-delivery to the healthy endpoints with one dead endpoint present, at half that rate", whHealthyEndpoints, whBacklogEventsMax),
		},
	}, nil
}

type webhookRunResult struct {
	deliveriesPerSec float64
	p50, p99         time.Duration
	deadAttempts     int
}

func webhookRun(ctx context.Context, o Options, pool *pgxpool.Pool, rc *webhookReceiver, app string, dead bool, eventsPerSec float64) (webhookRunResult, error) {
	svc := webhooks.New(pool, webhooks.Options{
		Secret: []byte("bench secret"), AllowPrivate: true, PollInterval: 20 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	owner := webhooks.Owner{AppID: app, DeveloperID: "dev_" + app}
	for i := range whHealthyEndpoints {
		if _, err := svc.CreateEndpoint(ctx, owner, webhooks.EndpointParams{
			URL: fmt.Sprintf("%s/%s/%d", rc.url, app, i), EnabledEvents: []string{"*"}}); err != nil {
			return webhookRunResult{}, err
		}
	}
	if dead {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return webhookRunResult{}, err
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, err := svc.CreateEndpoint(ctx, owner, webhooks.EndpointParams{
			URL: "http://" + addr + "/dead", EnabledEvents: []string{"*"}}); err != nil {
			return webhookRunResult{}, err
		}
	}
	rc.reset()

	runCtx, stopDispatch := context.WithCancel(ctx)
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		svc.Run(runCtx)
	}()

	var (
		produced  atomic.Int64
		wg        sync.WaitGroup
		errOnce   sync.Once
		firstErr  error
		deadline  = time.Now().Add(o.Duration)
		perClient = eventsPerSec / float64(o.Clients)
	)
	start := time.Now()
	for range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := time.Now()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if perClient > 0 { // open loop at a fixed rate
					next = next.Add(time.Duration(float64(time.Second) * whEventsPerTx / perClient))
					time.Sleep(time.Until(next))
				} else if produced.Load()-rc.healthyEvents() > whBacklogEventsMax {
					time.Sleep(time.Millisecond)
					continue
				}
				if err := produceEvents(ctx, pool, owner, rc); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				produced.Add(whEventsPerTx)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	delivered := rc.deliveries.Load()
	stopDispatch()
	<-dispatched
	if firstErr != nil {
		return webhookRunResult{}, firstErr
	}
	var deadAttempts int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM webhook_attempts a JOIN webhook_endpoints w ON w.id = a.endpoint_id
		WHERE w.app_id = $1 AND w.url LIKE '%/dead'`, app).Scan(&deadAttempts); err != nil {
		return webhookRunResult{}, err
	}
	// What is left of this run's backlog must not load the next run.
	if _, err := pool.Exec(ctx, `UPDATE webhook_deliveries SET status = 'canceled' WHERE status = 'pending'`); err != nil {
		return webhookRunResult{}, err
	}
	p := rc.lat.percentiles(0.5, 0.99)
	return webhookRunResult{deliveriesPerSec: float64(delivered) / elapsed.Seconds(), p50: p[0], p99: p[1], deadAttempts: deadAttempts}, nil
}

// produceEvents commits whEventsPerTx events in one transaction. Their
// commit time is noted just before COMMIT is sent (so a delivery can never
// arrive before it is noted), which counts the commit itself as latency.
func produceEvents(ctx context.Context, pool *pgxpool.Pool, o webhooks.Owner, rc *webhookReceiver) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("produce events: %w", err)
	}
	defer tx.Rollback(ctx)
	ids := make([]string, whEventsPerTx)
	b := &pgx.Batch{}
	for i := range ids {
		ids[i] = id.New("evt")
		sql, args, err := webhooks.Insert(webhooks.Event{ID: ids[i], Type: webhooks.CheckoutSessionCompleted,
			DeveloperID: o.DeveloperID, AppID: o.AppID, ObjectID: "cs_bench", ObjectVersion: 1,
			Object: map[string]any{"id": "cs_bench", "object": "checkout.session", "amount_total": "12.34", "currency": "CNY", "version": 1}})
		if err != nil {
			return err
		}
		b.Queue(sql, args...)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("produce events: %w", err)
	}
	now := time.Now()
	for _, e := range ids {
		rc.committed.Store(e, now)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("produce events: %w", err)
	}
	return nil
}

// webhookReceiver is the developers' side: a local HTTP server that
// answers 200 and measures commit-to-delivery latency per request.
type webhookReceiver struct {
	srv        *http.Server
	url        string
	committed  sync.Map // event id → commit time
	deliveries atomic.Int64
	mu         sync.Mutex
	lat        latencies
}

func newWebhookReceiver() (*webhookReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rc := &webhookReceiver{url: "http://" + ln.Addr().String(), lat: latencies{nil}}
	rc.srv = &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = rc.srv.Serve(ln) }()
	return rc, nil
}

func (rc *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	now := time.Now()
	if v, ok := rc.committed.Load(r.Header.Get(webhooks.HeaderID)); ok {
		rc.deliveries.Add(1)
		rc.mu.Lock()
		rc.lat[0] = append(rc.lat[0], now.Sub(v.(time.Time)))
		rc.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

// healthyEvents approximates the events fully delivered, for the backlog bound.
func (rc *webhookReceiver) healthyEvents() int64 { return rc.deliveries.Load() / whHealthyEndpoints }

func (rc *webhookReceiver) reset() {
	rc.mu.Lock()
	rc.lat = latencies{nil}
	rc.mu.Unlock()
	rc.deliveries.Store(0)
	rc.committed.Clear()
}

func (rc *webhookReceiver) close() { _ = rc.srv.Close() }
