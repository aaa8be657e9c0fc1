package main

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
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/internal/testdb"
)

// binary is the minipay binary under test, built once by TestMain.
var binary string

const testVersion, testCommit = "v0.0.0-e2e", "e2e0c0ffee"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "minipay-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "minipay")
	// Stamped as a release build is, so the version test has something
	// known to look for.
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion+" -X main.commit="+testCommit,
		"-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build minipay: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running "minipay serve".
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listening = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// startServe starts the binary with env (DATABASE_URL and friends) on a free
// port and waits until it listens.
func startServe(t *testing.T, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(os.Environ(), "MINIPAY_ADDR=127.0.0.1:0")
	cmd.Env = append(cmd.Env, env...)
	p := &proc{t: t, cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := listening.FindStringSubmatch(p.stderr.String()); m != nil {
			p.url = "http://" + m[1]
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("serve exited early: %v\n%s", err, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve never listened:\n%s", p.stderr.String())
	return nil
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			p.t.Fatalf("serve exited with %v after SIGTERM\n%s", err, p.stderr.String())
		}
	case <-time.After(40 * time.Second):
		p.t.Fatalf("serve did not stop after SIGTERM")
	}
}

func (p *proc) do(method, path, key, body string, headers ...string) (int, map[string]any) {
	p.t.Helper()
	status, raw, err := p.try(method, path, key, body, headers...)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return status, out
}

func (p *proc) try(method, path, key, body string, headers ...string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, p.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, err
}

var generatedKey = regexp.MustCompile(`generated (admin|host) key \(shown once[^)]*\): (\S+)`)

func generatedKeys(out string) map[string]string {
	keys := map[string]string{}
	for _, m := range generatedKey.FindAllStringSubmatch(out, -1) {
		keys[m[1]] = m[2]
	}
	return keys
}

// TestServeFirstStart starts the real binary on an empty database: it
// creates the schema, prints generated keys once, serves the ledger, shuts
// down on SIGTERM, and on the next start prints no keys and accepts the old
// ones.
func TestServeFirstStart(t *testing.T) {
	db := testdb.NewEmpty(t)
	p := startServe(t, "DATABASE_URL="+db.URL, "MINIPAY_METRICS_ADDR=127.0.0.1:0")
	// The keys are printed before serve listens, but stdout reaches the
	// test through a copying goroutine that may lag behind stderr's
	// "listening": give it a moment.
	var keys map[string]string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		keys = generatedKeys(p.stdout.String())
		if strings.HasPrefix(keys["admin"], "admin_") && strings.HasPrefix(keys["host"], "host_") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no generated keys on stdout:\n%s", p.stdout.String())
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, _ := p.do("GET", path, "", ""); status != 200 {
			t.Fatalf("%s: %d", path, status)
		}
	}
	admin := keys["admin"]
	for _, code := range []string{"bank", "wallet"} {
		normal := map[string]string{"bank": "debit", "wallet": "credit"}[code]
		if status, body := p.do("POST", "/v1/ledger/accounts", admin, `{"code":"`+code+`","currency":"CNY","normal_balance":"`+normal+`"}`); status != 201 {
			t.Fatalf("create %s: %d %v", code, status, body)
		}
	}
	transfer := `{"code":"topup","postings":[{"account":"bank","debit":"12.34"},{"account":"wallet","credit":"12.34"}]}`
	if status, body := p.do("POST", "/v1/ledger/transfers", admin, transfer, "Idempotency-Key", "first"); status != 201 {
		t.Fatalf("transfer: %d %v", status, body)
	}
	if status, _, err := p.try("GET", "/metrics", "", ""); err != nil || status != 404 {
		t.Fatalf("metrics on the API's listener: %d %v", status, err)
	}
	raw := scrape(t, p)
	if !bytes.Contains(raw, []byte("minipay_ledger_groups_total")) || !bytes.Contains(raw, []byte(`route="/v1/ledger/transfers"`)) {
		t.Fatalf("metrics:\n%s", raw)
	}
	p.stop()
	if !strings.Contains(p.stderr.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the log:\n%s", p.stderr.String())
	}

	p2 := startServe(t, "DATABASE_URL="+db.URL)
	if again := generatedKeys(p2.stdout.String()); len(again) != 0 {
		t.Fatalf("keys printed twice: %v", again)
	}
	if status, body := p2.do("POST", "/v1/ledger/transfers", admin, transfer, "Idempotency-Key", "first"); status != 201 {
		t.Fatalf("replay after restart: %d %v", status, body)
	}
	if status, body := p2.do("GET", "/v1/ledger/accounts/wallet", admin, ""); status != 200 || body["balance"] != "12.34" {
		t.Fatalf("wallet after restart: %d %v", status, body)
	}
	p2.stop()
}

var metricsListening = regexp.MustCompile(`"msg":"metrics listening","addr":"([^"]+)"`)

// scrape reads /metrics from the metrics listener of p, which was started
// with MINIPAY_METRICS_ADDR.
func scrape(t *testing.T, p *proc) []byte {
	t.Helper()
	m := metricsListening.FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no metrics listener in the log:\n%s", p.stderr.String())
	}
	res, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", res.StatusCode, err)
	}
	return raw
}

