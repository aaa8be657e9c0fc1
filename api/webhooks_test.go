package api_test

import (
	"context"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWebhookEndpointsCRUDAndAuthorization(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	rival := e.tenant("rival", []string{"goods"}, []string{"CNY"})

	created := e.must(http.StatusCreated, e.call("POST", "/v1/webhook_endpoints", shop.key, map[string]any{
		"url": "https://hooks.example.com/minipay", "enabled_events": []string{"refund.succeeded", "checkout.session.completed", "refund.succeeded"},
		"description": "orders"}))
	id := created.str("id")
	if !strings.HasPrefix(id, "we_") || !strings.HasPrefix(created.str("secret"), "whsec_") || created.str("status") != "enabled" ||
		created.str("url") != "https://hooks.example.com/minipay" || len(created.body["enabled_events"].([]any)) != 2 {
		t.Fatalf("created %s", created.raw)
	}
	// The secret is shown once and stored only encrypted.
	got := e.must(http.StatusOK, e.call("GET", "/v1/webhook_endpoints/"+id, shop.key, nil))
	if got.str("secret") != "" || strings.Contains(string(got.raw), "whsec_") {
		t.Fatalf("secret shown again: %s", got.raw)
	}
	secretB64 := strings.TrimPrefix(created.str("secret"), "whsec_")
	if e.count(`SELECT count(*) FROM webhook_endpoints WHERE encode(secret_enc, 'base64') LIKE '%' || $1 || '%'`, secretB64[:16]) != 0 {
		t.Fatal("the secret is stored in clear")
	}

	list := e.must(http.StatusOK, e.call("GET", "/v1/webhook_endpoints?limit=1", shop.key, nil))
	if data := list.body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != id || list.body["has_more"] != false {
		t.Fatalf("list %s", list.raw)
	}
	upd := e.must(http.StatusOK, e.call("PATCH", "/v1/webhook_endpoints/"+id, shop.key, map[string]any{
		"enabled_events": []string{"*"}, "status": "disabled"}))
	if upd.str("status") != "disabled" || upd.body["enabled_events"].([]any)[0] != "*" || upd.str("description") != "orders" {
		t.Fatalf("updated %s", upd.raw)
	}
	rot := e.must(http.StatusOK, e.call("POST", "/v1/webhook_endpoints/"+id+"/rotate_secret", shop.key, nil))
	if !strings.HasPrefix(rot.str("secret"), "whsec_") || rot.str("secret") == created.str("secret") || rot.body["previous_secret_expires_at"] == nil {
		t.Fatalf("rotated %s", rot.raw)
	}

	// Another app sees none of it; other kinds of key are refused.
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/webhook_endpoints/" + id}, {"PATCH", "/v1/webhook_endpoints/" + id},
		{"DELETE", "/v1/webhook_endpoints/" + id}, {"POST", "/v1/webhook_endpoints/" + id + "/rotate_secret"},
		{"GET", "/v1/webhook_endpoints/" + id + "/attempts"},
	} {
		var body any
		if c.method == "PATCH" {
			body = map[string]any{"status": "enabled"}
		}
		if r := e.call(c.method, c.path, rival.key, body); r.status != http.StatusNotFound {
			t.Fatalf("rival %s %s: %d %s", c.method, c.path, r.status, r.raw)
		}
	}
	if r := e.call("GET", "/v1/webhook_endpoints", rival.key, nil); len(r.body["data"].([]any)) != 0 {
		t.Fatalf("rival lists %s", r.raw)
	}
	if r := e.admin("GET", "/v1/webhook_endpoints/"+id, nil); r.status != http.StatusForbidden {
		t.Fatalf("admin key: %d", r.status)
	}
	if r := e.call("GET", "/v1/webhook_endpoints/"+id, "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("no key: %d", r.status)
	}

	// Bad input is a clear 400 and stores nothing.
	before := e.count(`SELECT count(*) FROM webhook_endpoints`)
	for _, c := range []struct {
		body  any
		code  string
		param string
	}{
		{map[string]any{"url": "ftp://x.example/", "enabled_events": []string{"*"}}, "url_invalid", "url"},
		{map[string]any{"url": "https://x.example/", "enabled_events": []string{"nope"}}, "event_type_unknown", "enabled_events[0]"},
		{map[string]any{"url": "https://x.example/", "enabled_events": []string{}}, "parameter_missing", "enabled_events"},
		{map[string]any{"url": "https://x.example/", "enabled_events": []string{"*"}, "secret": "mine"}, "", "secret"},
		{`{"url": 5}`, "", "url"},
	} {
		r := e.call("POST", "/v1/webhook_endpoints", shop.key, c.body)
		if r.status != http.StatusBadRequest || (c.code != "" && r.errCode() != c.code) || r.errParam() != c.param {
			t.Fatalf("%v: %d %s", c.body, r.status, r.raw)
		}
	}
	if r := e.call("PATCH", "/v1/webhook_endpoints/"+id, shop.key, map[string]any{"status": "deleted"}); r.status != http.StatusBadRequest {
		t.Fatalf("patch status deleted: %d %s", r.status, r.raw)
	}
	if e.count(`SELECT count(*) FROM webhook_endpoints`) != before {
		t.Fatal("a refused endpoint was stored")
	}

	// Idempotent creation returns the same endpoint.
	body := map[string]any{"url": "https://hooks.example.com/2", "enabled_events": []string{"*"}}
	a := e.must(http.StatusCreated, e.call("POST", "/v1/webhook_endpoints", shop.key, body, "Idempotency-Key", "we-1"))
	b := e.must(http.StatusCreated, e.call("POST", "/v1/webhook_endpoints", shop.key, body, "Idempotency-Key", "we-1"))
	if a.str("id") != b.str("id") || string(a.raw) != string(b.raw) {
		t.Fatalf("replay %s vs %s", a.raw, b.raw)
	}

	del := e.must(http.StatusOK, e.call("DELETE", "/v1/webhook_endpoints/"+id, shop.key, nil))
	if del.body["deleted"] != true {
		t.Fatalf("delete %s", del.raw)
	}
	e.must(http.StatusNotFound, e.call("GET", "/v1/webhook_endpoints/"+id, shop.key, nil))
	e.must(http.StatusNotFound, e.call("DELETE", "/v1/webhook_endpoints/"+id, shop.key, nil))
}

