package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
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

// TestTestClocksOverHTTP: in a sandbox a subscription on a test clock
// renews as the clock is advanced; the clock refuses to go back or too far,
// and is another app's 404.
func TestTestClocksOverHTTP(t *testing.T) {
	e := newSandboxEnv(t)
	shop := e.tenant("shop", []string{"subscription"}, []string{"CNY"})
	other := e.tenant("other", []string{"subscription"}, []string{"CNY"})
	app := func(method, path string, body any) resp { return e.call(method, path, shop.key, body) }
	clock := e.must(http.StatusCreated, app("POST", "/v1/test_clocks", map[string]any{"frozen_time": "2027-01-31T09:00:00Z"}))
	if clock.str("status") != "ready" || clock.str("frozen_time") != "2027-01-31T09:00:00.000000Z" {
		t.Fatalf("clock: %s", clock.raw)
	}
	id := clock.str("id")
	plan := e.must(http.StatusCreated, app("POST", "/v1/plans", map[string]any{"name": "Club", "amount": "10.00",
		"currency": "CNY", "option": "subscription", "interval": "month"}))
	sub := e.must(http.StatusCreated, app("POST", "/v1/subscriptions", map[string]any{"plan": plan.str("id"), "test_clock": id}))
	e.topUp("u1", "20.00", "CNY")
	signed := e.must(http.StatusOK, e.host("POST", "/v1/subscriptions/"+sub.str("id")+"/sign",
		map[string]any{"user_id": "u1", "client_secret": sub.str("client_secret")}))
	if signed.str("current_period_start") != "2027-01-31T09:00:00.000000Z" || signed.str("current_period_end") != "2027-02-28T09:00:00.000000Z" {
		t.Fatalf("signed on the clock: %s", signed.raw)
	}
	for _, bad := range []struct {
		to, code string
	}{
		{"2027-01-30T09:00:00Z", "test_clock_backwards"},
		{"2029-02-01T09:00:00Z", "test_clock_too_far"},
		{"tomorrow", "parameter_invalid"},
	} {
		if r := app("POST", "/v1/test_clocks/"+id+"/advance", map[string]any{"frozen_time": bad.to}); r.status != 400 || r.errCode() != bad.code {
			t.Errorf("advance to %s: %d %s", bad.to, r.status, r.raw)
		}
	}
	if r := e.call("POST", "/v1/test_clocks/"+id+"/advance", other.key, map[string]any{"frozen_time": "2027-03-01T00:00:00Z"}); r.status != 404 {
		t.Fatalf("another app advances the clock: %d %s", r.status, r.raw)
	}
	adv := e.must(http.StatusOK, app("POST", "/v1/test_clocks/"+id+"/advance", map[string]any{"frozen_time": "2027-03-31T09:00:00Z"}))
	if adv.str("status") != "ready" || adv.str("frozen_time") != "2027-03-31T09:00:00.000000Z" {
		t.Fatalf("advanced: %s", adv.raw)
	}
	invs := e.must(http.StatusOK, app("GET", "/v1/invoices?subscription="+sub.str("id"), nil)).body["data"].([]any)
	if len(invs) != 3 {
		t.Fatalf("%d invoices after two months", len(invs))
	}
	// Newest first: 31 Mar failed (the wallet held two periods), 28 Feb and 31 Jan paid.
	want := []struct{ start, status string }{{"2027-03-31T09:00:00.000000Z", "open"}, {"2027-02-28T09:00:00.000000Z", "paid"},
		{"2027-01-31T09:00:00.000000Z", "paid"}}
	for i, w := range want {
		in := invs[i].(map[string]any)
		if in["period_start"] != w.start || in["status"] != w.status {
			t.Fatalf("invoice %d: %v", i, in)
		}
	}
	if r := e.must(http.StatusOK, app("GET", "/v1/subscriptions/"+sub.str("id"), nil)); r.str("status") != "past_due" {
		t.Fatalf("after the failed renewal: %s", r.raw)
	}
	if r := e.must(http.StatusOK, app("GET", "/v1/test_clocks/"+id, nil)); r.str("frozen_time") != "2027-03-31T09:00:00.000000Z" {
		t.Fatalf("clock read: %s", r.raw)
	}
}

