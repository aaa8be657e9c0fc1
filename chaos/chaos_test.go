// Package chaos_test runs minipay under load while things break: serve
// replicas are killed with SIGKILL and restarted, PostgreSQL is restarted,
// the developer's webhook receiver fails for a while, and two or three
// replicas share the work (TestChaos); the same through PgBouncer in
// transaction pooling mode (TestChaosPgBouncer); and on a pg_auto_failover
// formation whose primary is killed twice (TestFailover). Afterwards each
// checks that nothing acknowledged was lost or duplicated, that the ledger
// balances, that every committed event reached the receiver, and that the
// history of ledger operations the clients saw is linearizable (Porcupine,
// bank_test.go).
//
// The tests use their own throwaway PostgreSQL servers, so killing them
// disturbs no other test. CHAOS_DURATION sets how long the load runs
// (20s by default; "make chaos" runs it longer); reports go to
// CHAOS_REPORT_DIR.
package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/pgcluster"
	"github.com/minipay/minipay/ledger"
)

const (
	adminKey = "chaos-admin-key"
	hostKey  = "chaos-host-key"
	users    = 24
	// webhookSchedule is the drill's retry schedule: a delivery makes one
	// attempt and one more per delay before it may end failed.
	webhookSchedule = "1s,2s,5s,10s,20s,30s,30s"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "minipay-chaos")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "minipay")
	if out, err := exec.Command("go", "build", "-o", binary, "../cmd/minipay").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build minipay: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestChaos(t *testing.T) {
	pg := pgcluster.New(t, "max_connections = 200")
	runChaos(t, pg, pg.URL("minipay"), nil)
}

// TestChaosPgBouncer runs the same load and faults with PgBouncer in
// transaction pooling mode between the replicas and PostgreSQL, its pool
// smaller than the replicas' connections to it.
func TestChaosPgBouncer(t *testing.T) {
	pgcluster.NeedPgBouncer(t)
	pg := pgcluster.New(t, "max_connections = 200")
	// Through a pooler minipay cannot create its database (the pooler
	// answers for a missing one); operators create it first.
	if err := pg.Exec(context.Background(), "postgres", "CREATE DATABASE minipay"); err != nil {
		t.Fatal(err)
	}
	b := pg.PgBouncer(t, bouncerPool)
	runChaos(t, pg, b.URL("minipay"), b)
}

// bouncerPool is PgBouncer's server connections in TestChaosPgBouncer,
// against dbConns client connections for each of the three replicas.
const bouncerPool, dbConns = 12, 16

// chaosDuration is how long the load runs: CHAOS_DURATION, 20s by default.
func chaosDuration(t *testing.T) time.Duration {
	duration := 20 * time.Second
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CHAOS_DURATION: %v", err)
		}
		duration = d
	}
	return duration
}

// runChaos runs the load and the faults against replicas connected to
// dbURL (pg itself, or bouncer in front of it), then checks and reports.
func runChaos(t *testing.T, pg *pgcluster.Cluster, dbURL string, bouncer *pgcluster.Bouncer) {
	duration := chaosDuration(t)
	ctx, cancel := context.WithTimeout(context.Background(), duration+5*time.Minute)
	defer cancel()
	sc := startScenario(t, ctx, dbURL)
	fleet, recv := sc.fleet, sc.recv

	// The faults, spread over the run.
	at := func(frac float64) <-chan time.Time { return time.After(time.Duration(frac * float64(duration))) }
	faults := []struct {
		when float64
		name string
		do   func()
	}{
		{0.15, "kill -9 replica 1", func() { fleet.kill(1) }},
		{0.25, "restart replica 1", func() { fleet.start(1) }},
		{0.35, "restart PostgreSQL (immediate)", func() { pg.Restart("immediate") }},
		{0.45, "webhook receiver starts failing", func() { recv.failing.Store(true) }},
		{0.55, "kill -9 replica 2 (two replicas share the work)", func() { fleet.kill(2) }},
		{0.65, "kill -9 replica 0", func() { fleet.kill(0) }},
		{0.70, "restart replica 0", func() { fleet.start(0) }},
		{0.75, "webhook receiver recovers", func() { recv.failing.Store(false) }},
		{0.80, "restart replica 2", func() { fleet.start(2) }},
	}
	for _, f := range faults {
		<-at(f.when - time.Since(sc.start).Seconds()/duration.Seconds())
		sc.logf("%s", f.name)
		f.do()
	}
	<-time.After(time.Until(sc.start.Add(duration)))
	c := sc.stopLoad(pg.URL("minipay"))
	c.audit()
	if bouncer != nil {
		c.pooled(bouncer)
	}
	c.noStuckSessions(sc.start)
	c.report()
}

