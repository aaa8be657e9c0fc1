package api_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// tenant is a developer with one app and its secret key.
type tenant struct {
	dev, app, key string
}

func (e *env) tenant(name string, options, currencies []string) tenant {
	e.t.Helper()
	dev := e.must(http.StatusCreated, e.admin("POST", "/v1/developers", map[string]any{"name": name}))
	app := e.must(http.StatusCreated, e.admin("POST", "/v1/apps", map[string]any{
		"developer": dev.str("id"), "name": name + " app", "options": options, "currencies": currencies}))
	if !strings.HasPrefix(app.str("secret_key"), "sk_") {
		e.t.Fatalf("no secret key: %s", app.raw)
	}
	return tenant{dev: dev.str("id"), app: app.str("id"), key: app.str("secret_key")}
}

func (e *env) host(method, path string, body any, headers ...string) resp {
	e.t.Helper()
	return e.call(method, path, e.hostKey, body, headers...)
}

func (e *env) topUp(user, amount, currency string) {
	e.t.Helper()
	e.must(http.StatusOK, e.host("POST", "/v1/wallets/"+user+"/topups", map[string]any{"amount": amount, "currency": currency}))
}

func (e *env) session(tn tenant, body map[string]any) resp {
	e.t.Helper()
	return e.must(http.StatusCreated, e.call("POST", "/v1/checkout/sessions", tn.key, body))
}

func (e *env) confirm(sess resp, user string) resp {
	e.t.Helper()
	return e.host("POST", "/v1/checkout/sessions/"+sess.str("id")+"/confirm",
		map[string]any{"user_id": user, "client_secret": sess.str("client_secret")})
}

func (e *env) balanceOf(tn tenant) (pending, available map[string]string) {
	e.t.Helper()
	r := e.must(http.StatusOK, e.call("GET", "/v1/balance", tn.key, nil))
	pending, available = map[string]string{}, map[string]string{}
	for _, m := range r.body["pending"].([]any) {
		pending[m.(map[string]any)["currency"].(string)] = m.(map[string]any)["amount"].(string)
	}
	for _, m := range r.body["available"].([]any) {
		available[m.(map[string]any)["currency"].(string)] = m.(map[string]any)["amount"].(string)
	}
	return pending, available
}

func (e *env) wallet(user string) map[string]string {
	e.t.Helper()
	r := e.must(http.StatusOK, e.host("GET", "/v1/wallets/"+user, nil))
	out := map[string]string{}
	for _, b := range r.body["balances"].([]any) {
		m := b.(map[string]any)
		out[m["currency"].(string)] = m["available"].(string) + "/" + m["held"].(string)
	}
	return out
}

