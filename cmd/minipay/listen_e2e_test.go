package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/minipay/minipay/internal/testdb"
	"github.com/minipay/minipay/sandbox"
)

// inbox is a developer's local webhook receiver: it keeps what it gets.
type inbox struct {
	mu  sync.Mutex
	got []delivered
}

type delivered struct {
	header http.Header
	body   []byte
	typ    string
}

func newInbox(t *testing.T) (*inbox, string) {
	in := &inbox{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct{ Type string }
		_ = json.Unmarshal(body, &ev)
		in.mu.Lock()
		in.got = append(in.got, delivered{r.Header.Clone(), body, ev.Type})
		in.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return in, srv.URL + "/hooks"
}

// waitType waits for a delivery of typ and returns it.
func (in *inbox) waitType(t *testing.T, typ string) delivered {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		in.mu.Lock()
		for _, d := range in.got {
			if d.typ == typ {
				in.mu.Unlock()
				return d
			}
		}
		in.mu.Unlock()
	}
	t.Fatalf("no %s reached the receiver", typ)
	return delivered{}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// background runs a command of the binary until the test ends.
func background(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{t: t, cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(p.kill)
	return p
}

// waitOutput waits until the process's stdout matches re.
func (p *proc) waitOutput(re string) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := rx.FindStringSubmatch(p.stdout.String()); m != nil {
			return m
		}
	}
	p.t.Fatalf("no %q in the output:\n%s\nstderr:\n%s", re, p.stdout.String(), p.stderr.String())
	return nil
}

// TestListenAndTrigger is a developer's loop on a laptop: minipay listen
// forwards the app's events to a local receiver, signed with a local
// secret that stays the same; minipay trigger makes every event type
// happen for real; the API restarting does not stop listen; Ctrl-C does.
func TestListenAndTrigger(t *testing.T) {
	db := testdb.New(t)
	addr := freePort(t)
	serveEnv := append(settleEnv(db, quickCatalog(t)), "MINIPAY_SANDBOX=true", "MINIPAY_WEBHOOK_ALLOW_PRIVATE=true",
		"MINIPAY_SETTLEMENT_SCHEDULE=off", "MINIPAY_ADDR="+addr)
	api := startServe(t, serveEnv...)
	sk := newApp(t, api)
	in, hook := newInbox(t)
	cliEnv := []string{"XDG_CONFIG_HOME=" + t.TempDir(), "MINIPAY_SECRET_KEY=" + sk, "MINIPAY_URL=" + api.url}

	_, secret, stderr := minipay(t, cliEnv, "listen", "--print-secret")
	secret = strings.TrimSpace(secret)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("listen --print-secret: %q %s", secret, stderr)
	}
	if _, again, _ := minipay(t, cliEnv, "listen", "--print-secret"); strings.TrimSpace(again) != secret {
		t.Fatalf("the local secret changed: %s then %s", secret, again)
	}
	other := newApp(t, api)
	if _, theirs, _ := minipay(t, append(cliEnv, "MINIPAY_SECRET_KEY="+other), "listen", "--print-secret"); strings.TrimSpace(theirs) == secret {
		t.Fatal("two apps share a local secret")
	}
	verifier, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}

	if code, _, stderr := minipay(t, cliEnv, "trigger", "checkout.session.complete"); code != 2 || !strings.Contains(stderr, "checkout.session.completed ") {
		t.Fatalf("trigger with a misspelt type: %d %s", code, stderr)
	}

	l := background(t, cliEnv, "listen", "--forward-to", hook)
	if m := l.waitOutput(`secret is (\S+)`); m[1] != secret {
		t.Fatalf("listen printed secret %s, --print-secret %s", m[1], secret)
	}
	for _, tt := range sandbox.Types() {
		typ := tt[0]
		if code, out, stderr := minipay(t, cliEnv, "trigger", typ); code != 0 || !strings.Contains(out, "Triggered "+typ) {
			t.Fatalf("trigger %s: %d %s %s", typ, code, out, stderr)
		}
		d := in.waitType(t, typ)
		if err := verifier.Verify(d.body, d.header); err != nil {
			t.Fatalf("%s forwarded with a bad signature: %v", typ, err)
		}
		l.waitOutput(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ` + regexp.QuoteMeta(typ) + ` +` + regexp.QuoteMeta(d.header.Get("webhook-id")) + `  -> 204 \(\d+ ms\)$`)
	}

	api.stop()
	l.waitOutput(`lost the API`)
	startServe(t, serveEnv...) // on the same address
	if code, _, stderr := minipay(t, cliEnv, "trigger", "refund.succeeded"); code != 0 {
		t.Fatalf("trigger after the restart: %s", stderr)
	}
	l.waitOutput(`reconnected`)
	for deadline := time.Now().Add(30 * time.Second); strings.Count(l.stdout.String(), " refund.succeeded ") < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the event after the restart was not forwarded:\n%s", l.stdout.String())
		}
	}

	if err := l.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-l.done:
		l.done <- err
		if err != nil || !strings.Contains(l.stdout.String(), "Stopped.") {
			t.Fatalf("listen after Ctrl-C: %v\n%s", err, l.stdout.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("listen did not stop on Ctrl-C")
	}
}

// TestTriggerRefusedOutsideSandbox: a server that is not a sandbox refuses
// every trigger, and trigger says why.
func TestTriggerRefusedOutsideSandbox(t *testing.T) {
	db := testdb.New(t)
	api := startServe(t, settleEnv(db, quickCatalog(t))...)
	sk := newApp(t, api)
	code, _, stderr := minipay(t, []string{"MINIPAY_SECRET_KEY=" + sk, "MINIPAY_URL=" + api.url}, "trigger", "checkout.session.completed")
	if code != 1 || !strings.Contains(stderr, "not a sandbox") {
		t.Fatalf("trigger on a production server: %d %s", code, stderr)
	}
}

// newApp makes a developer and an app (goods in CNY) and returns its key.
func newApp(t *testing.T, p *proc) string {
	t.Helper()
	status, dev := p.do("POST", "/v1/developers", settleAdmin, `{"name": "listener"}`)
	if status != 201 {
		t.Fatalf("developer: %d %v", status, dev)
	}
	status, app := p.do("POST", "/v1/apps", settleAdmin, fmt.Sprintf(`{"developer": %q, "name": "app", "options": ["goods"], "currencies": ["CNY"]}`, dev["id"]))
	if status != 201 {
		t.Fatalf("app: %d %v", status, app)
	}
	return app["secret_key"].(string)
}