// scenario is a fleet of three replicas under load: checkouts, top-ups and
// refunds from one set of clients, bank transfers and reads from another,
// webhooks to a receiver.
type scenario struct {
	t     *testing.T
	ctx   context.Context
	recv  *receiver
	fleet *fleet
	load  *load
	bank  *bank
	stop  chan struct{}
	wg    sync.WaitGroup
	start time.Time
}

// startScenario starts the replicas on dbURL, sets up the app, the webhook
// endpoint and the bank, and starts the load.
func startScenario(t *testing.T, ctx context.Context, dbURL string) *scenario {
	sc := &scenario{t: t, ctx: ctx, recv: newReceiver(), stop: make(chan struct{})}
	srv := httptest.NewServer(sc.recv)
	t.Cleanup(srv.Close)
	sc.fleet = newFleet(t, dbURL, 3)
	sc.fleet.startAll()
	app := setup(t, sc.fleet, srv.URL, sc.recv)
	sc.load = &load{fleet: sc.fleet, app: app, stop: sc.stop}
	sc.bank = setupBank(t, sc.fleet, sc.stop)
	for w := 0; w < 16; w++ {
		sc.wg.Add(1)
		go func() {
			defer sc.wg.Done()
			sc.load.worker(ctx, w, sc.stop)
		}()
	}
	for w := 0; w < bankClients; w++ {
		sc.wg.Add(1)
		go func() {
			defer sc.wg.Done()
			sc.bank.worker(ctx, w)
		}()
	}
	sc.start = time.Now()
	return sc
}

// logf logs what happens, with the time since the load started.
func (sc *scenario) logf(format string, args ...any) {
	sc.t.Helper()
	sc.t.Logf("%5.1fs  %s", time.Since(sc.start).Seconds(), fmt.Sprintf(format, args...))
}

// stopLoad stops the load, waits for the clients to finish (the bank's
// keep retrying until their transfers are definite), reads the bank's final
// balances, and returns a checker on the database at auditURL.
func (sc *scenario) stopLoad(auditURL string) *checker {
	close(sc.stop)
	sc.wg.Wait()
	sc.logf("load stopped")
	sc.bank.readAll(sc.ctx, bankClients)
	pool, err := pgxpool.New(sc.ctx, auditURL)
	if err != nil {
		sc.t.Fatal(err)
	}
	sc.t.Cleanup(pool.Close)
	return &checker{t: sc.t, ctx: sc.ctx, pool: pool, app: sc.load.app, load: sc.load, bank: sc.bank, recv: sc.recv}
}

// bankClients is how many clients move money between the bank's accounts.
const bankClients = 6

// ---- the fleet of serve replicas ----

type fleet struct {
	t     *testing.T
	db    string
	addrs []string
	mu    sync.Mutex
	procs []*exec.Cmd
	logs  []*bytes.Buffer
}

func newFleet(t *testing.T, db string, n int) *fleet {
	f := &fleet{t: t, db: db, procs: make([]*exec.Cmd, n)}
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f.addrs = append(f.addrs, l.Addr().String())
		l.Close()
		f.logs = append(f.logs, &bytes.Buffer{})
	}
	t.Cleanup(func() {
		for i := range f.procs {
			f.kill(i)
		}
	})
	return f
}

