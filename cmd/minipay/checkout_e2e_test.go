package main

import (
	"strings"
	"testing"

	"github.com/minipay/minipay/internal/testdb"
)

// TestCheckoutEndToEnd drives the real binary through the whole flow: an
// operator creates a developer and an app, the host funds a wallet, the
// app's backend creates a session, the host confirms it, the app refunds
// part of it and reads its balance, and the ledger balances at the end.
func TestCheckoutEndToEnd(t *testing.T) {
	db := testdb.New(t)
	const admin, host = "e2e-admin-key", "e2e-host-key"
	p := startServe(t, "DATABASE_URL="+db.URL, "MINIPAY_ADMIN_KEY="+admin, "MINIPAY_HOST_KEY="+host, "MINIPAY_SECRET=e2e-secret")
	must := func(want int, method, path, key, body string, headers ...string) map[string]any {
		t.Helper()
		status, out := p.do(method, path, key, body, headers...)
		if status != want {
			t.Fatalf("%s %s: status %d, want %d: %v", method, path, status, want, out)
		}
		return out
	}
	dev := must(201, "POST", "/v1/developers", admin, `{"name": "Acme Games"}`)
	app := must(201, "POST", "/v1/apps", admin, `{"developer": "`+dev["id"].(string)+`", "name": "Gem Quest", "options": ["goods", "virtual_goods"], "currencies": ["CNY"]}`)
	sk := app["secret_key"].(string)
	must(200, "POST", "/v1/wallets/usr_9/topups", host, `{"amount": "200.00", "currency": "CNY"}`, "Idempotency-Key", "topup-1")
	must(200, "POST", "/v1/wallets/usr_9/topups", host, `{"amount": "200.00", "currency": "CNY"}`, "Idempotency-Key", "topup-1") // a retry

	sess := must(201, "POST", "/v1/checkout/sessions", sk,
		`{"line_items": [{"name": "Gem pack", "unit_amount": "19.99", "quantity": 2}], "currency": "CNY", "option": "virtual_goods", "client_reference_id": "order-1", "metadata": {"player": "p-77"}}`,
		"Idempotency-Key", "order-1")
	if sess["amount_total"] != "39.98" {
		t.Fatalf("session %v", sess)
	}
	paid := must(200, "POST", "/v1/checkout/sessions/"+sess["id"].(string)+"/confirm", host,
		`{"user_id": "usr_9", "client_secret": "`+sess["client_secret"].(string)+`"}`)
	if paid["payment_status"] != "paid" || paid["fee"] != "11.99" || !strings.HasPrefix(paid["customer"].(string), "ou_") {
		t.Fatalf("paid %v", paid) // 39.98 × 30 % = 11.994 → 11.99
	}
	refund := must(201, "POST", "/v1/refunds", sk, `{"checkout_session": "`+sess["id"].(string)+`", "amount": "19.99", "reason": "duplicate"}`)
	if refund["fee_refunded"] != "6.00" { // half of 11.99 = 5.995 → 6.00
		t.Fatalf("refund %v", refund)
	}
	wallet := must(200, "GET", "/v1/wallets/usr_9", host, "")
	if b := wallet["balances"].([]any)[0].(map[string]any); b["available"] != "180.01" {
		t.Fatalf("wallet %v", wallet) // 200 - 39.98 + 19.99
	}
	balance := must(200, "GET", "/v1/balance", sk, "")
	if pending := balance["pending"].([]any)[0].(map[string]any); pending["amount"] != "14.00" {
		t.Fatalf("balance %v", balance) // (39.98 - 11.99) - (19.99 - 6.00)
	}
	tb := must(200, "GET", "/v1/ledger/trial_balance", admin, "")
	cur := tb["currencies"].([]any)[0].(map[string]any)
	if tb["balanced"] != true || cur["debits"] != cur["credits"] {
		t.Fatalf("trial balance %v", tb)
	}
	p.stop()
}
