package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestSubscriptionsOverHTTP walks a subscription through the API with each
// key: a plan, a subscription, the host's read for its agreement sheet, a
// signature refused for want of funds then given, the invoice, a user's
// cancel at period end; and the refusals the rules call for, each in the
// error shape and each changing nothing.
func TestSubscriptionsOverHTTP(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"subscription", "virtual_goods"}, []string{"CNY"})
	other := e.tenant("other", []string{"subscription"}, []string{"CNY"})
	app := func(method, path string, body any) resp { return e.call(method, path, shop.key, body) }

	plan := e.must(http.StatusCreated, app("POST", "/v1/plans", map[string]any{"name": "Monthly membership",
		"amount": "30.00", "currency": "CNY", "option": "subscription", "interval": "month"}))
	if plan.str("amount") != "30.00" || plan.body["interval_count"] != 1.0 || plan.body["trial_period_days"] != 0.0 ||
		plan.body["active"] != true || plan.str("option") != "subscription" {
		t.Fatalf("plan: %s", plan.raw)
	}
	e.must(http.StatusOK, app("GET", "/v1/plans/"+plan.str("id"), nil))
	if r := e.call("GET", "/v1/plans/"+plan.str("id"), other.key, nil); r.status != http.StatusNotFound {
		t.Fatalf("another app reads the plan: %d %s", r.status, r.raw)
	}
	if r := e.must(http.StatusOK, app("GET", "/v1/plans", nil)); len(r.body["data"].([]any)) != 1 {
		t.Fatalf("plans: %s", r.raw)
	}

	for _, bad := range []struct {
		body   map[string]any
		status int
		code   string
	}{
		{map[string]any{"name": "x", "amount": "30.00", "currency": "CNY", "option": "virtual_goods", "interval": "month"}, 400, "option_not_recurring"},
		{map[string]any{"name": "x", "amount": "30.00", "currency": "CNY", "option": "goods", "interval": "month"}, 403, "option_not_enabled"},
		{map[string]any{"name": "x", "amount": "30.00", "currency": "CNY", "option": "nope", "interval": "month"}, 400, "unknown_option"},
		{map[string]any{"name": "x", "amount": "10000.01", "currency": "CNY", "option": "subscription", "interval": "month"}, 400, "amount_above_maximum"},
		{map[string]any{"name": "x", "amount": "0.001", "currency": "CNY", "option": "subscription", "interval": "month"}, 400, "amount_precision"},
		{map[string]any{"name": "x", "amount": "3", "currency": "CNY", "option": "subscription", "interval": "fortnight"}, 400, "parameter_invalid"},
		{map[string]any{"name": "x", "amount": "3", "currency": "CNY", "option": "subscription", "interval": "month", "interval_count": 13}, 400, "parameter_invalid"},
		{map[string]any{"amount": "3", "currency": "CNY", "option": "subscription", "interval": "month"}, 400, "parameter_missing"},
	} {
		if r := app("POST", "/v1/plans", bad.body); r.status != bad.status || r.errCode() != bad.code {
			t.Errorf("plan %v: %d %s, want %d %s", bad.body, r.status, r.raw, bad.status, bad.code)
		}
	}

	sub := e.must(http.StatusCreated, app("POST", "/v1/subscriptions", map[string]any{"plan": plan.str("id"),
		"client_reference_id": "member-7", "metadata": map[string]string{"tier": "gold"}}))
	if sub.str("status") != "incomplete" || sub.str("client_secret") == "" || sub.body["customer"] != nil ||
		sub.body["plan"].(map[string]any)["id"] != plan.str("id") || sub.body["expires_at"] == nil {
		t.Fatalf("subscription: %s", sub.raw)
	}
	if r := app("POST", "/v1/subscriptions", map[string]any{"plan": "plan_nothing"}); r.status != 404 || r.errCode() != "plan_not_found" || r.errParam() != "plan" {
		t.Fatalf("unknown plan: %d %s", r.status, r.raw)
	}
	if r := e.call("POST", "/v1/subscriptions", other.key, map[string]any{"plan": plan.str("id")}); r.status != 404 {
		t.Fatalf("another app's plan: %d %s", r.status, r.raw)
	}
	if r := app("POST", "/v1/subscriptions", map[string]any{"plan": plan.str("id"), "test_clock": "clock_x"}); r.status != 403 || r.errCode() != "sandbox_only" {
		t.Fatalf("test clock outside a sandbox: %d %s", r.status, r.raw)
	}
	if r := app("POST", "/v1/test_clocks", map[string]any{"frozen_time": "2027-01-31T09:00:00Z"}); r.status != 403 || r.errCode() != "sandbox_only" {
		t.Fatalf("test clocks outside a sandbox: %d %s", r.status, r.raw)
	}

	// The host's agreement sheet.
	id := sub.str("id")
	sheet := e.must(http.StatusOK, e.host("GET", "/v1/subscriptions/"+id, nil))
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(sheet.raw, &keys); err != nil {
		t.Fatal(err)
	}
	_, secret := keys["client_secret"]
	_, customer := keys["customer"]
	p := sheet.body["plan"].(map[string]any)
	if secret || customer || sheet.str("app_name") != "shop app" || p["name"] != "Monthly membership" || p["amount"] != "30.00" || p["interval"] != "month" {
		t.Fatalf("host's read: %s", sheet.raw)
	}

	sign := func(user, secret string) resp {
		return e.host("POST", "/v1/subscriptions/"+id+"/sign", map[string]any{"user_id": user, "client_secret": secret})
	}
	before := e.ledgerCounts()
	if r := sign("u1", "wrong"); r.status != 400 || r.errCode() != "client_secret_invalid" {
		t.Fatalf("wrong secret: %d %s", r.status, r.raw)
	}
	if r := sign("u1", sub.str("client_secret")); r.status != 402 || r.errCode() != "insufficient_funds" {
		t.Fatalf("empty wallet: %d %s", r.status, r.raw)
	}
	if r := e.must(200, app("GET", "/v1/subscriptions/"+id, nil)); r.str("status") != "incomplete" || e.ledgerCounts() != before {
		t.Fatalf("after a refused signature: %s", r.raw)
	}
	e.topUp("u1", "100.00", "CNY")
	signed := e.must(http.StatusOK, sign("u1", sub.str("client_secret")))
	if signed.str("status") != "active" || signed.str("latest_invoice") == "" || signed.str("current_period_end") == "" {
		t.Fatalf("signed: %s", signed.raw)
	}
	if r := sign("u1", sub.str("client_secret")); r.status != 409 || r.errCode() != "subscription_already_signed" {
		t.Fatalf("signed twice: %d %s", r.status, r.raw)
	}
	own := e.must(200, app("GET", "/v1/subscriptions/"+id, nil))
	if own.str("customer") == "" || own.str("status") != "active" {
		t.Fatalf("app's read: %s", own.raw)
	}

	inv := e.must(200, app("GET", "/v1/invoices/"+signed.str("latest_invoice"), nil))
	if inv.str("status") != "paid" || inv.str("amount") != "30.00" || inv.str("fee") != "4.50" || inv.body["attempt_count"] != 1.0 ||
		inv.str("subscription") != id || inv.str("amount_refunded") != "0.00" || inv.str("period_start") != signed.str("current_period_start") {
		t.Fatalf("invoice: %s", inv.raw)
	}
	if r := e.call("GET", "/v1/invoices/"+inv.str("id"), other.key, nil); r.status != 404 || r.errCode() != "invoice_not_found" {
		t.Fatalf("another app's invoice: %d %s", r.status, r.raw)
	}
	list := e.must(200, app("GET", "/v1/invoices?subscription="+id, nil))
	if data := list.body["data"].([]any); len(data) != 1 {
		t.Fatalf("invoices: %s", list.raw)
	}
	wallet := e.must(200, e.host("GET", "/v1/wallets/u1", nil))
	if b := wallet.body["balances"].([]any)[0].(map[string]any); b["available"] != "70.00" {
		t.Fatalf("wallet after the first period: %s", wallet.raw)
	}

	// The invoice is a payment: refundable like a session.
	ref := e.must(http.StatusCreated, app("POST", "/v1/refunds", map[string]any{"invoice": inv.str("id"), "amount": "10.00"}))
	if ref.str("amount") != "10.00" {
		t.Fatalf("refund: %s", ref.raw)
	}
	if r := e.must(200, app("GET", "/v1/invoices/"+inv.str("id"), nil)); r.str("amount_refunded") != "10.00" {
		t.Fatalf("refunded invoice: %s", r.raw)
	}

	// And disputable like one.
	dp := e.must(http.StatusCreated, e.host("POST", "/v1/disputes", map[string]any{"payment": inv.str("id"), "user_id": "u1",
		"amount": "5.00", "reason": "not_as_described"}))
	if dp.str("payment") != inv.str("id") || dp.str("status") != "needs_response" {
		t.Fatalf("dispute of the invoice: %s", dp.raw)
	}
	txns := e.must(200, app("GET", "/v1/balance_transactions?limit=100", nil))
	kinds := map[string]int{}
	for _, x := range txns.body["data"].([]any) {
		x := x.(map[string]any)
		if x["invoice"] == inv.str("id") {
			kinds[x["type"].(string)]++
		}
	}
	if kinds["payment"] != 1 || kinds["refund"] != 1 || kinds["dispute"] != 1 {
		t.Fatalf("balance transactions of the invoice: %v in %s", kinds, txns.raw)
	}

	// Cancel: someone else cannot; the user can, at period end; then the developer now.
	if r := e.host("POST", "/v1/subscriptions/"+id+"/cancel", map[string]any{"user_id": "u2"}); r.status != 403 || r.errCode() != "not_subscriber" {
		t.Fatalf("another user cancels: %d %s", r.status, r.raw)
	}
	c := e.must(200, e.host("POST", "/v1/subscriptions/"+id+"/cancel", map[string]any{"user_id": "u1"}))
	if c.str("status") != "active" || c.body["cancel_at_period_end"] != true || c.str("cancellation_reason") != "user" {
		t.Fatalf("user's cancel: %s", c.raw)
	}
	now := e.must(200, app("POST", "/v1/subscriptions/"+id+"/cancel", map[string]any{"at_period_end": false}))
	if now.str("status") != "canceled" || now.str("cancellation_reason") != "developer" || now.str("canceled_at") == "" {
		t.Fatalf("developer's cancel: %s", now.raw)
	}
	if r := app("POST", "/v1/subscriptions/"+id+"/cancel", nil); r.status != 409 || r.errCode() != "subscription_canceled" {
		t.Fatalf("cancel of a canceled one: %d %s", r.status, r.raw)
	}
	if r := e.call("POST", "/v1/subscriptions/"+id+"/cancel", other.key, nil); r.status != 404 {
		t.Fatalf("another app cancels: %d %s", r.status, r.raw)
	}
	if r := e.call("POST", "/v1/subscriptions/"+id+"/sign", shop.key, map[string]any{"user_id": "u1"}); r.status != 403 {
		t.Fatalf("app key signs: %d %s", r.status, r.raw)
	}
}