func (f *fleet) startAll() {
	for i := range f.addrs {
		f.start(i)
	}
	for i := range f.addrs {
		f.waitReady(i)
	}
}

func (f *fleet) start(i int) {
	cmd := exec.Command(binary, "serve", "--db-conns", strconv.Itoa(dbConns))
	cmd.Env = append(os.Environ(), "DATABASE_URL="+f.db, "MINIPAY_ADDR="+f.addrs[i],
		"MINIPAY_ADMIN_KEY="+adminKey, "MINIPAY_HOST_KEY="+hostKey, "MINIPAY_SECRET=chaos-secret",
		"MINIPAY_WEBHOOK_ALLOW_PRIVATE=true", "MINIPAY_RATE_LIMIT=0",
		"MINIPAY_WEBHOOK_RETRY_SCHEDULE="+webhookSchedule, "MINIPAY_WEBHOOK_TIMEOUT=2s",
		// Every replica competes for the settlement leader's lock all along.
		"MINIPAY_SETTLEMENT_SCHEDULE=every 3s")
	f.mu.Lock()
	defer f.mu.Unlock()
	cmd.Stdout, cmd.Stderr = io.Discard, &lockedWriter{mu: &f.mu, w: f.logs[i]}
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("start replica %d: %v", i, err)
	}
	f.procs[i] = cmd
}

func (f *fleet) kill(i int) {
	f.mu.Lock()
	cmd := f.procs[i]
	f.procs[i] = nil
	f.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
}

// log returns replica i's log so far.
func (f *fleet) log(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.logs[i].String()
	if len(l) > 20000 {
		l = "…" + l[len(l)-20000:]
	}
	return l
}

func (f *fleet) waitReady(i int) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + f.addrs[i] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t.Fatalf("replica %d not ready:\n%s", i, f.logs[i].String())
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// call sends one request to replica i and returns the status and body;
// err is a network error (no answer).
func (f *fleet) call(i int, method, path, key, idemKey string, body any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+f.addrs[i]+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, nil
}

// ---- setup and the receiver ----

type appInfo struct {
	id, developer, key, secret string
}

func setup(t *testing.T, f *fleet, receiverURL string, recv *receiver) appInfo {
	must := func(want int, method, path, key string, body any) map[string]any {
		t.Helper()
		status, out, err := f.call(0, method, path, key, "", body)
		if err != nil || status != want {
			t.Fatalf("%s %s: %d %v %v", method, path, status, out, err)
		}
		return out
	}
	dev := must(201, "POST", "/v1/developers", adminKey, map[string]any{"name": "Chaos Games"})
	app := must(201, "POST", "/v1/apps", adminKey, map[string]any{"developer": dev["id"], "name": "Chaos",
		"options": []string{"goods", "virtual_goods"}, "currencies": []string{"CNY"}})
	a := appInfo{id: app["id"].(string), developer: dev["id"].(string), key: app["secret_key"].(string)}
	ep := must(201, "POST", "/v1/webhook_endpoints", a.key, map[string]any{"url": receiverURL, "enabled_events": []string{"*"}})
	a.secret, _ = ep["secret"].(string)
	if !strings.HasPrefix(a.secret, "whsec_") {
		t.Fatalf("endpoint has no secret: %v", ep)
	}
	recv.secret.Store(&a.secret)
	for u := 0; u < users; u++ {
		must(200, "POST", fmt.Sprintf("/v1/wallets/chaos_u%d/topups", u), hostKey, map[string]any{"amount": "300.00", "currency": "CNY"})
	}
	return a
}

// receiver is the developer's webhook endpoint: it verifies every delivery
// and records when each event first arrived.
type receiver struct {
	secret  atomic.Pointer[string]
	failing atomic.Bool
	mu      sync.Mutex
	first   map[string]time.Time
	got     int
	invalid int
}

