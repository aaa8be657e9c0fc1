package main

import (
	"context"
	"encoding/json"
	"fmt"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
)

// TestWebhooksSurviveKill9 makes events with real checkouts, kills the
// serving process with SIGKILL while deliveries are in flight, restarts it,
// and checks that every event reached the receiver with a valid signature.
func TestWebhooksSurviveKill9(t *testing.T) {
	db := testdb.New(t)
	const admin, host = "e2e-admin-key", "e2e-host-key"
	env := []string{"DATABASE_URL=" + db.URL, "MINIPAY_ADMIN_KEY=" + admin, "MINIPAY_HOST_KEY=" + host,
		"MINIPAY_SECRET=e2e-secret", "MINIPAY_WEBHOOK_ALLOW_PRIVATE=true"}

	var (
		mu       sync.Mutex
		secret   string
		valid    = map[string]int{} // event id → verified receipts
		invalid  int
		requests int
	)
	hold := make(chan struct{}) // requests after the first few wait here until the kill
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(hold) }) }
	t.Cleanup(release)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		requests++
		n := requests
		err := verifyReference(secret, r.Header, body)
		mu.Unlock()
		if n > 5 {
			select {
			case <-hold:
			case <-r.Context().Done():
				return // the sender died: this one was not received
			}
		}
		mu.Lock()
		if err != nil {
			invalid++
		} else {
			valid[r.Header.Get("webhook-id")]++
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rc.Close()

	p := startServe(t, env...)
	must := func(p *proc, want int, method, path, key, body string) map[string]any {
		t.Helper()
		status, out := p.do(method, path, key, body)
		if status != want {
			t.Fatalf("%s %s: status %d, want %d: %v", method, path, status, want, out)
		}
		return out
	}
	dev := must(p, 201, "POST", "/v1/developers", admin, `{"name": "Hooked"}`)
	app := must(p, 201, "POST", "/v1/apps", admin, `{"developer": "`+dev["id"].(string)+`", "name": "Hooked app", "options": ["goods"], "currencies": ["CNY"]}`)
	sk := app["secret_key"].(string)
	ep := must(p, 201, "POST", "/v1/webhook_endpoints", sk, `{"url": "`+rc.URL+`/hooks", "enabled_events": ["*"]}`)
	mu.Lock()
	secret = ep["secret"].(string)
	mu.Unlock()
	must(p, 200, "POST", "/v1/wallets/usr_1/topups", host, `{"amount": "1000.00", "currency": "CNY"}`)

	const checkouts = 30
	for i := range checkouts {
		sess := must(p, 201, "POST", "/v1/checkout/sessions", sk, fmt.Sprintf(`{"amount": "1.%02d", "currency": "CNY", "option": "goods"}`, i))
		must(p, 200, "POST", "/v1/checkout/sessions/"+sess["id"].(string)+"/confirm", host,
			`{"user_id": "usr_1", "client_secret": "`+sess["client_secret"].(string)+`"}`)
	}
	// Wait until deliveries are held in flight, then kill -9.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := requests
		mu.Unlock()
		if n > 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no deliveries in flight; serve log:\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill()
	release()

	// The restarted process picks up the dead one's claims when their
	// leases run out (30 s).
	p2 := startServe(t, env...)
	var events []string
	rows, err := db.Pool.Query(context.Background(), `SELECT id FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		events = append(events, id)
	}
	if rows.Err() != nil || len(events) != checkouts {
		t.Fatalf("%d events (%v), want %d", len(events), rows.Err(), checkouts)
	}
	deadline = time.Now().Add(120 * time.Second)
	for {
		mu.Lock()
		missing := 0
		for _, id := range events {
			if valid[id] == 0 {
				missing++
			}
		}
		bad := invalid
		mu.Unlock()
		if bad > 0 {
			t.Fatalf("%d deliveries with an invalid signature", bad)
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events never delivered; serve log:\n%s", missing, len(events), p2.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Every delivery ends recorded as succeeded; the logs agree over HTTP.
	for {
		var n int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == checkouts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries recorded as succeeded", n, checkouts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	list := must(p2, 200, "GET", "/v1/events?limit=100&type=checkout.session.completed", sk, "")
	if n := len(list["data"].([]any)); n != checkouts {
		t.Fatalf("GET /v1/events lists %d", n)
	}
	atts := must(p2, 200, "GET", "/v1/webhook_endpoints/"+ep["id"].(string)+"/attempts?limit=100", sk, "")
	if n := len(atts["data"].([]any)); n < checkouts {
		b, _ := json.Marshal(atts)
		t.Fatalf("%d attempts logged: %s", n, b)
	}
	p2.stop()
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

// TestOnCitus runs the real binary against a Citus cluster (a coordinator
// and two workers; serve distributes the tables at start): the webhook
// outbox loses nothing across a replica's SIGKILL.
func TestOnCitus(t *testing.T) {
	testdb.WithCitus(t)
	t.Run("WebhooksSurviveKill9", TestWebhooksSurviveKill9)
}