func (e *env) mustBalanced() {
	e.t.Helper()
	a, err := e.ledger.Audit(context.Background())
	if err != nil || !a.OK() {
		e.t.Fatalf("ledger audit: %+v %v", a, err)
	}
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestCheckoutFlow(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods", "virtual_goods"}, []string{"CNY", "JPY"})
	e.topUp("usr_1", "100.00", "CNY")
	if w := e.wallet("usr_1"); w["CNY"] != "100.00/0.00" {
		t.Fatalf("wallet %v", w)
	}
	opts := e.must(http.StatusOK, e.call("GET", "/v1/monetization_options", shop.key, nil))
	if len(opts.body["data"].([]any)) != 4 {
		t.Fatalf("catalog %s", opts.raw)
	}

	sess := e.session(shop, map[string]any{"amount": "25.00", "currency": "CNY", "option": "goods",
		"client_reference_id": "order-17", "metadata": map[string]string{"sku": "mug"}})
	if sess.str("status") != "open" || sess.str("payment_status") != "unpaid" || !strings.HasPrefix(sess.str("id"), "cs_") ||
		!strings.HasPrefix(sess.str("client_secret"), sess.str("id")+"_secret_") || sess.body["customer"] != nil {
		t.Fatalf("new session %s", sess.raw)
	}
	paid := e.must(http.StatusOK, e.confirm(sess, "usr_1"))
	if paid.str("status") != "complete" || paid.str("payment_status") != "paid" || paid.str("fee") != "0.15" ||
		!strings.HasPrefix(paid.str("customer"), "ou_") || paid.str("option_version") != "goods@2026-01-01T00:00:00Z" {
		t.Fatalf("paid session %s", paid.raw)
	}
	if strings.Contains(string(paid.raw), "usr_1") {
		t.Fatalf("the host's user id leaked: %s", paid.raw)
	}
	if again := e.must(http.StatusOK, e.confirm(sess, "usr_1")); again.str("status") != "complete" {
		t.Fatalf("confirming twice: %s", again.raw)
	}
	if w := e.wallet("usr_1"); w["CNY"] != "75.00/0.00" {
		t.Fatalf("wallet after paying %v", w)
	}
	pending, available := e.balanceOf(shop)
	if pending["CNY"] != "24.85" || available["CNY"] != "0.00" {
		t.Fatalf("balance pending %v available %v", pending, available)
	}

	// Line items, and a second payment by the same user: same customer id.
	sess2 := e.session(shop, map[string]any{"currency": "CNY", "option": "virtual_goods",
		"line_items": []any{map[string]any{"name": "gems", "unit_amount": "3.30", "quantity": 3}}})
	if sess2.str("amount_total") != "9.90" {
		t.Fatalf("line items total %s", sess2.raw)
	}
	paid2 := e.must(http.StatusOK, e.confirm(sess2, "usr_1"))
	if paid2.str("customer") != paid.str("customer") || paid2.str("fee") != "2.97" {
		t.Fatalf("second payment %s", paid2.raw)
	}

	// Partial refunds, then the rest; the fee comes back pro rata.
	r1 := e.must(http.StatusCreated, e.call("POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": sess.str("id"), "amount": "10.00", "reason": "broken"}))
	if r1.str("amount") != "10.00" || r1.str("fee_refunded") != "0.06" || !strings.HasPrefix(r1.str("id"), "re_") {
		t.Fatalf("refund %s", r1.raw)
	}
	r2 := e.must(http.StatusCreated, e.call("POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": sess.str("id")}))
	if r2.str("amount") != "15.00" || r2.str("fee_refunded") != "0.09" {
		t.Fatalf("refund of the rest %s", r2.raw)
	}
	if got := e.must(http.StatusOK, e.call("GET", "/v1/refunds/"+r1.str("id"), shop.key, nil)); got.str("reason") != "broken" {
		t.Fatalf("get refund %s", got.raw)
	}
	if s := e.must(http.StatusOK, e.call("GET", "/v1/checkout/sessions/"+sess.str("id"), shop.key, nil)); s.str("payment_status") != "refunded" || s.str("amount_refunded") != "25.00" {
		t.Fatalf("refunded session %s", s.raw)
	}
	if r := e.call("POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": sess.str("id"), "amount": "0.01"}); r.status != 409 || r.errCode() != "charge_already_refunded" {
		t.Fatalf("refund beyond: %d %s", r.status, r.raw)
	}
	if w := e.wallet("usr_1"); w["CNY"] != "90.10/0.00" {
		t.Fatalf("wallet after refunds %v", w)
	}
	pending, _ = e.balanceOf(shop)
	if pending["CNY"] != "6.93" { // 9.90 - 2.97
		t.Fatalf("pending after refunds %v", pending)
	}
	txns := e.must(http.StatusOK, e.call("GET", "/v1/balance_transactions?limit=10", shop.key, nil))
	if n := len(txns.body["data"].([]any)); n != 4 {
		t.Fatalf("%d balance transactions, want 4: %s", n, txns.raw)
	}
	list := e.must(http.StatusOK, e.call("GET", "/v1/checkout/sessions?limit=1", shop.key, nil))
	if list.body["has_more"] != true || list.body["data"].([]any)[0].(map[string]any)["id"] != sess2.str("id") {
		t.Fatalf("list %s", list.raw)
	}
	page2 := e.must(http.StatusOK, e.call("GET", "/v1/checkout/sessions?limit=1&starting_after="+sess2.str("id"), shop.key, nil))
	if page2.body["data"].([]any)[0].(map[string]any)["id"] != sess.str("id") {
		t.Fatalf("second page %s", page2.raw)
	}
	if n := e.count(`SELECT count(*) FROM events WHERE app_id = $1`, shop.app); n != 4 { // 2 completed, 2 refunds
		t.Fatalf("%d events, want 4", n)
	}
	e.mustBalanced()
}