func newReceiver() *receiver { return &receiver{first: map[string]time.Time{}} }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if r.failing.Load() {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	secret := r.secret.Load()
	if secret == nil || verifyReference(*secret, req.Header, body) != nil {
		r.mu.Lock()
		r.invalid++
		r.mu.Unlock()
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	var ev struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &ev)
	r.mu.Lock()
	r.got++
	if _, ok := r.first[ev.ID]; !ok {
		r.first[ev.ID] = time.Now()
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// received is how many valid deliveries arrived so far. The replicas'
// dispatchers may still be delivering while the report is written.
func (r *receiver) received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got
}

// ---- the load ----

// op is one logical request as the client saw it.
type op struct {
	kind     string // topup, create, confirm, refund
	key      string // its Idempotency-Key, reused on every retry
	attempts int
	acked    bool // a 2xx came back
	declined bool // a final 4xx came back (e.g. insufficient funds)
	objectID string
	amount   string
	user     string
	// When the attempt that was acknowledged was sent, and its answer came.
	ackSent, ackAt time.Time
}

type load struct {
	fleet *fleet
	app   appInfo
	stop  <-chan struct{} // closed when the load ends: give up retrying
	mu    sync.Mutex
	ops   []*op
	paid  []string // sessions whose confirm was acknowledged
	sent  atomic.Int64
}

func (l *load) record(o *op) {
	l.mu.Lock()
	l.ops = append(l.ops, o)
	l.mu.Unlock()
}

func (l *load) worker(ctx context.Context, w int, stop <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		user := fmt.Sprintf("chaos_u%d", (w+n)%users)
		switch r := (w*7 + n) % 10; {
		case r < 2:
			l.topUp(ctx, w, n, user)
		case r < 8:
			l.checkout(ctx, w, n, user)
		default:
			l.refund(ctx, w, n)
		}
	}
}

// send retries one logical request, always with the same idempotency key,
// on any replica, until it gets a final answer: a 2xx or a 4xx other than
// 409 (a duplicate still running) and 429.
func (l *load) send(ctx context.Context, o *op, method, path, key string, body any) map[string]any {
	defer l.record(o)
	for i := 0; ctx.Err() == nil && i < 400; i++ {
		if i > 0 {
			select {
			case <-l.stop:
				return nil // never acknowledged; the checks allow either outcome
			default:
			}
		}
		o.attempts++
		l.sent.Add(1)
		sent := time.Now()
		status, out, err := l.fleet.call(rand.IntN(len(l.fleet.addrs)), method, path, key, o.key, body)
		switch {
		case err != nil, status >= 500, status == 409, status == 429:
			time.Sleep(50 * time.Millisecond)
			continue
		case status < 300:
			o.acked, o.ackSent, o.ackAt = true, sent, time.Now()
			return out
		default:
			o.declined = true
			return out
		}
	}
	return nil
}

func (l *load) topUp(ctx context.Context, w, n int, user string) {
	o := &op{kind: "topup", key: fmt.Sprintf("topup-%d-%d", w, n), amount: "20.00", user: user}
	o.objectID = idempotency.DeriveID("topup", "host", o.key)
	l.send(ctx, o, "POST", "/v1/wallets/"+user+"/topups", hostKey, map[string]any{"amount": o.amount, "currency": "CNY"})
}

