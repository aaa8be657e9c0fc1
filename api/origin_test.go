package api_test

import (
	"net/http"
	"testing"
)

// forget deletes every idempotency record, as the 7-day purge does, or as
// a first attempt that failed with a 5xx after its commit leaves things.
func (e *env) forget() {
	e.t.Helper()
	e.exec(`DELETE FROM idempotency_keys`)
}

// TestReusedKeyWithoutItsRecord: ids of objects are derived from the
// Idempotency-Key forever, while the record that catches a reused key with
// another body lives only 7 days (and not at all after a 5xx). The object
// itself remembers the request that made it: the same key with other
// parameters is 409 idempotency_conflict, never the old object as if the
// new request had made it; the same request is answered as before.
func TestReusedKeyWithoutItsRecord(t *testing.T) {
	e := newEnv(t)
	conflict := func(what string, r resp) {
		t.Helper()
		if r.status != http.StatusConflict || r.errCode() != "idempotency_conflict" {
			t.Fatalf("%s: %d %s; want 409 idempotency_conflict", what, r.status, r.raw)
		}
	}
	key := func(k string) []string { return []string{"Idempotency-Key", k} }

	dev := e.must(http.StatusCreated, e.admin("POST", "/v1/developers", map[string]any{"name": "Acme"}, key("dev")...))
	e.forget()
	conflict("a developer under a reused key", e.admin("POST", "/v1/developers", map[string]any{"name": "Other"}, key("dev")...))
	if again := e.must(http.StatusCreated, e.admin("POST", "/v1/developers", map[string]any{"name": "Acme"}, key("dev")...)); again.str("id") != dev.str("id") {
		t.Fatalf("the same developer request: %s", again.raw)
	}

	appBody := map[string]any{"developer": dev.str("id"), "name": "Shop", "options": []string{"goods"}, "currencies": []string{"CNY"}}
	app := e.must(http.StatusCreated, e.admin("POST", "/v1/apps", appBody, key("app")...))
	e.forget()
	conflict("an app under a reused key", e.admin("POST", "/v1/apps", map[string]any{"developer": dev.str("id"), "name": "Elsewhere",
		"options": []string{"goods"}, "currencies": []string{"CNY"}}, key("app")...))
	// The same request again: the app exists, its key was shown once.
	if r := e.admin("POST", "/v1/apps", appBody, key("app")...); r.status != http.StatusConflict || r.errCode() != "idempotency_secret_unavailable" {
		t.Fatalf("the same app request after its record is gone: %d %s", r.status, r.raw)
	}

	// Key rolls: a reused key never makes a second key, for this app or another.
	roll := "/v1/apps/" + app.str("id") + "/keys/roll"
	rolled := e.must(http.StatusOK, e.admin("POST", roll, map[string]any{}, key("roll")...))
	e.forget()
	if r := e.admin("POST", roll, map[string]any{}, key("roll")...); r.status != http.StatusConflict || r.errCode() != "idempotency_secret_unavailable" {
		t.Fatalf("the same roll after its record is gone: %d %s", r.status, r.raw)
	}
	other := e.tenant("other", []string{"goods"}, []string{"CNY"})
	conflict("a roll of another app under a reused key", e.admin("POST", "/v1/apps/"+other.app+"/keys/roll", map[string]any{}, key("roll")...))
	if n := e.count(`SELECT count(*) FROM api_keys WHERE app_id = $1`, app.str("id")); n != 2 {
		t.Fatalf("the app has %d keys, want its first and the one roll", n)
	}
	sk := rolled.str("secret_key")

	// Webhook endpoints: the same creation answers with the endpoint's
	// secret; other parameters are a conflict.
	epBody := map[string]any{"url": "http://127.0.0.1:9/hooks", "enabled_events": []string{"*"}}
	ep := e.must(http.StatusCreated, e.call("POST", "/v1/webhook_endpoints", sk, epBody, key("we")...))
	e.forget()
	conflict("an endpoint under a reused key", e.call("POST", "/v1/webhook_endpoints", sk,
		map[string]any{"url": "http://127.0.0.1:9/other", "enabled_events": []string{"*"}}, key("we")...))
	if again := e.must(http.StatusCreated, e.call("POST", "/v1/webhook_endpoints", sk, epBody, key("we")...)); again.str("id") != ep.str("id") || again.str("secret") != ep.str("secret") {
		t.Fatalf("the same endpoint request: %s; want %s with its secret", again.raw, ep.str("id"))
	}

	// Checkout's money movements through the ledger, whose transfers keep
	// their content: a top-up under a reused key for another user.
	e.must(http.StatusOK, e.host("POST", "/v1/wallets/usr_a/topups", map[string]any{"amount": "1.00", "currency": "CNY"}, key("topup")...))
	e.forget()
	conflict("a top-up under a reused key", e.host("POST", "/v1/wallets/usr_b/topups", map[string]any{"amount": "1.00", "currency": "CNY"}, key("topup")...))
	conflict("a top-up of another amount under a reused key", e.host("POST", "/v1/wallets/usr_a/topups", map[string]any{"amount": "2.00", "currency": "CNY"}, key("topup")...))
}

