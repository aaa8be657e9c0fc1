package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/minipay/minipay/internal/pgdb"
)

// server is a "minipay serve" started by a benchmark.
type server struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{} // closed when the process has exited
	err  error         // how it exited, once done is closed
	log  *bytes.Buffer
}

var listeningLine = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// startServer runs this binary's serve command against dbURL with env and
// waits until it listens.
func startServer(ctx context.Context, dbURL string, env ...string) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "MINIPAY_ADDR=127.0.0.1:0")
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, done: make(chan struct{}), log: &bytes.Buffer{}}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start serve: %w", err)
	}
	found := make(chan string, 1)
	read := make(chan struct{})
	var last []string // the last lines before the listening line, to explain a failed start
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		listening := false
		for sc.Scan() {
			// The server logs a line per request: once it listens, only
			// errors are kept, found without a regular expression or a
			// copy of every line (this scan shares the cores it measures).
			line := sc.Bytes()
			if listening {
				if bytes.Contains(line, []byte(`"level":"ERROR"`)) && s.log.Len() < 1<<16 {
					s.log.Write(line)
					s.log.WriteByte('\n')
				}
				continue
			}
			if m := listeningLine.FindSubmatch(line); m != nil {
				found <- string(m[1])
				listening = true
				continue
			}
			last = append(last[max(0, len(last)-9):], string(line))
			if bytes.Contains(line, []byte(`"level":"ERROR"`)) && s.log.Len() < 1<<16 {
				s.log.Write(line)
				s.log.WriteByte('\n')
			}
		}
	}()
	go func() {
		<-read // Wait closes the pipe: read it to the end first
		s.err = cmd.Wait()
		close(s.done)
	}()
	select {
	case addr := <-found:
		s.url = "http://" + addr
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("serve exited: %v:\n%s", s.err, strings.Join(last, "\n"))
	case <-time.After(60 * time.Second):
		s.stop()
		return nil, fmt.Errorf("serve did not start")
	}
}

// stop interrupts the server and waits for it to exit; stopping it again
// returns at once.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
	}
}

// client calls the API with one key.
type client struct {
	http *http.Client
	base string
}

func newHTTPClient(conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute}}
}

// call sends a JSON request and decodes the JSON answer into out.
func (c client) call(ctx context.Context, method, path, key string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

const (
	benchAdminKey = "bench-admin-key"
	benchHostKey  = "bench-host-key"
	benchApps     = 16
)

// benchCheckout measures confirmed checkouts over real HTTP: each client
// creates a session with an app's key and confirms it with the host's key,
// against a serve this benchmark starts.
func benchCheckout(ctx context.Context, o Options) (*Result, error) {
	if o.Clients == 0 {
		o.Clients = 64
	}
	if err := checkConnections(ctx, o); err != nil {
		return nil, err
	}
	dbURL, drop, err := freshDatabase(ctx, o.DatabaseURL, "checkout", o.Keep)
	if err != nil {
		return nil, err
	}
	defer drop()
	srv, err := startServer(ctx, dbURL, "MINIPAY_ADMIN_KEY="+benchAdminKey, "MINIPAY_HOST_KEY="+benchHostKey,
		"MINIPAY_RATE_LIMIT=0", "MINIPAY_SECRET=bench", "MINIPAY_DEBUG_ADDR="+o.Getenv("MINIPAY_DEBUG_ADDR"))
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	if o.Senders == 0 {
		o.Senders = 256
	}
	c := client{http: newHTTPClient(2 * o.Clients), base: srv.url}
	users := o.Clients
	if o.Rate > 0 || o.FindMax {
		users = max(users, o.Senders)
	}
	keys, err := setupCheckout(ctx, c, users)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, srv.log.String())
	}
	res := &Result{Kind: "checkout", Unit: "checkouts", Clients: o.Clients, Duration: o.Duration}
	meterPool, err := pgdb.Open(ctx, dbURL, 1)
	if err != nil {
		return nil, err
	}
	defer meterPool.Close()
	cpu := newCPUMeter(meterPool, srv.cmd.Process.Pid)
	load := func(ctx context.Context, tag string, rate float64, d, limit time.Duration) (openRun, error) {
		ws := newWires(c.base, o.Senders)
		defer ws.close()
		if err := ws.dial(ctx, time.Now().Add(d+openLoopGrace)); err != nil {
			return openRun{}, err
		}
		return openLoop(ctx, rate, d, o.Senders, limit, func(ctx context.Context, s int, i int64) error {
			return oneCheckout(ctx, ws[s], keys[s%len(keys)], fmt.Sprintf("bench_user_%d", s), tag, int(i))
		})
	}
	var found maxRate
	switch {
	case o.Rate > 0:
		res.Clients = o.Senders
		err = atRate(ctx, o, res, load, checkoutP99Limit, cpu)
	default:
		err = closedCheckout(ctx, o, c, keys, res, cpu)
		if err == nil && o.FindMax {
			found, err = findMax(ctx, o, res, load, checkoutP99Limit, findHooks{cpu: cpu})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, srv.log.String())
	}
	var tb struct {
		Balanced bool `json:"balanced"`
	}
	if err := c.call(ctx, "GET", "/v1/ledger/trial_balance", benchAdminKey, nil, 200, &tb); err != nil || !tb.Balanced {
		return nil, fmt.Errorf("trial balance after the run: %v %v", tb.Balanced, err)
	}
	res.Extra = append(res.Extra, KV{"requests_per_checkout", 2}, KV{"trial_balanced", true})
	res.Notes = append(res.Notes, "latency is one checkout: create the session, then confirm it")
	srv.stop()
	if o.FindMax {
		if err := plotFindMax(o, res, found, checkoutP99Limit); err != nil {
			return nil, err
		}
	}
	if o.NoBaseline {
		return res, nil
	}
	if res.BaselineTPS, err = pgbench(ctx, dbURL, o.Clients, o.Duration, checkoutBaseline()...); err != nil {
		return nil, err
	}
	return res, nil
}