// TestHostListsAUsersSubscriptions: the host lists what its user signed,
// with every app, as its page of the user's automatic renewals shows it
// (app names, no client secret or customer), and nobody else's; the user
// cancels from there. Without user_id the host is refused, and an app
// cannot ask by user_id.
func TestHostListsAUsersSubscriptions(t *testing.T) {
	e := newEnv(t)
	gym := e.tenant("gym", []string{"subscription"}, []string{"CNY"})
	news := e.tenant("news", []string{"subscription"}, []string{"CNY"})
	e.topUp("u1", "100.00", "CNY")
	e.topUp("u2", "100.00", "CNY")
	signed := func(ten tenant, user string) string {
		plan := e.must(http.StatusCreated, e.call("POST", "/v1/plans", ten.key, map[string]any{"name": "Monthly",
			"amount": "5.00", "currency": "CNY", "option": "subscription", "interval": "month"}))
		sub := e.must(http.StatusCreated, e.call("POST", "/v1/subscriptions", ten.key, map[string]any{"plan": plan.str("id")}))
		e.must(http.StatusOK, e.host("POST", "/v1/subscriptions/"+sub.str("id")+"/sign",
			map[string]any{"user_id": user, "client_secret": sub.str("client_secret")}))
		return sub.str("id")
	}
	mine := map[string]string{signed(gym, "u1"): "gym app", signed(news, "u1"): "news app"}
	theirs := signed(gym, "u2")

	page := e.must(http.StatusOK, e.host("GET", "/v1/subscriptions?limit=1&user_id=u1", nil))
	next := e.must(http.StatusOK, e.host("GET", "/v1/subscriptions?limit=1&user_id=u1&starting_after="+
		page.body["data"].([]any)[0].(map[string]any)["id"].(string), nil))
	if page.body["has_more"] != true || next.body["has_more"] != false {
		t.Fatalf("pages: %s %s", page.raw, next.raw)
	}
	seen := map[string]bool{}
	for _, r := range []resp{page, next} {
		for _, d := range r.body["data"].([]any) {
			o := d.(map[string]any)
			id := o["id"].(string)
			_, secret := o["client_secret"]
			_, customer := o["customer"]
			if mine[id] == "" || o["app_name"] != mine[id] || secret || customer || o["status"] != "active" {
				t.Fatalf("u1's subscription as the host lists it: %v", o)
			}
			seen[id] = true
		}
	}
	if len(seen) != 2 || seen[theirs] {
		t.Fatalf("u1's subscriptions: %v (u2's is %s)", seen, theirs)
	}

	// The user cancels one from the list, at period end.
	for id := range mine {
		e.must(http.StatusOK, e.host("POST", "/v1/subscriptions/"+id+"/cancel", map[string]any{"user_id": "u1"}))
		break
	}
	ending := 0
	for _, d := range e.must(http.StatusOK, e.host("GET", "/v1/subscriptions?user_id=u1", nil)).body["data"].([]any) {
		if d.(map[string]any)["cancel_at_period_end"] == true {
			ending++
		}
	}
	if ending != 1 {
		t.Fatalf("after the user's cancel, %d of u1's subscriptions end at period end", ending)
	}

	if r := e.host("GET", "/v1/subscriptions", nil); r.status != 400 || r.errCode() != "parameter_missing" || r.errParam() != "user_id" {
		t.Fatalf("host without user_id: %d %s", r.status, r.raw)
	}
	if r := e.call("GET", "/v1/subscriptions?user_id=u1", gym.key, nil); r.status != 400 || r.errParam() != "user_id" {
		t.Fatalf("app asking by user_id: %d %s", r.status, r.raw)
	}
	if r := e.must(http.StatusOK, e.call("GET", "/v1/subscriptions", gym.key, nil)); len(r.body["data"].([]any)) != 2 {
		t.Fatalf("gym's own list: %s", r.raw)
	}
}

// TestPlansAndSubscriptionsListNewestFirst: lists are newest first by
// creation, whether an object's id was made fresh or derived from an
// Idempotency-Key (a hash, in no time order), page after page.
func TestPlansAndSubscriptionsListNewestFirst(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"subscription"}, []string{"CNY"})
	var plans, subs []string // in the order made
	for i := 0; i < 6; i++ {
		key := func(what string) []string {
			if i%2 == 1 {
				return nil
			}
			return []string{"Idempotency-Key", fmt.Sprintf("%s-%d", what, i)}
		}
		plan := e.must(http.StatusCreated, e.call("POST", "/v1/plans", shop.key, map[string]any{"name": fmt.Sprintf("Plan %d", i),
			"amount": "5.00", "currency": "CNY", "option": "subscription", "interval": "month"}, key("plan")...))
		sub := e.must(http.StatusCreated, e.call("POST", "/v1/subscriptions", shop.key, map[string]any{"plan": plan.str("id")}, key("sub")...))
		plans, subs = append(plans, plan.str("id")), append(subs, sub.str("id"))
	}
	for _, c := range []struct {
		path string
		made []string
	}{{"/v1/plans", plans}, {"/v1/subscriptions", subs}} {
		var listed []string
		after := ""
		for page := 0; page < 4; page++ {
			r := e.must(http.StatusOK, e.call("GET", c.path+"?limit=2&starting_after="+after, shop.key, nil))
			for _, d := range r.body["data"].([]any) {
				listed = append(listed, d.(map[string]any)["id"].(string))
			}
			if r.body["has_more"] != true {
				break
			}
			after = listed[len(listed)-1]
		}
		want := slices.Clone(c.made)
		slices.Reverse(want)
		if !slices.Equal(listed, want) {
			t.Errorf("%s lists %v, want newest first %v", c.path, listed, want)
		}
	}
}