// TestRotateSecretRetried: a rotation whose answer was lost is retried
// with the same key after its record is gone (a crash between the commit
// and storing the answer). The retry must answer with the secret that
// rotation made, not rotate again: that would retire at once the secret
// the receiver deployed from the first answer, if it got it.
func TestRotateSecretRetried(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	ep := e.must(http.StatusCreated, e.call("POST", "/v1/webhook_endpoints", shop.key,
		map[string]any{"url": "http://127.0.0.1:9/hooks", "enabled_events": []string{"*"}}))
	path := "/v1/webhook_endpoints/" + ep.str("id") + "/rotate_secret"
	first := e.must(http.StatusOK, e.call("POST", path, shop.key, map[string]any{}, "Idempotency-Key", "rotate-1"))
	e.forget()
	retry := e.must(http.StatusOK, e.call("POST", path, shop.key, map[string]any{}, "Idempotency-Key", "rotate-1"))
	if retry.str("secret") != first.str("secret") || first.str("secret") == ep.str("secret") {
		t.Fatalf("the retried rotation answered %q, the first %q (created with %q)", retry.str("secret"), first.str("secret"), ep.str("secret"))
	}
	// One rotation, not two: the endpoint still signs with the secret it
	// was created with, for the grace period, beside the rotated one.
	if n := e.count(`SELECT version FROM webhook_endpoints WHERE id = $1`, ep.str("id")); n != 2 {
		t.Fatalf("endpoint version %d after one rotation and its retry, want 2", n)
	}
	// A new rotation (another key) moves on; then the first one's retry
	// finds its secret superseded.
	e.must(http.StatusOK, e.call("POST", path, shop.key, map[string]any{}, "Idempotency-Key", "rotate-2"))
	e.forget()
	if r := e.call("POST", path, shop.key, map[string]any{}, "Idempotency-Key", "rotate-1"); r.status != http.StatusConflict || r.errCode() != "idempotency_secret_unavailable" {
		t.Fatalf("retrying a superseded rotation: %d %s", r.status, r.raw)
	}
}

// TestReusedKeyForMoney: the same for checkout sessions and refunds, where
// the old object answered as a fresh 201 told the client that a new amount
// was asked for, or a second session refunded, when nothing happened.
func TestReusedKeyForMoney(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	e.topUp("u", "100.00", "CNY")
	key := func(k string) []string { return []string{"Idempotency-Key", k} }
	conflict := func(what string, r resp) {
		t.Helper()
		if r.status != http.StatusConflict || r.errCode() != "idempotency_conflict" {
			t.Fatalf("%s: %d %s; want 409 idempotency_conflict", what, r.status, r.raw)
		}
	}
	body := map[string]any{"amount": "10.00", "currency": "CNY", "option": "goods"}
	first := e.must(http.StatusCreated, e.call("POST", "/v1/checkout/sessions", shop.key, body, key("cs")...))
	e.must(http.StatusOK, e.confirm(first, "u"))
	e.forget()
	conflict("a session for another amount under a reused key", e.call("POST", "/v1/checkout/sessions", shop.key,
		map[string]any{"amount": "99.00", "currency": "CNY", "option": "goods"}, key("cs")...))
	if again := e.must(http.StatusCreated, e.call("POST", "/v1/checkout/sessions", shop.key, body, key("cs")...)); again.str("id") != first.str("id") {
		t.Fatalf("the same session request: %s", again.raw)
	}

	second := e.session(shop, body)
	e.must(http.StatusOK, e.confirm(second, "u"))
	refund := e.must(http.StatusCreated, e.call("POST", "/v1/refunds", shop.key,
		map[string]any{"checkout_session": first.str("id"), "amount": "1.00"}, key("re")...))
	e.forget()
	conflict("a refund of another session under a reused key", e.call("POST", "/v1/refunds", shop.key,
		map[string]any{"checkout_session": second.str("id"), "amount": "1.00"}, key("re")...))
	conflict("a refund of another amount under a reused key", e.call("POST", "/v1/refunds", shop.key,
		map[string]any{"checkout_session": first.str("id"), "amount": "2.00"}, key("re")...))
	if again := e.must(http.StatusCreated, e.call("POST", "/v1/refunds", shop.key,
		map[string]any{"checkout_session": first.str("id"), "amount": "1.00"}, key("re")...)); again.str("id") != refund.str("id") {
		t.Fatalf("the same refund request: %s", again.raw)
	}
	if n := e.count(`SELECT count(*) FROM refunds`); n != 1 {
		t.Fatalf("%d refunds, want 1", n)
	}

	// Disputes, which the host opens under its own keys.
	dispute := map[string]any{"payment": first.str("id"), "user_id": "u", "amount": "2.00", "reason": "not_received"}
	dp := e.must(http.StatusCreated, e.host("POST", "/v1/disputes", dispute, key("dp")...))
	e.forget()
	conflict("a dispute of another payment under a reused key", e.host("POST", "/v1/disputes",
		map[string]any{"payment": second.str("id"), "user_id": "u", "amount": "2.00", "reason": "not_received"}, key("dp")...))
	conflict("a dispute of another amount under a reused key", e.host("POST", "/v1/disputes",
		map[string]any{"payment": first.str("id"), "user_id": "u", "amount": "3.00", "reason": "not_received"}, key("dp")...))
	if again := e.must(http.StatusCreated, e.host("POST", "/v1/disputes", dispute, key("dp")...)); again.str("id") != dp.str("id") {
		t.Fatalf("the same dispute request: %s", again.raw)
	}
	e.mustBalanced()
}