func TestManualCapture(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	e.topUp("u", "50.00", "CNY")
	sess := e.session(shop, map[string]any{"amount": "20.00", "currency": "CNY", "option": "goods", "capture_method": "manual"})
	held := e.must(http.StatusOK, e.confirm(sess, "u"))
	if held.str("capture_status") != "requires_capture" || held.str("payment_status") != "unpaid" || held.str("hold_expires_at") == "" {
		t.Fatalf("held %s", held.raw)
	}
	if w := e.wallet("u"); w["CNY"] != "30.00/20.00" {
		t.Fatalf("wallet with a hold %v", w)
	}
	if r := e.call("POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": sess.str("id")}); r.status != 409 || r.errCode() != "payment_not_captured" {
		t.Fatalf("refund of a hold: %d %s", r.status, r.raw)
	}
	cap := e.must(http.StatusOK, e.call("POST", "/v1/checkout/sessions/"+sess.str("id")+"/capture", shop.key, nil))
	if cap.str("capture_status") != "captured" || cap.str("payment_status") != "paid" {
		t.Fatalf("captured %s", cap.raw)
	}
	if r := e.call("POST", "/v1/checkout/sessions/"+sess.str("id")+"/void", shop.key, nil); r.status != 409 || r.errCode() != "payment_not_capturable" {
		t.Fatalf("void after capture: %d %s", r.status, r.raw)
	}
	if w := e.wallet("u"); w["CNY"] != "30.00/0.00" {
		t.Fatalf("wallet after capture %v", w)
	}
	// A second hold, voided.
	sess2 := e.session(shop, map[string]any{"amount": "5.00", "currency": "CNY", "option": "goods", "capture_method": "manual"})
	e.must(http.StatusOK, e.confirm(sess2, "u"))
	void := e.must(http.StatusOK, e.call("POST", "/v1/checkout/sessions/"+sess2.str("id")+"/void", shop.key, nil))
	if void.str("capture_status") != "voided" {
		t.Fatalf("voided %s", void.raw)
	}
	if w := e.wallet("u"); w["CNY"] != "30.00/0.00" {
		t.Fatalf("wallet after void %v", w)
	}
	// A third whose window runs out: the sweeper voids it.
	sess3 := e.session(shop, map[string]any{"amount": "7.00", "currency": "CNY", "option": "goods", "capture_method": "manual"})
	e.must(http.StatusOK, e.confirm(sess3, "u"))
	if _, err := e.db.Pool.Exec(context.Background(), `UPDATE checkout_sessions SET hold_expires_at = now() - interval '1 second' WHERE id = $1`, sess3.str("id")); err != nil {
		t.Fatal(err)
	}
	if r := e.call("POST", "/v1/checkout/sessions/"+sess3.str("id")+"/capture", shop.key, nil); r.status != 409 || r.errCode() != "hold_expired" {
		t.Fatalf("capture after the window: %d %s", r.status, r.raw)
	}
	if n, err := e.checkout.VoidExpiredHolds(context.Background(), 10); err != nil || n != 1 {
		t.Fatalf("VoidExpiredHolds = %d, %v", n, err)
	}
	if w := e.wallet("u"); w["CNY"] != "30.00/0.00" {
		t.Fatalf("wallet after the window %v", w)
	}
	types := e.count(`SELECT count(DISTINCT type) FROM events WHERE type IN ('payment.captured', 'payment.voided')`)
	if types != 2 {
		t.Fatalf("capture and void events missing")
	}
	auto := e.session(shop, map[string]any{"amount": "1.00", "currency": "CNY", "option": "goods"})
	if r := e.call("POST", "/v1/checkout/sessions/"+auto.str("id")+"/capture", shop.key, nil); r.status != 422 || r.errCode() != "capture_not_applicable" {
		t.Fatalf("capture of automatic: %d %s", r.status, r.raw)
	}
	e.mustBalanced()
}