// setupCheckout creates the apps and funds one wallet per client, and
// returns the apps' secret keys.
func setupCheckout(ctx context.Context, c client, clients int) ([]string, error) {
	var dev struct{ ID string }
	if err := c.call(ctx, "POST", "/v1/developers", benchAdminKey, map[string]any{"name": "bench"}, 201, &dev); err != nil {
		return nil, err
	}
	var keys []string
	for i := 0; i < benchApps; i++ {
		var app struct {
			SecretKey string `json:"secret_key"`
		}
		err := c.call(ctx, "POST", "/v1/apps", benchAdminKey, map[string]any{"developer": dev.ID, "name": fmt.Sprintf("app %d", i),
			"options": []string{"goods", "virtual_goods"}, "currencies": []string{"CNY"}}, 201, &app)
		if err != nil {
			return nil, err
		}
		keys = append(keys, app.SecretKey)
	}
	for u := 0; u < clients; u++ {
		err := c.call(ctx, "POST", fmt.Sprintf("/v1/wallets/bench_user_%d/topups", u), benchHostKey,
			map[string]any{"amount": "90000000.00", "currency": "CNY"}, 200, nil)
		if err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// closedCheckout is the closed-loop measurement: o.Clients clients
// checking out back to back, after a warm-up.
func closedCheckout(ctx context.Context, o Options, c client, keys []string, res *Result, cpu *cpuMeter) error {
	warm := min(2*time.Second, o.Duration/5)
	if _, _, err := checkoutLoad(ctx, c, keys, o.Clients, warm, "w"); err != nil {
		return err
	}
	before := cpu.sample(ctx)
	n, lat, err := checkoutLoad(ctx, c, keys, o.Clients, o.Duration, "c")
	after := cpu.sample(ctx)
	if err != nil {
		return err
	}
	res.Throughput = float64(n) / o.Duration.Seconds()
	p := lat.percentiles(0.5, 0.99)
	res.P50, res.P99 = p[0], p[1]
	res.Extra = append(res.Extra, perOp(before, after, n, "checkout")...)
	return nil
}

func checkoutLoad(ctx context.Context, c client, keys []string, clients int, d time.Duration, tag string) (int64, latencies, error) {
	ws := newWires(c.base, clients)
	defer ws.close()
	return closedLoop(ctx, clients, d, func(ctx context.Context, cl, i int) error {
		return oneCheckout(ctx, ws[cl], keys[cl%len(keys)], fmt.Sprintf("bench_user_%d", cl), tag, i)
	})
}

// oneCheckout creates a session with an app's key and confirms it with the
// host's key, as a mini-app's backend and the host's wallet service would.
func oneCheckout(ctx context.Context, w *wire, key, user, tag string, i int) error {
	option := "goods"
	if i%3 == 0 {
		option = "virtual_goods"
	}
	body := fmt.Appendf(nil, `{"amount":"%d.%02d","currency":"CNY","option":%q,"client_reference_id":"order-%s-%d"}`,
		1+i%50, i%100, option, tag, i)
	raw, err := w.post(ctx, "/v1/checkout/sessions", key, body, 201)
	if err != nil {
		return err
	}
	var sess struct {
		ID           string `json:"id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(raw, &sess); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	body, err = json.Marshal(map[string]string{"user_id": user, "client_secret": sess.ClientSecret})
	if err != nil {
		return err
	}
	raw, err = w.post(ctx, "/v1/checkout/sessions/"+sess.ID+"/confirm", benchHostKey, body, 200)
	if err != nil {
		return err
	}
	if !bytes.Contains(raw, []byte(`"status":"complete"`)) {
		return fmt.Errorf("confirm %s: session not complete: %s", sess.ID, raw)
	}
	return nil
}

// checkoutBaseline is a checkout done the obvious way in plain SQL, on the
// same tables: one transaction inserts the session; a second locks the
// wallet, inserts the transfer and its postings, updates the three
// balances (the platform's fee account is hot), completes the session and
// writes the payment, the balance transaction and the event.
func checkoutBaseline() []script {
	return []script{{name: "checkout", weight: 1, body: `\set u random(0, 63)
\set amt random(100, 5099)
\set fee :amt * 6 / 1000
SELECT nextval('ledger_transfers_seq') AS n \gset
BEGIN;
INSERT INTO checkout_sessions (id, app_id, developer_id, status, capture_method, currency, amount_total, option, client_secret, expires_at)
  VALUES ('cs_pgb_' || :n, 'app_pgb', 'dev_pgb', 'open', 'automatic', 'CNY', :amt, 'goods', 'cs_pgb_' || :n || '_secret', now() + interval '30 minutes');
COMMIT;
BEGIN;
SELECT nextval('ledger_transfers_seq') AS tseq \gset
SELECT seq AS wseq FROM ledger_accounts WHERE code = 'wallet:bench_user_' || :u || ':CNY' FOR UPDATE \gset
INSERT INTO ledger_transfers (seq, id, code, kind, content_hash, created_at) VALUES (:tseq, 'pay_cs_pgb_' || :n, 'payment', 'posted', '\x00', now());
INSERT INTO ledger_postings (transfer_seq, idx, account_seq, debits_posted, credits_posted, debits_pending, credits_pending, created_at) VALUES
  (:tseq, 0, :wseq, :amt, 0, 0, 0, now()),
  (:tseq, 1, (SELECT seq FROM ledger_accounts WHERE code = 'platform:fees:CNY'), 0, :fee, 0, 0, now()),
  (:tseq, 2, (SELECT seq FROM ledger_accounts WHERE code LIKE 'dev:%:pending:CNY' LIMIT 1), 0, :amt - :fee, 0, 0, now());
UPDATE ledger_accounts SET debits_posted = debits_posted + :amt WHERE seq = :wseq AND credits_posted - debits_posted - debits_pending >= :amt;
UPDATE ledger_accounts SET credits_posted = credits_posted + :fee WHERE code = 'platform:fees:CNY';
UPDATE ledger_accounts SET credits_posted = credits_posted + :amt - :fee WHERE code = (SELECT code FROM ledger_accounts WHERE code LIKE 'dev:%:pending:CNY' LIMIT 1);
UPDATE checkout_sessions SET status = 'complete', fee = :fee, user_id = 'bench_user_' || :u, completed_at = now(), version = version + 1
  WHERE id = 'cs_pgb_' || :n AND status = 'open';
INSERT INTO payments (id, app_id, developer_id, user_id, customer, currency, amount, fee, option, option_version, fee_bps, fee_fixed, available_on, captured_at)
  VALUES ('cs_pgb_' || :n, 'app_pgb', 'dev_pgb', 'bench_user_' || :u, 'ou_pgb_' || :u, 'CNY', :amt, :fee, 'goods', 'goods@2026-01-01T00:00:00Z', 60, '0', now() + interval '1 day', now());
INSERT INTO balance_transactions (id, developer_id, app_id, type, currency, amount, fee, net, source_id, payment_id, available_on)
  VALUES ('txn_pgb_' || :n, 'dev_pgb', 'app_pgb', 'payment', 'CNY', :amt, :fee, :amt - :fee, 'cs_pgb_' || :n, 'cs_pgb_' || :n, now() + interval '1 day');
INSERT INTO events (id, type, developer_id, app_id, object_id, object_version, data)
  VALUES ('evt_pgb_' || :n, 'checkout.session.completed', 'dev_pgb', 'app_pgb', 'cs_pgb_' || :n, 2, '{"object": {}}');
COMMIT;
`}}
}
