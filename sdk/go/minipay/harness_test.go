package minipay_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minipay/minipay/sdk/go/minipay"
)

// The SDK's tests run against the real minipay binary, built from this
// checkout, on a fresh PostgreSQL database each (DATABASE_URL's server, or
// the local one), dropped when the test ends.

// repoRoot is the checkout the SDK lives in.
var repoRoot = filepath.Join("..", "..", "..")

// binary is the minipay binary, built on first use (the unit tests and
// fuzz targets need none) into binDir, which TestMain removes.
var (
	binary    string
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// minipayBinary builds cmd/minipay once per test process.
func minipayBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "minipay-sdkgo"); buildErr != nil {
			return
		}
		binary = filepath.Join(binDir, "minipay")
		build := exec.Command("go", "build", "-o", binary, "./cmd/minipay")
		build.Dir = repoRoot
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build minipay: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

const adminKey, hostKey = "admin_sdk_go_test", "host_sdk_go_test"

// server is a running "minipay serve" with one app whose secret key the
// client uses.
type server struct {
	t      *testing.T
	url    string
	sk     string
	client *minipay.Client
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freshDatabase is a URL for a new database on the test server; the
// database is dropped (with psql) when the test ends.
func freshDatabase(t *testing.T) string {
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "minipay_sdkgo_" + hex.EncodeToString(b)
	maintenance := *u
	maintenance.Path = "/postgres"
	u.Path = "/" + name
	t.Cleanup(func() {
		out, err := exec.Command("psql", maintenance.String(), "-qc", "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)").CombinedOutput()
		if err != nil {
			t.Errorf("drop %s: %v %s", name, err, out)
		}
	})
	return u.String()
}

var listening = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// newServer starts "minipay serve" with extra environment and makes a
// developer and an app.
func newServer(t *testing.T, env ...string) *server {
	t.Helper()
	cmd := exec.Command(minipayBinary(t), "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+freshDatabase(t), "MINIPAY_ADDR=127.0.0.1:0", "MINIPAY_ADMIN_KEY="+adminKey,
		"MINIPAY_HOST_KEY="+hostKey, "MINIPAY_SECRET=sdk-go-test-secret", "MINIPAY_WEBHOOK_ALLOW_PRIVATE=true",
		"MINIPAY_RATE_LIMIT=0", "MINIPAY_SETTLEMENT_SCHEDULE=off")
	cmd.Env = append(cmd.Env, env...)
	s := &server{t: t, stderr: &lockedBuffer{}}
	cmd.Stderr, cmd.Stdout = s.stderr, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(60 * time.Second); s.url == ""; time.Sleep(20 * time.Millisecond) {
		if m := listening.FindStringSubmatch(s.stderr.String()); m != nil {
			s.url = "http://" + m[1]
		}
		select {
		case <-done:
			t.Fatalf("minipay serve exited:\n%s", s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("minipay serve never listened:\n%s", s.stderr.String())
		}
	}
	dev := s.raw("POST", "/v1/developers", adminKey, `{"name": "SDK test developer"}`, 201)
	app := s.raw("POST", "/v1/apps", adminKey, `{"developer": "`+dev["id"].(string)+`", "name": "SDK test app", "options": ["goods", "virtual_goods", "tip"], "currencies": ["CNY"]}`, 201)
	s.sk = app["secret_key"].(string)
	s.client = minipay.New(s.sk, minipay.WithBaseURL(s.url), minipay.WithBackoff(10*time.Millisecond, 2*time.Second))
	return s
}

// raw calls the API directly, for what a developer's key may not do (the
// operator's calls).
func (s *server) raw(method, path, key, body string, want int) map[string]any {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &out)
	if res.StatusCode != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, want, raw)
	}
	return out
}

// sessions counts the app's sessions, through the API.
func (s *server) sessions() int {
	s.t.Helper()
	l, err := s.client.ListSessions(context.Background(), minipay.SessionListParams{ListParams: minipay.ListParams{Limit: 100}})
	if err != nil {
		s.t.Fatal(err)
	}
	return len(l.Data)
}