func TestSessionLifecycle(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	e.topUp("u", "10.00", "CNY")
	// Insufficient funds: 402, and the session stays open and can be paid later.
	sess := e.session(shop, map[string]any{"amount": "20.00", "currency": "CNY", "option": "goods"})
	if r := e.confirm(sess, "u"); r.status != 402 || r.errCode() != "insufficient_funds" {
		t.Fatalf("broke: %d %s", r.status, r.raw)
	}
	if s := e.call("GET", "/v1/checkout/sessions/"+sess.str("id"), shop.key, nil); s.str("status") != "open" {
		t.Fatalf("session after 402: %s", s.raw)
	}
	e.topUp("u", "10.00", "CNY")
	e.must(http.StatusOK, e.confirm(sess, "u"))

	// Cancel.
	c := e.session(shop, map[string]any{"amount": "1.00", "currency": "CNY", "option": "goods"})
	if r := e.must(http.StatusOK, e.call("POST", "/v1/checkout/sessions/"+c.str("id")+"/cancel", shop.key, nil)); r.str("status") != "canceled" {
		t.Fatalf("cancel %s", r.raw)
	}
	if r := e.confirm(c, "u"); r.status != 409 || r.errCode() != "session_canceled" {
		t.Fatalf("confirm canceled: %d %s", r.status, r.raw)
	}
	if r := e.call("POST", "/v1/checkout/sessions/"+sess.str("id")+"/cancel", shop.key, nil); r.status != 409 || r.errCode() != "session_not_open" {
		t.Fatalf("cancel complete: %d %s", r.status, r.raw)
	}
	// Expiry: confirm refuses as soon as it has passed; the sweeper marks it.
	x := e.session(shop, map[string]any{"amount": "1.00", "currency": "CNY", "option": "goods", "expires_in": 60})
	if _, err := e.db.Pool.Exec(context.Background(), `UPDATE checkout_sessions SET expires_at = now() - interval '1 second' WHERE id = $1`, x.str("id")); err != nil {
		t.Fatal(err)
	}
	if r := e.confirm(x, "u"); r.status != 409 || r.errCode() != "session_expired" {
		t.Fatalf("confirm expired: %d %s", r.status, r.raw)
	}
	if n, err := e.checkout.ExpireDue(context.Background(), 100); err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v", n, err)
	}
	if s := e.call("GET", "/v1/checkout/sessions/"+x.str("id"), shop.key, nil); s.str("status") != "expired" {
		t.Fatalf("after sweep: %s", s.raw)
	}
	if n := e.count(`SELECT count(*) FROM events WHERE type = 'checkout.session.expired' AND object_id = $1`, x.str("id")); n != 1 {
		t.Fatalf("%d expired events", n)
	}
	e.mustBalanced()
}

// TestListSessionsNewestFirst lists sessions whose ids come from
// idempotency keys (hashes, in no time order): the list is still newest
// first, and paging through it yields every session once.
func TestListSessionsNewestFirst(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	var created []string
	for i := 0; i < 7; i++ {
		r := e.must(http.StatusCreated, e.call("POST", "/v1/checkout/sessions", shop.key,
			map[string]any{"amount": "1.00", "currency": "CNY", "option": "goods"}, "Idempotency-Key", fmt.Sprintf("order-%d", i)))
		created = append(created, r.str("id"))
	}
	var listed []string
	after := ""
	for page := 0; page < 10; page++ {
		path := "/v1/checkout/sessions?limit=3"
		if after != "" {
			path += "&starting_after=" + after
		}
		r := e.must(http.StatusOK, e.call("GET", path, shop.key, nil))
		for _, d := range r.body["data"].([]any) {
			after = d.(map[string]any)["id"].(string)
			listed = append(listed, after)
		}
		if r.body["has_more"] != true {
			break
		}
	}
	slices.Reverse(created)
	if !slices.Equal(listed, created) {
		t.Fatalf("listed %v\nwant newest first %v", listed, created)
	}
}