// A real checkout produces an event that reaches a real receiver, signed;
// the event log, the attempt log and redelivery work over HTTP.
func TestWebhookDeliveryOverHTTP(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	rival := e.tenant("rival", []string{"goods"}, []string{"CNY"})
	var (
		mu  sync.Mutex
		got []*http.Request
		raw [][]byte
	)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, raw = append(got, r), append(raw, b)
		mu.Unlock()
		_, _ = io.WriteString(w, "thanks")
	}))
	defer rc.Close()
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	ep := e.must(http.StatusCreated, e.call("POST", "/v1/webhook_endpoints", shop.key, map[string]any{
		"url": rc.URL, "enabled_events": []string{"checkout.session.completed"}}))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.webhooks.Run(ctx)
	}()
	defer func() { cancel(); <-done }()

	e.topUp("usr_1", "50.00", "CNY")
	start := time.Now().Add(-time.Second)
	sess := e.session(shop, map[string]any{"amount": "12.34", "currency": "CNY", "option": "goods"})
	e.must(http.StatusOK, e.confirm(sess, "usr_1"))
	waitUntil(t, func() bool { return received() == 1 })

	mu.Lock()
	req, body := got[0], raw[0]
	mu.Unlock()
	if err := verifyReference(ep.str("secret"), req.Header, body); err != nil {
		t.Fatalf("signature: %v", err)
	}
	evtID := req.Header.Get("webhook-id")
	if !strings.Contains(string(body), `"type":"checkout.session.completed"`) || !strings.Contains(string(body), sess.str("id")) {
		t.Fatalf("body %s", body)
	}
	evt := e.must(http.StatusOK, e.call("GET", "/v1/events/"+evtID, shop.key, nil))
	if strings.TrimSpace(string(evt.raw)) != string(body) {
		t.Fatalf("GET event %s, delivered %s", evt.raw, body)
	}
	q := url.Values{"type": {"checkout.session.completed"}, "created[gte]": {start.UTC().Format(time.RFC3339)}}
	events := e.must(http.StatusOK, e.call("GET", "/v1/events?"+q.Encode(), shop.key, nil))
	if data := events.body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != evtID {
		t.Fatalf("events %s", events.raw)
	}
	q.Set("created[gte]", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if r := e.must(http.StatusOK, e.call("GET", "/v1/events?"+q.Encode(), shop.key, nil)); len(r.body["data"].([]any)) != 0 {
		t.Fatalf("future filter %s", r.raw)
	}
	for _, bad := range []string{"type=nope", "created[gte]=yesterday", "limit=0"} {
		if r := e.call("GET", "/v1/events?"+bad, shop.key, nil); r.status != http.StatusBadRequest {
			t.Fatalf("%s: %d", bad, r.status)
		}
	}

	// Redelivery sends the same event again; the log shows both attempts.
	red := e.must(http.StatusOK, e.call("POST", "/v1/events/"+evtID+"/redeliver", shop.key, nil))
	if eps := red.body["webhook_endpoints"].([]any); len(eps) != 1 || eps[0] != ep.str("id") {
		t.Fatalf("redeliver %s", red.raw)
	}
	waitUntil(t, func() bool { return received() == 2 })
	waitUntil(t, func() bool {
		r := e.must(http.StatusOK, e.call("GET", "/v1/webhook_endpoints/"+ep.str("id")+"/attempts", shop.key, nil))
		return len(r.body["data"].([]any)) == 2
	})
	atts := e.must(http.StatusOK, e.call("GET", "/v1/webhook_endpoints/"+ep.str("id")+"/attempts", shop.key, nil))
	a := atts.body["data"].([]any)[0].(map[string]any)
	if a["outcome"] != "succeeded" || a["status_code"] != float64(200) || a["response_excerpt"] != "thanks" || a["event"] != evtID {
		t.Fatalf("attempt %s", atts.raw)
	}

	// Another app cannot read, list or redeliver the event.
	e.must(http.StatusNotFound, e.call("GET", "/v1/events/"+evtID, rival.key, nil))
	e.must(http.StatusNotFound, e.call("POST", "/v1/events/"+evtID+"/redeliver", rival.key, nil))
	if r := e.must(http.StatusOK, e.call("GET", "/v1/events", rival.key, nil)); len(r.body["data"].([]any)) != 0 {
		t.Fatalf("rival events %s", r.raw)
	}
	// Redelivery to another app's endpoint is refused too.
	rivalEp := e.must(http.StatusCreated, e.call("POST", "/v1/webhook_endpoints", rival.key, map[string]any{
		"url": rc.URL, "enabled_events": []string{"*"}}))
	e.must(http.StatusNotFound, e.call("POST", "/v1/events/"+evtID+"/redeliver", shop.key, map[string]any{"webhook_endpoint": rivalEp.str("id")}))
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("gave up waiting")
		}
		time.Sleep(20 * time.Millisecond)
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
