package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestHostReadsASession: the host key reads any session as its payment
// sheet shows it: the app's name, the amount and the items, and neither the
// client secret nor the app's customer id.
func TestHostReadsASession(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	e.topUp("u1", "50.00", "CNY")
	sess := e.session(shop, map[string]any{"currency": "CNY", "option": "goods",
		"line_items": []any{map[string]any{"name": "Tea", "unit_amount": "12.00", "quantity": 2}}})
	for _, paid := range []bool{false, true} {
		if paid {
			e.must(http.StatusOK, e.confirm(sess, "u1"))
		}
		r := e.must(http.StatusOK, e.host("GET", "/v1/checkout/sessions/"+sess.str("id"), nil))
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(r.raw, &keys); err != nil {
			t.Fatal(err)
		}
		_, secret := keys["client_secret"]
		_, customer := keys["customer"]
		if secret || customer || r.str("app_name") != "shop app" || r.str("amount_total") != "24.00" || r.str("app") != shop.app {
			t.Fatalf("host's read (paid %v): %s", paid, r.raw)
		}
		items, _ := r.body["line_items"].([]any)
		if len(items) != 1 || items[0].(map[string]any)["name"] != "Tea" {
			t.Fatalf("line items: %s", r.raw)
		}
		if paid && r.str("status") != "complete" {
			t.Fatalf("paid session reads %s", r.raw)
		}
	}
	// The app's own read keeps both.
	own := e.must(http.StatusOK, e.call("GET", "/v1/checkout/sessions/"+sess.str("id"), shop.key, nil))
	if own.str("client_secret") == "" || own.str("customer") == "" || own.body["app_name"] != nil {
		t.Fatalf("app's read: %s", own.raw)
	}
	if r := e.host("GET", "/v1/checkout/sessions/cs_nothing", nil); r.status != http.StatusNotFound || r.errCode() != "session_not_found" {
		t.Fatalf("host reads a missing session: %d %s", r.status, r.raw)
	}
}

