package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/pgdb"
)

// devRun is a running "minipay dev" and what it printed.
type devRun struct {
	*proc
}

func startDev(t *testing.T, dbURL string, args ...string) *devRun {
	t.Helper()
	p := background(t, []string{"DATABASE_URL=" + dbURL, "MINIPAY_ADDR=127.0.0.1:0", "MINIPAY_SECRET=dev-identity-secret"},
		append([]string{"dev", "--app-addr", "127.0.0.1:0"}, args...)...)
	p.waitOutput(`(?m)^\s*demo users:`)
	return &devRun{p}
}

func (d *devRun) field(name string) string {
	m := regexp.MustCompile(`(?m)^\s*` + name + `:\s+(\S+)`).FindStringSubmatch(d.stdout.String())
	if m == nil {
		d.t.Fatalf("dev printed no %s:\n%s", name, d.stdout.String())
	}
	return m[1]
}

// devDatabase is a fresh database URL whose name ends in _dev, as --reset
// wants, dropped when the test ends.
func devDatabase(t *testing.T) string {
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = pgdb.DefaultURL
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	u.Path = "/minipay_e2e_" + hex.EncodeToString(b) + "_dev"
	t.Cleanup(func() { _ = pgdb.DropDatabase(context.Background(), u.String()) })
	return u.String()
}

// TestDevKeepsItsIdentity: dev's developer, app, keys and webhook endpoint
// are the same on every start, so what a developer set up yesterday (an
// endpoint of their own) still works; --reset starts over. Purchases and
// webhook deliveries each get a line on the terminal.
func TestDevKeepsItsIdentity(t *testing.T) {
	dbURL := devDatabase(t)
	first := startDev(t, dbURL)
	names := []string{"admin key", "host key", "developer", "app", "secret key", "webhook", "webhook secret"}
	was := map[string]string{}
	for _, n := range names {
		was[n] = first.field(n)
	}
	if !strings.Contains(first.stdout.String(), "made on this first start") {
		t.Fatalf("first start:\n%s", first.stdout.String())
	}
	api := first.field("API")
	sk := was["secret key"]
	call := func(method, path, key string, body any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, api+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	status, mine := call("POST", "/v1/webhook_endpoints", sk, map[string]any{"url": "http://127.0.0.1:9/mine", "enabled_events": []string{"refund.succeeded"}})
	if status != 201 {
		t.Fatalf("register an endpoint: %d %v", status, mine)
	}

	// A purchase through the demo backend and the host page's server.
	app, page := first.field("mini-app"), first.field("host page")
	host := strings.TrimSuffix(page, "/demo/")
	res, err := http.Post(app+"/api/checkout", "application/json", strings.NewReader(`{"item": "tea"}`))
	if err != nil {
		t.Fatal(err)
	}
	var sess map[string]string
	_ = json.NewDecoder(res.Body).Decode(&sess)
	res.Body.Close()
	body, _ := json.Marshal(map[string]string{"user_id": "usr_demo_lin", "client_secret": sess["client_secret"]})
	if res, err = http.Post(host+"/demo/api/sessions/"+sess["session_id"]+"/confirm", "application/json", bytes.NewReader(body)); err != nil || res.StatusCode != 200 {
		t.Fatalf("confirm: %v %v", res, err)
	}
	res.Body.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		log := first.stderr.String()
		if strings.Contains(log, "purchase  "+sess["session_id"]+" 38.00 CNY (goods)") &&
			regexp.MustCompile(`webhook   checkout\.session\.completed +evt_\S+ -> http://127\.0\.0\.1:\d+/webhooks 204`).MatchString(log) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no purchase and webhook lines on the terminal:\n%s", log)
		}
	}
	// A database made before memberships: the app lacks the option.
	admin := was["admin key"]
	if status, a := call("PATCH", "/v1/apps/"+was["app"], admin, map[string]any{"options": []string{"goods", "virtual_goods", "tip"}}); status != 200 {
		t.Fatalf("take the subscription option away: %d %v", status, a)
	}
	first.stop()

	second := startDev(t, dbURL)
	for _, n := range names {
		if got := second.field(n); got != was[n] {
			t.Errorf("%s changed across a restart: %s, then %s", n, was[n], got)
		}
	}
	if !strings.Contains(second.stdout.String(), "the same as on earlier starts") {
		t.Fatalf("second start:\n%s", second.stdout.String())
	}
	api = second.field("API")
	if status, ep := call("GET", "/v1/webhook_endpoints/"+mine["id"].(string), sk, nil); status != 200 || ep["status"] != "enabled" {
		t.Fatalf("the endpoint registered before the restart: %d %v", status, ep)
	}
	if status, a := call("GET", "/v1/apps/"+was["app"], admin, nil); status != 200 || !slices.Contains(a["options"].([]any), any("subscription")) {
		t.Fatalf("the restart did not enable the options the demo sells: %d %v", status, a)
	}
	second.stop()

	third := startDev(t, dbURL, "--reset")
	if third.field("developer") == was["developer"] || third.field("secret key") == was["secret key"] {
		t.Fatal("--reset kept the old identity")
	}
	third.stop()
}
