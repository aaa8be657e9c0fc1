package webhooks

import (
	"context"
	"encoding/json"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/testdb"
)

var testServerSecret = []byte("webhooks test server secret ....")

// quick returns options with every time shrunk for tests. Tests that use
// a time override it.
func quick() Options {
	return Options{
		Secret: testServerSecret, AllowPrivate: true,
		Log:                 slog.New(slog.NewTextHandler(io.Discard, nil)),
		Schedule:            []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond},
		Timeout:             2 * time.Second,
		PollInterval:        10 * time.Millisecond,
		BreakerFailures:     1000,
		BreakerCooldown:     time.Hour,
		ShutdownGrace:       time.Second,
		TransportRetries:    1,
		EndpointConcurrency: 4,
	}
}

type fixture struct {
	t   *testing.T
	db  *testdb.DB
	svc *Service
	app Owner
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	db := testdb.New(t)
	return &fixture{t: t, db: db, svc: New(db.Pool, opts), app: Owner{AppID: "app_one", DeveloperID: "dev_one"}}
}

// run starts the dispatcher until the test ends (or the returned stop).
func (f *fixture) run() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.svc.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	f.t.Cleanup(stop)
	return stop
}

func (f *fixture) endpoint(url string, events ...string) EndpointObject {
	f.t.Helper()
	if len(events) == 0 {
		events = []string{"*"}
	}
	e, err := f.svc.CreateEndpoint(context.Background(), f.app, EndpointParams{URL: url, EnabledEvents: events})
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// emit commits n events of type typ for owner o, with one statement (so the
// fan-out trigger sees them together), and returns their ids.
func (f *fixture) emit(o Owner, typ string, n int) []string {
	f.t.Helper()
	var ids []string
	var events []Event
	for i := range n {
		e := Event{ID: id.New("evt"), Type: typ, DeveloperID: o.DeveloperID, AppID: o.AppID,
			Object: map[string]any{"id": "cs_test", "n": i, "version": 1}, ObjectID: "cs_test", ObjectVersion: 1}
		events = append(events, e)
		ids = append(ids, e.ID)
	}
	err := pgx.BeginFunc(context.Background(), f.db.Pool, func(tx pgx.Tx) error {
		return EmitAll(context.Background(), tx, events)
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return ids
}

func (f *fixture) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// waitFor polls cond until it holds; the bound is for liveness only.
func (f *fixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receipt is one request a receiver got.
type receipt struct {
	header http.Header
	body   []byte
}

func (r receipt) eventID() string {
	var e struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.ID
}

// receiver is a real HTTP server on loopback that records what it gets
// and answers with answer.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []receipt
	answer   func(w http.ResponseWriter, r *http.Request, n int) // n: requests before this one
	requests int
}

func newReceiver(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := rc.requests
		rc.requests++
		rc.got = append(rc.got, receipt{header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		rc.answer(w, r, n)
	}))
	t.Cleanup(rc.Server.Close)
	return rc
}

func ok(w http.ResponseWriter, _ *http.Request, _ int) { _, _ = io.WriteString(w, "ok") }

func (rc *receiver) receipts() []receipt {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]receipt(nil), rc.got...)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.requests
}

// distinct is how many different events the receiver got.
func (rc *receiver) distinct() int {
	seen := map[string]bool{}
	for _, r := range rc.receipts() {
		seen[r.eventID()] = true
	}
	return len(seen)
}

// mustVerify checks every receipt against secret with the SDK verifier.
func mustVerify(t *testing.T, secret string, got []receipt) {
	t.Helper()
	for _, r := range got {
		if err := verifyReference(secret, r.header, r.body); err != nil {
			t.Fatalf("receipt %s does not verify: %v (signature %q)", r.eventID(), err, r.header.Get("webhook-signature"))
		}
		if !strings.HasPrefix(r.header.Get("webhook-id"), "evt_") {
			t.Fatalf("webhook-id %q", r.header.Get("webhook-id"))
		}
	}
}

// verifyReference checks a delivery with the Standard Webhooks reference
// implementation, independent of minipay's own signing code.
func verifyReference(secret string, header http.Header, body []byte) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	return wh.Verify(body, header)
}
