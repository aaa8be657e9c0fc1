package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minipay/minipay/api/apitest"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/checkout"
	"github.com/minipay/minipay/internal/testdb"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/webhooks"
)

// env is a real API server over a real database, reached over real HTTP.
type env struct {
	t        *testing.T
	db       *testdb.DB
	url      string
	handler  http.Handler
	metrics  http.Handler
	ledger   *ledger.Ledger
	apps     *apps.Service
	checkout *checkout.Service
	webhooks *webhooks.Service
	adminKey string
	// rateLimit is the per-key rate; tests that do not test it get none.
	rateLimit float64
	hostKey   string
	sandbox   bool // test helpers allowed
}

func newEnv(t *testing.T) *env { return newEnvWith(t, 0) }

// newEnvWith is newEnv with a per-key rate limit.
func newEnvWith(t *testing.T, rateLimit float64) *env {
	t.Helper()
	return startEnv(t, &env{rateLimit: rateLimit})
}

// newSandboxEnv is newEnv in a sandbox (MINIPAY_SANDBOX): test helpers work.
func newSandboxEnv(t *testing.T) *env {
	t.Helper()
	return startEnv(t, &env{sandbox: true})
}

// startEnv gives e a fresh database and the test's keys, and starts it.
func startEnv(t *testing.T, e *env) *env {
	t.Helper()
	e.t, e.db = t, testdb.New(t)
	e.adminKey = strings.ReplaceAll("admin_test_"+t.Name(), "/", "_")
	e.hostKey = strings.ReplaceAll("host_test_"+t.Name(), "/", "_")
	e.start()
	return e
}

// newEnvSharing is a second server on e's database, as another replica
// (or a restarted process) would be: nothing cached.
func newEnvSharing(e *env) *env {
	e2 := &env{t: e.t, db: e.db, adminKey: e.adminKey, hostKey: e.hostKey, rateLimit: e.rateLimit, sandbox: e.sandbox}
	e2.start()
	return e2
}

// start runs the API over e.db.
func (e *env) start() {
	s := apitest.Start(e.t, e.db.Pool, apitest.Options{RateLimit: e.rateLimit, Sandbox: e.sandbox,
		Keys: map[apps.KeyKind]string{apps.KindAdmin: e.adminKey, apps.KindHost: e.hostKey}})
	e.url, e.handler, e.metrics = s.URL, s.Handler, s.Metrics
	e.apps, e.ledger, e.checkout, e.webhooks = s.Apps, s.Ledger, s.Checkout, s.Webhooks
}

// resp is a decoded response.
type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r resp) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (r resp) errParam() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["param"].(string)
	return s
}

func (r resp) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// call sends a request with key; body may be nil, a string (sent as is) or
// a value (sent as JSON). Extra headers come in pairs.
func (e *env) call(method, path, key string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// must fails the test unless the response has the wanted status.
func (e *env) must(want int, r resp) resp {
	e.t.Helper()
	if r.status != want {
		e.t.Fatalf("status %d, want %d: %s", r.status, want, r.raw)
	}
	return r
}

func (e *env) admin(method, path string, body any, headers ...string) resp {
	e.t.Helper()
	return e.call(method, path, e.adminKey, body, headers...)
}

// ledgerCounts is how many transfers and postings exist: "nothing changed"
// means these did not move.
func (e *env) ledgerCounts() [2]int {
	e.t.Helper()
	var c [2]int
	err := e.db.Pool.QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM ledger_transfers), (SELECT count(*) FROM ledger_postings)`).Scan(&c[0], &c[1])
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}