func (l *load) checkout(ctx context.Context, w, n int, user string) {
	create := &op{kind: "create", key: fmt.Sprintf("cs-%d-%d", w, n)}
	create.objectID = idempotency.DeriveID("cs", l.app.id, create.key)
	amount := fmt.Sprintf("%d.%02d", 1+(w*n)%30, (w+n)%100)
	sess := l.send(ctx, create, "POST", "/v1/checkout/sessions", l.app.key, map[string]any{
		"amount": amount, "currency": "CNY", "option": []string{"goods", "virtual_goods"}[n%2],
		"client_reference_id": create.key, "expires_in": 60})
	if !create.acked || n%9 == 0 { // every ninth session is abandoned, for the sweeper
		return
	}
	confirm := &op{kind: "confirm", key: "confirm-" + create.key, objectID: create.objectID, user: user}
	l.send(ctx, confirm, "POST", "/v1/checkout/sessions/"+create.objectID+"/confirm", hostKey,
		map[string]any{"user_id": user, "client_secret": sess["client_secret"]})
	if confirm.acked {
		l.mu.Lock()
		l.paid = append(l.paid, create.objectID)
		l.mu.Unlock()
	}
}

func (l *load) refund(ctx context.Context, w, n int) {
	l.mu.Lock()
	if len(l.paid) == 0 {
		l.mu.Unlock()
		return
	}
	sid := l.paid[(w*31+n)%len(l.paid)]
	l.mu.Unlock()
	o := &op{kind: "refund", key: fmt.Sprintf("re-%d-%d", w, n), amount: "0.50"}
	o.objectID = idempotency.DeriveID("re", l.app.id, o.key)
	l.send(ctx, o, "POST", "/v1/refunds", l.app.key, map[string]any{"checkout_session": sid, "amount": o.amount})
}

// ---- the checks ----

type checker struct {
	t    *testing.T
	ctx  context.Context
	pool *pgxpool.Pool
	app  appInfo
	load *load
	bank *bank
	recv *receiver

	acked, lost, duplicated int
	bankAcked               int
	lin                     linearizability
	settled                 int
	serverConns             int
	late                    []time.Duration
	events                  int
	failedEarly             int // deliveries failed with fewer real attempts than the schedule has
}