// TestDisputesOverHTTP walks a dispute through the API with each key, and
// every refusal the rules call for, in the error shape of every refusal.
func TestDisputesOverHTTP(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	other := e.tenant("other", []string{"goods"}, []string{"CNY"})
	pay := func(user, amount string) string {
		e.topUp(user, amount, "CNY")
		s := e.session(shop, map[string]any{"amount": amount, "currency": "CNY", "option": "goods"})
		e.must(http.StatusOK, e.confirm(s, user))
		return s.str("id")
	}
	p1, p2, p3 := pay("u1", "10.00"), pay("u1", "5.00"), pay("u2", "8.00")
	refused := func(r resp, status int, code, param string) {
		t.Helper()
		e, _ := r.body["error"].(map[string]any)
		if r.status != status || r.errCode() != code || r.errParam() != param || e["request_id"] == "" || e["message"] == "" || e["type"] == "" {
			t.Fatalf("got %d %s, want %d %s (param %q)", r.status, r.raw, status, code, param)
		}
	}
	open := func(body map[string]any, headers ...string) resp {
		return e.host("POST", "/v1/disputes", body, headers...)
	}
	before := e.ledgerCounts()
	refused(open(map[string]any{"payment": p1, "user_id": "u2", "reason": "other"}), 404, "payment_not_found", "payment")
	refused(open(map[string]any{"payment": "cs_nothing", "user_id": "u1", "reason": "other"}), 404, "payment_not_found", "payment")
	refused(open(map[string]any{"payment": p1, "user_id": "u1", "reason": "other", "amount": "10.01"}), 400, "dispute_exceeds_remaining", "amount")
	refused(open(map[string]any{"payment": p1, "user_id": "u1", "reason": "angry"}), 400, "parameter_invalid", "reason")
	refused(open(map[string]any{"payment": p1, "user_id": "u1", "reason": "other", "amount": 5}), 400, "invalid_type", "amount")
	refused(open(map[string]any{"payment": p1, "user_id": "u1", "reason": "other", "refund": true}), 400, "unknown_field", "refund")
	refused(e.call("POST", "/v1/disputes", shop.key, map[string]any{"payment": p1, "user_id": "u1", "reason": "other"}), 403, "forbidden", "")
	if after := e.ledgerCounts(); after != before {
		t.Fatalf("refusals moved money: %v -> %v", before, after)
	}

	body := map[string]any{"payment": p1, "user_id": "u1", "amount": "6.00", "reason": "not_as_described", "description": "Cold tea"}
	d := e.must(http.StatusCreated, open(body, "Idempotency-Key", "complaint-1"))
	if d.str("status") != "needs_response" || d.str("amount") != "6.00" || d.str("payment") != p1 || d.str("app") != shop.app ||
		!strings.HasPrefix(d.str("id"), "dp_") || d.body["user_id"] != nil || d.str("customer") == "" || d.body["evidence"] != nil {
		t.Fatalf("dispute: %s", d.raw)
	}
	id := d.str("id")
	again := e.must(http.StatusCreated, open(body, "Idempotency-Key", "complaint-1"))
	if again.str("id") != id || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %s", again.raw)
	}
	refused(open(map[string]any{"payment": p1, "user_id": "u1", "reason": "other", "amount": "1.00"}), 409, "dispute_already_open", "")
	// A refund may not touch what the dispute holds.
	refused(e.call("POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": p1, "amount": "5.00"}), 400, "refund_exceeds_remaining", "amount")

	// Reading: the app its own, another app nothing, the platform and the host all.
	e.must(http.StatusOK, e.call("GET", "/v1/disputes/"+id, shop.key, nil))
	refused(e.call("GET", "/v1/disputes/"+id, other.key, nil), 404, "dispute_not_found", "")
	e.must(http.StatusOK, e.host("GET", "/v1/disputes/"+id, nil))
	e.must(http.StatusOK, e.admin("GET", "/v1/disputes/"+id, nil))
	list := e.must(http.StatusOK, e.call("GET", "/v1/disputes?status=needs_response", shop.key, nil))
	if data, _ := list.body["data"].([]any); len(data) != 1 || list.body["has_more"] != false {
		t.Fatalf("app's list: %s", list.raw)
	}
	if l := e.must(http.StatusOK, e.call("GET", "/v1/disputes", other.key, nil)); len(l.body["data"].([]any)) != 0 {
		t.Fatalf("another app lists: %s", l.raw)
	}
	refused(e.call("GET", "/v1/disputes?app="+other.app, shop.key, nil), 400, "parameter_invalid", "app")
	refused(e.admin("GET", "/v1/disputes?status=open", nil), 400, "parameter_invalid", "status")
	refused(e.admin("GET", "/v1/disputes?limit=0", nil), 400, "parameter_invalid", "limit")
	if l := e.must(http.StatusOK, e.admin("GET", "/v1/disputes?app="+shop.app+"&payment="+p1, nil)); len(l.body["data"].([]any)) != 1 {
		t.Fatalf("admin's filtered list: %s", l.raw)
	}

	// Answering: another app cannot, the app can once.
	answer := map[string]any{"evidence": map[string]any{"text": "Served hot", "files": []string{"https://files.example/receipt.png"}}}
	refused(e.call("POST", "/v1/disputes/"+id+"/respond", other.key, answer), 404, "dispute_not_found", "")
	refused(e.call("POST", "/v1/disputes/"+id+"/respond", shop.key, map[string]any{}), 400, "parameter_missing", "evidence")
	r := e.must(http.StatusOK, e.call("POST", "/v1/disputes/"+id+"/respond", shop.key, answer))
	if r.str("status") != "under_review" || r.body["evidence"].(map[string]any)["text"] != "Served hot" {
		t.Fatalf("answered: %s", r.raw)
	}
	refused(e.call("POST", "/v1/disputes/"+id+"/respond", shop.key, answer), 409, "dispute_not_awaiting_response", "")

	// Ruling: lost; the payment is refunded by the amount; ruling twice is refused.
	refused(e.admin("POST", "/v1/disputes/"+id+"/close", map[string]any{"outcome": "maybe"}), 400, "parameter_invalid", "outcome")
	c := e.must(http.StatusOK, e.admin("POST", "/v1/disputes/"+id+"/close", map[string]any{"outcome": "lost"}))
	if c.str("status") != "lost" || c.str("outcome") != "lost" || c.str("closed_by") != "ruling" || c.str("fee_refunded") != "0.04" {
		t.Fatalf("ruled: %s", c.raw)
	}
	refused(e.admin("POST", "/v1/disputes/"+id+"/close", map[string]any{"outcome": "won"}), 409, "dispute_closed", "")
	sess := e.must(http.StatusOK, e.call("GET", "/v1/checkout/sessions/"+p1, shop.key, nil))
	if sess.str("amount_refunded") != "6.00" || sess.str("payment_status") != "partially_refunded" {
		t.Fatalf("session after a lost dispute: %s", sess.raw)
	}

	// After 180 days, and answering after the deadline.
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `UPDATE payments SET captured_at = now() - interval '181 days' WHERE id = $1`, p3); err != nil {
		t.Fatal(err)
	}
	refused(open(map[string]any{"payment": p3, "user_id": "u2", "reason": "other"}), 422, "dispute_window_passed", "")
	late := e.must(http.StatusCreated, open(map[string]any{"payment": p2, "user_id": "u1", "reason": "unauthorized"})).str("id")
	if _, err := e.db.Pool.Exec(ctx, `UPDATE disputes SET evidence_due_by = now() - interval '1 second' WHERE id = $1`, late); err != nil {
		t.Fatal(err)
	}
	refused(e.call("POST", "/v1/disputes/"+late+"/respond", shop.key, map[string]any{"accept": true}), 422, "evidence_deadline_passed", "")

	// The app's events and balance transactions tell the story.
	evs := e.must(http.StatusOK, e.call("GET", "/v1/events?limit=100", shop.key, nil))
	types := map[string]int{}
	for _, ev := range evs.body["data"].([]any) {
		m := ev.(map[string]any)
		types[m["type"].(string)]++
		if strings.HasPrefix(m["type"].(string), "dispute.") && strings.Contains(string(evs.raw), `"user_id"`) {
			t.Fatalf("an event shows the host's user id: %s", evs.raw)
		}
	}
	if types["dispute.created"] != 2 || types["dispute.updated"] != 1 || types["dispute.closed"] != 1 {
		t.Fatalf("dispute events %v", types)
	}
	txns := e.must(http.StatusOK, e.call("GET", "/v1/balance_transactions?limit=100", shop.key, nil))
	seen := map[string]int{}
	for _, tx := range txns.body["data"].([]any) {
		m := tx.(map[string]any)
		seen[m["type"].(string)]++
		if m["type"] == "dispute" && m["checkout_session"] == nil {
			t.Fatalf("a dispute's balance transaction without its payment: %v", m)
		}
	}
	if seen["dispute"] != 2 || seen["dispute_fee_return"] != 1 {
		t.Fatalf("balance transactions %v", seen)
	}
	e.mustBalanced()
}