// TestServeKeysFromEnvironment: keys given are used exactly as given, and
// replacing one keeps the old one working for the grace period.
func TestServeKeysFromEnvironment(t *testing.T) {
	db := testdb.New(t)
	p := startServe(t, "DATABASE_URL="+db.URL, "MINIPAY_ADMIN_KEY=my-own-admin-key-1", "MINIPAY_HOST_KEY=my-own-host-key-1")
	if keys := generatedKeys(p.stdout.String()); len(keys) != 0 {
		t.Fatalf("generated keys although given: %v", keys)
	}
	if status, _ := p.do("GET", "/v1/ledger/trial_balance", "my-own-admin-key-1", ""); status != 200 {
		t.Fatalf("given admin key refused: %d", status)
	}
	if status, _ := p.do("GET", "/v1/ledger/trial_balance", "my-own-host-key-1", ""); status != 403 {
		t.Fatalf("host key on an admin route: %d", status)
	}
	p.stop()
	p2 := startServe(t, "DATABASE_URL="+db.URL, "MINIPAY_ADMIN_KEY=my-own-admin-key-2", "MINIPAY_HOST_KEY=my-own-host-key-1")
	for _, k := range []string{"my-own-admin-key-1", "my-own-admin-key-2"} {
		if status, _ := p2.do("GET", "/v1/ledger/trial_balance", k, ""); status != 200 {
			t.Fatalf("key %s during the grace period: %d", k, status)
		}
	}
	var expires *time.Time
	if err := db.Pool.QueryRow(context.Background(), `SELECT expires_at FROM api_keys WHERE source = 'env' AND kind = 'admin' AND expires_at IS NOT NULL`).Scan(&expires); err != nil || expires == nil || time.Until(*expires) < 23*time.Hour {
		t.Fatalf("the replaced key should expire in 24h: %v %v", expires, err)
	}
	p2.stop()
}

// TestServeCreatesDatabase points serve at a database that does not exist.
func TestServeCreatesDatabase(t *testing.T) {
	db := testdb.New(t) // for the server's address and credentials
	cfg, err := pgx.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	name := cfg.Database + "_new"
	url := strings.Replace(db.URL, "/"+cfg.Database+"?", "/"+name+"?", 1)
	t.Cleanup(func() {
		_, _ = db.Pool.Exec(context.Background(), `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
	})
	p := startServe(t, "DATABASE_URL="+url, "MINIPAY_ADMIN_KEY=k-admin-create", "MINIPAY_HOST_KEY=k-host-create")
	if status, _ := p.do("GET", "/readyz", "", ""); status != 200 {
		t.Fatalf("readyz: %d", status)
	}
	p.stop()
}

// TestGracefulShutdown sends SIGTERM while requests are in flight: every
// request either completes or is refused before it starts, none is cut off,
// and every transfer acknowledged with 201 is in the ledger.
func TestGracefulShutdown(t *testing.T) {
	db := testdb.New(t)
	p := startServe(t, "DATABASE_URL="+db.URL, "MINIPAY_ADMIN_KEY=k-admin-grace", "MINIPAY_HOST_KEY=k-host-grace")
	for _, a := range []string{`{"code":"bank","currency":"CNY","normal_balance":"debit"}`, `{"code":"w","currency":"CNY","normal_balance":"credit"}`} {
		if status, _ := p.do("POST", "/v1/ledger/accounts", "k-admin-grace", a); status != 201 {
			t.Fatal(status)
		}
	}
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	start := make(chan struct{})
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < 200; i++ {
				id := fmt.Sprintf("g%d_%d", c, i)
				body := `{"id":"` + id + `","code":"topup","postings":[{"account":"bank","debit":"1.00"},{"account":"w","credit":"1.00"}]}`
				status, raw, err := p.try("POST", "/v1/ledger/transfers", "k-admin-grace", body)
				if err != nil {
					return // the server stopped listening
				}
				if status == 201 {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				} else if status != 503 {
					t.Errorf("status %d during shutdown: %s", status, raw)
					return
				}
			}
		}()
	}
	close(start)
	time.Sleep(300 * time.Millisecond)
	p.stop()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged before shutdown")
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger_transfers WHERE id = ANY($1)`, acked).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(acked) {
		t.Fatalf("%d transfers acknowledged, %d in the ledger", len(acked), n)
	}
	t.Logf("%d transfers acknowledged before SIGTERM, all in the ledger", n)
}

// TestMigrateCommand applies migrations from two processes at once on an
// empty database and lists them.
func TestMigrateCommand(t *testing.T) {
	db := testdb.NewEmpty(t)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"migrate"}, args...)...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+db.URL)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("status")
	if err != nil || !strings.Contains(out, "pending") || strings.Contains(out, "applied 20") {
		t.Fatalf("status before: %v\n%s", err, out)
	}
	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = run("up")
		}()
	}
	wg.Wait()
	for i := range outs {
		if errs[i] != nil {
			t.Fatalf("migrate up %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	applied := strings.Count(outs[0], "applied ") + strings.Count(outs[1], "applied ")
	out, err = run("status")
	if err != nil || strings.Contains(out, "pending") {
		t.Fatalf("status after: %v\n%s", err, out)
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		lines++
	}
	if applied != lines {
		t.Fatalf("%d migrations applied by two processes, %d exist: each must be applied once\n%s\n%s", applied, lines, outs[0], outs[1])
	}
	if out, err := run("sideways"); err == nil {
		t.Fatalf("unknown action accepted: %s", out)
	}
}