func (c *checker) count(sql string, args ...any) int {
	c.t.Helper()
	var n int
	if err := c.pool.QueryRow(c.ctx, sql, args...).Scan(&n); err != nil {
		c.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// acknowledgedExactlyOnce: every 2xx is in the database once, and no
// idempotency key made two of anything.
func (c *checker) acknowledgedExactlyOnce() {
	for _, o := range c.load.ops {
		if !o.acked {
			continue
		}
		c.acked++
		var n int
		switch o.kind {
		case "topup":
			n = c.count(`SELECT count(*) FROM ledger_transfers WHERE id = $1`, o.objectID)
		case "create":
			n = c.count(`SELECT count(*) FROM checkout_sessions WHERE id = $1`, o.objectID)
		case "confirm":
			n = c.count(`SELECT count(*) FROM ledger_transfers t JOIN checkout_sessions s ON t.id = 'pay_' || s.id
				WHERE s.id = $1 AND s.status = 'complete'`, o.objectID)
		case "refund":
			n = c.count(`SELECT count(*) FROM refunds WHERE id = $1`, o.objectID)
		}
		if n != 1 {
			c.lost++
			c.t.Errorf("acknowledged %s %s (key %s) found %d times", o.kind, o.objectID, o.key, n)
		}
	}
	c.duplicated += c.count(`SELECT count(*) FROM (SELECT client_reference_id FROM checkout_sessions
		GROUP BY client_reference_id HAVING count(*) > 1) d`)
	// Every refund and payment row stands for exactly one ledger transfer.
	c.duplicated += c.count(`SELECT count(*) FROM checkout_sessions s WHERE s.status = 'complete'
		AND (SELECT count(*) FROM ledger_transfers t WHERE t.id = 'pay_' || s.id) <> 1`)
	if c.lost != 0 || c.duplicated != 0 {
		c.t.Errorf("lost %d, duplicated %d", c.lost, c.duplicated)
	}
}

func (c *checker) ledgerBalances() {
	l := ledger.New(c.pool, ledger.Options{})
	defer l.Close()
	a, err := l.Audit(c.ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	if !a.OK() {
		c.t.Errorf("ledger audit: %+v", a)
	}
}

// noStuckSessions checks that the sweeper expired every session past its
// expiry. Sessions live at least 60 s, so it first waits until the earliest
// abandoned ones have run out, or the check would prove nothing.
func (c *checker) noStuckSessions(loadStart time.Time) {
	time.Sleep(time.Until(loadStart.Add(63 * time.Second)))
	if n := c.count(`SELECT count(*) FROM checkout_sessions WHERE status = 'open' AND expires_at < now() - interval '2 seconds'`); n != 0 {
		c.t.Errorf("%d sessions still open past their expiry", n)
	}
	if n := c.count(`SELECT count(*) FROM checkout_sessions WHERE status = 'expired'`); n == 0 {
		c.t.Errorf("no session expired: the abandoned ones should have")
	}
}

// eventsDelivered waits for every committed event to reach the receiver.
func (c *checker) eventsDelivered() {
	rows, err := c.pool.Query(c.ctx, `SELECT id, created_at FROM events WHERE app_id = $1`, c.app.id)
	if err != nil {
		c.t.Fatal(err)
	}
	created := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			c.t.Fatal(err)
		}
		created[id] = at
	}
	rows.Close()
	c.events = len(created)
	deadline := time.Now().Add(90 * time.Second)
	var missing []string
	for {
		missing = missing[:0]
		c.recv.mu.Lock()
		for id := range created {
			if _, ok := c.recv.first[id]; !ok {
				missing = append(missing, id)
			}
		}
		c.recv.mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		c.t.Errorf("%d of %d committed events never reached the receiver, e.g. %v", len(missing), len(created), missing[:min(5, len(missing))])
	}
	c.recv.mu.Lock()
	defer c.recv.mu.Unlock()
	for id, at := range created {
		if got, ok := c.recv.first[id]; ok {
			c.late = append(c.late, got.Sub(at))
		}
	}
	if c.recv.invalid > 0 {
		c.t.Errorf("%d deliveries had invalid signatures", c.recv.invalid)
	}
	// At least once: a delivery ends failed only after every attempt its
	// schedule allows was really sent; attempts an open circuit held back
	// (logged as skipped) do not count.
	c.failedEarly = c.count(`SELECT count(*) FROM webhook_deliveries d WHERE d.status = 'failed'
		AND (SELECT count(*) FROM webhook_attempts a WHERE a.delivery_id = d.id AND a.outcome <> 'skipped') < $1`,
		1+len(strings.Split(webhookSchedule, ",")))
	if c.failedEarly != 0 {
		c.t.Errorf("%d deliveries ended failed with fewer real attempts than the schedule's %d", c.failedEarly, 1+len(strings.Split(webhookSchedule, ",")))
	}
}

// report logs the report and writes it to reportDir, with extra lines.
func (c *checker) report(extra ...string) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s report\n", c.t.Name())
	for _, line := range extra {
		fmt.Fprintf(&b, "  %s\n", line)
	}
	b.WriteString(c.summary())
	c.t.Logf("%s(written to %s)", b.String(), writeReport(c.t, b.String()))
	if c.acked == 0 || c.bankAcked == 0 {
		c.t.Error(errors.New("nothing was acknowledged: the load did not run"))
	}
}

// summary is the body of the report.
func (c *checker) summary() string {
	kinds := map[string][2]int{}
	for _, o := range c.load.ops {
		k := kinds[o.kind]
		k[0]++
		if o.acked {
			k[1]++
		}
		kinds[o.kind] = k
	}
	slices.Sort(c.late)
	pct := func(p float64) time.Duration {
		if len(c.late) == 0 {
			return 0
		}
		return c.late[int(p*float64(len(c.late)-1))]
	}
	lateOver := 0
	for _, d := range c.late {
		if d > 5*time.Second {
			lateOver++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  logical requests %d (HTTP attempts %d), acknowledged %d, lost %d, duplicated %d\n",
		len(c.load.ops)+len(c.bank.hist.ops), c.load.sent.Load()+int64(c.bank.sent), c.acked+c.bankAcked, c.lost, c.duplicated)
	for _, k := range []string{"topup", "create", "confirm", "refund"} {
		fmt.Fprintf(&b, "  %-8s sent %d, acknowledged %d\n", k, kinds[k][0], kinds[k][1])
	}
	fmt.Fprintf(&b, "  ledger transfers between no_overdraft accounts acknowledged %d; %s\n", c.bankAcked, c.lin)
	fmt.Fprintf(&b, "  events %d, deliveries received %d; commit-to-first-delivery p50 %s, p99 %s, max %s; %d later than 5 s\n",
		c.events, c.recv.received(), pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond), lateOver)
	fmt.Fprintf(&b, "  deliveries failed with fewer real attempts than the schedule: %d\n", c.failedEarly)
	fmt.Fprintf(&b, "  settlement runs completed %d\n", c.settled)
	if c.serverConns > 0 {
		fmt.Fprintf(&b, "  through PgBouncer (transaction pooling): %d server connections for %d replicas of %d client connections\n",
			c.serverConns, len(c.load.fleet.addrs), dbConns)
	}
	return b.String()
}

// audit runs the checks every fault test makes: nothing acknowledged lost
// or duplicated, the ledger balanced, every event delivered, settlement
// done, the bank's history linearizable.
func (c *checker) audit() {
	c.acknowledgedExactlyOnce()
	c.bankExactlyOnce()
	c.ledgerBalances()
	c.eventsDelivered()
	c.settlementRan()
	c.linearizable()
}

// bankExactlyOnce: every acknowledged transfer between the bank's accounts
// is in the ledger once, and no idempotency key made two.
func (c *checker) bankExactlyOnce() {
	c.bankAcked = len(c.bank.posted)
	if n := c.count(`SELECT count(*) FROM ledger_transfers WHERE id = ANY($1)`, c.bank.posted); n != c.bankAcked {
		c.lost += c.bankAcked - n
		c.t.Errorf("%d acknowledged bank transfers, %d in the ledger", c.bankAcked, n)
	}
	dup := c.count(`SELECT count(*) FROM (SELECT metadata->>'key' FROM ledger_transfers WHERE code = 'bank_transfer'
		GROUP BY 1 HAVING count(*) > 1) d`)
	if dup > 0 {
		c.duplicated += dup
		c.t.Errorf("%d bank transfers posted more than once", dup)
	}
}

// linearizable checks the bank's history with Porcupine.
func (c *checker) linearizable() {
	c.lin = c.bank.hist.check(c.t, htmlPath(c.t))
	if c.lin.result != porcupine.Ok {
		c.t.Errorf("the history of ledger operations: %s", c.lin)
	}
}

// settlementRan: the replicas' schedulers settled all along, one at a time,
// and left no run unfinished.
func (c *checker) settlementRan() {
	c.settled = c.count(`SELECT count(*) FROM settlement_runs WHERE status = 'completed'`)
	if c.settled == 0 {
		c.t.Errorf("no settlement run completed; replica 0's log:\n%s", c.load.fleet.log(0))
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.count(`SELECT count(*) FROM settlement_runs WHERE status = 'running' AND created_at < now() - interval '20 seconds'`) > 0 {
		if time.Now().After(deadline) {
			c.t.Errorf("settlement runs left running: the leader's lock is stuck")
			return
		}
		time.Sleep(time.Second)
	}
}

// pooled checks that the pooler really pooled: never more server
// connections than its pool.
func (c *checker) pooled(b *pgcluster.Bouncer) {
	n, err := b.ServerConnections(c.ctx, "minipay")
	if err != nil {
		c.t.Errorf("pgbouncer pools: %v", err)
		return
	}
	c.serverConns = n
	if n > b.PoolSize || n == 0 {
		c.t.Errorf("pgbouncer holds %d server connections, want 1 to %d", n, b.PoolSize)
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
