package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// subscribed makes a monthly plan of tn (30.00 CNY, goods) and a
// subscription to it that user signs and pays from a funded wallet; it
// returns the plan, the subscription and its first (paid) invoice.
func (e *env) subscribed(tn tenant, user, ref string) (plan, sub, invoice string) {
	e.t.Helper()
	plan = e.must(http.StatusCreated, e.api("POST", "/v1/plans", tn.key, map[string]any{"name": "Monthly membership",
		"amount": "30.00", "currency": "CNY", "option": "goods", "interval": "month"})).str("id")
	s := e.must(http.StatusCreated, e.api("POST", "/v1/subscriptions", tn.key, map[string]any{"plan": plan,
		"client_reference_id": ref, "metadata": map[string]string{"tier": "gold"}}))
	e.must(http.StatusOK, e.api("POST", "/v1/wallets/"+user+"/topups", e.host, map[string]any{"amount": "30.00", "currency": "CNY"}))
	signed := e.must(http.StatusOK, e.api("POST", "/v1/subscriptions/"+s.str("id")+"/sign", e.host,
		map[string]any{"user_id": user, "client_secret": s.str("client_secret")}))
	if signed.str("status") != "active" {
		e.t.Fatalf("signed: %s", signed.raw)
	}
	inv := e.must(http.StatusOK, e.api("GET", "/v1/invoices?subscription="+s.str("id"), tn.key, nil)).body["data"].([]any)
	if len(inv) != 1 {
		e.t.Fatalf("invoices: %v", inv)
	}
	return plan, s.str("id"), inv[0].(map[string]any)["id"].(string)
}

// TestSubscriptionPages: an app's subscriptions list (filtered by status),
// one subscription's page with its invoices and events, the invoice as a
// payment (listed with sessions, with its period, attempts and
// subscription, refundable from its page), and another app seeing none of
// it.
func TestSubscriptionPages(t *testing.T) {
	e := newEnv(t)
	plan, sub, inv := e.subscribed(e.shop, "usr_private_7", "member-7")
	session := e.paid(e.shop, "u2", "12.00")
	b, other := e.signIn(e.shop.key), e.signIn(e.other.key)

	list := b.must(http.StatusOK, b.get("/console/subscriptions"))
	has(t, list, sub, "Monthly membership", "30.00 CNY / month", "member-7", `data-status="active"`)
	if r := b.must(http.StatusOK, b.get("/console/subscriptions?status=canceled")); strings.Contains(r.raw, sub) {
		t.Error("an active subscription is listed as canceled")
	}
	has(t, b.must(http.StatusOK, b.get("/console/subscriptions?status=active")), sub)
	has(t, b.must(http.StatusOK, b.get("/console/subscriptions?plan="+plan)), sub, `name="plan" value="`+plan+`"`)
	if r := b.must(http.StatusOK, b.get("/console/subscriptions?plan=plan_other")); strings.Contains(r.raw, sub) {
		t.Error("another plan's filter lists the subscription")
	}
	if r := b.get("/console/subscriptions?status=nonsense"); r.status != http.StatusBadRequest {
		t.Errorf("unknown status: %d", r.status)
	}
	if r := other.must(http.StatusOK, other.get("/console/subscriptions")); strings.Contains(r.raw, sub) {
		t.Error("another app lists the subscription")
	}

	page := b.must(http.StatusOK, b.get("/console/subscriptions/"+sub))
	has(t, page, "Monthly membership", "30.00 CNY / month", "member-7", "metadata.tier", "gold",
		`href="/console/payments/`+inv+`"`, "subscription.activated", "invoice.paid", `data-testid="cancel-form"`)
	customer := e.must(http.StatusOK, e.api("GET", "/v1/subscriptions/"+sub, e.shop.key, nil)).str("customer")
	if customer == "" || !strings.Contains(page.raw, customer) {
		t.Errorf("the page lacks the customer %q", customer)
	}
	if strings.Contains(page.raw, "usr_private_7") {
		t.Error("the page shows the host's user id")
	}
	if r := other.get("/console/subscriptions/" + sub); r.status != http.StatusNotFound {
		t.Errorf("another app's subscription: %d", r.status)
	}

	// The invoice is a payment: listed with the sessions, filtered by kind.
	all := b.must(http.StatusOK, b.get("/console/payments"))
	has(t, all, inv, session)
	invoices := b.must(http.StatusOK, b.get("/console/payments?kind=invoice"))
	has(t, invoices, inv)
	if strings.Contains(invoices.raw, session) {
		t.Error("kind=invoice lists a checkout session")
	}
	pay := b.must(http.StatusOK, b.get("/console/payments/"+inv))
	has(t, pay, `data-testid="invoice-subscription">`+sub, `data-testid="invoice-period"`, `data-testid="invoice-attempts">1<`,
		`data-testid="refund-form"`)
	if strings.Contains(b.must(http.StatusOK, b.get("/console/payments/"+session)).raw, "invoice-subscription") {
		t.Error("a session's page shows invoice facts")
	}
	// Refunded from its page as a session is.
	r := b.post("/console/payments/"+inv+"/refunds", url.Values{"amount": {"5.00"}, "reason": {"goodwill"}, "idempotency_key": {"inv-refund"}})
	b.must(http.StatusSeeOther, r)
	has(t, b.must(http.StatusOK, b.get(r.header.Get("Location"))), "Refunded:", "5.00 CNY", "goodwill")
	if n := e.count(`SELECT count(*) FROM refunds WHERE payment_id = $1`, inv); n != 1 {
		t.Errorf("refunds of the invoice: %d", n)
	}
	has(t, b.must(http.StatusOK, b.get("/console/subscriptions/"+sub)), "5.00 CNY")
}

// TestCancelSubscriptionForm: the cancel form needs the session's CSRF
// token and a choice of when; a refusal changes nothing; at period end
// and then now each write their event in the subscription's history; a
// second cancel is refused on the page.
func TestCancelSubscriptionForm(t *testing.T) {
	e := newEnv(t)
	_, sub, _ := e.subscribed(e.shop, "u1", "")
	b := e.signIn(e.shop.key)
	path := "/console/subscriptions/" + sub + "/cancel"
	events := func() int {
		return e.count(`SELECT count(*) FROM events WHERE object_id = $1`, sub)
	}
	version := func() int { return e.count(`SELECT version FROM subscriptions WHERE id = $1`, sub) }
	ev0, v0 := events(), version()

	for _, bad := range []struct {
		name   string
		b      *browser
		form   url.Values
		status int
	}{
		{"no token", b, url.Values{"when": {"now"}, "csrf_token": {""}}, http.StatusForbidden},
		{"wrong token", b, url.Values{"when": {"now"}, "csrf_token": {"forged"}}, http.StatusForbidden},
		{"no when", b, url.Values{}, http.StatusBadRequest},
		{"bad when", b, url.Values{"when": {"tomorrow"}}, http.StatusBadRequest},
		{"another app", e.signIn(e.other.key), url.Values{"when": {"now"}}, http.StatusNotFound},
	} {
		before := e.state()
		if r := bad.b.post(path, bad.form); r.status != bad.status {
			t.Errorf("%s: %d, want %d: %.300s", bad.name, r.status, bad.status, r.raw)
		}
		if after := e.state(); after != before || events() != ev0 || version() != v0 {
			t.Errorf("%s changed something:\n before %s\n after  %s", bad.name, before, after)
		}
	}

	r := b.must(http.StatusSeeOther, b.post(path, url.Values{"when": {"period_end"}}))
	page := b.must(http.StatusOK, b.get(r.header.Get("Location")))
	has(t, page, "Set to cancel at the end of the period.", `data-testid="cancel-at-period-end">yes<`, "subscription.updated")
	if events() != ev0+1 {
		t.Errorf("events after cancel at period end: %d, want %d", events(), ev0+1)
	}
	got := e.must(http.StatusOK, e.api("GET", "/v1/subscriptions/"+sub, e.shop.key, nil))
	if got.body["cancel_at_period_end"] != true || got.str("status") != "active" {
		t.Fatalf("after cancel at period end: %s", got.raw)
	}

	r = b.must(http.StatusSeeOther, b.post(path, url.Values{"when": {"now"}}))
	page = b.must(http.StatusOK, b.get(r.header.Get("Location")))
	has(t, page, "Canceled.", `data-testid="subscription-status">canceled<`, "subscription.canceled", "(developer)")
	if strings.Contains(page.raw, `data-testid="cancel-form"`) {
		t.Error("a canceled subscription still has a cancel form")
	}
	if events() != ev0+2 {
		t.Errorf("events after cancel: %d, want %d", events(), ev0+2)
	}

	before := e.state()
	again := b.post(path, url.Values{"when": {"now"}})
	if again.status != http.StatusConflict {
		t.Fatalf("second cancel: %d %.300s", again.status, again.raw)
	}
	has(t, again, `data-testid="error"`, "canceled")
	if e.state() != before || events() != ev0+2 {
		t.Error("a refused second cancel changed something")
	}
}

var planID = regexp.MustCompile(`Created plan (plan_[0-9A-Za-z]+)`)

// TestPlanForm: the plans page lists the app's plans; its form makes one
// through the subscriptions package, once per form however often it is
// sent, and a refused one changes nothing and keeps what was typed.
func TestPlanForm(t *testing.T) {
	e := newEnv(t)
	b, other := e.signIn(e.shop.key), e.signIn(e.other.key)
	plans := func() int { return e.count(`SELECT count(*) FROM subscription_plans`) }
	form := func(key string, kv ...string) url.Values {
		f := url.Values{"name": {"Weekly box"}, "amount": {"9.90"}, "currency": {"CNY"}, "option": {"goods"},
			"interval": {"week"}, "interval_count": {"2"}, "trial_period_days": {"7"}, "idempotency_key": {key}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	for _, bad := range []struct {
		form   url.Values
		status int
		text   string
	}{
		{form("k1", "amount", "abc"), http.StatusBadRequest, "abc"},
		{form("k2", "option", "virtual_goods"), http.StatusForbidden, "virtual_goods"},
		{form("k3", "interval", "fortnight"), http.StatusBadRequest, `data-testid="error"`},
		{form("k4", "interval_count", "two"), http.StatusBadRequest, "interval_count"},
		{form("k5", "name", ""), http.StatusBadRequest, "name"},
		{form(""), http.StatusBadRequest, "idempotency key"},
	} {
		r := b.post("/console/plans", bad.form)
		if r.status != bad.status || !strings.Contains(r.raw, bad.text) {
			t.Errorf("plan %v: %d, want %d with %q: %.500s", bad.form, r.status, bad.status, bad.text, r.raw)
		}
		if plans() != 0 {
			t.Fatalf("a refused plan was made: %v", bad.form)
		}
	}
	r := b.must(http.StatusSeeOther, b.post("/console/plans", form("ok")))
	b.must(http.StatusSeeOther, b.post("/console/plans", form("ok"))) // sent twice: one plan
	if plans() != 1 {
		t.Fatalf("plans after a double submit: %d", plans())
	}
	if r := b.post("/console/plans", form("ok", "amount", "19.90")); r.status != http.StatusUnprocessableEntity && r.status != http.StatusConflict && r.status != http.StatusBadRequest {
		t.Errorf("the same form key with another amount: %d", r.status)
	}
	if plans() != 1 {
		t.Fatalf("plans after reusing a form key: %d", plans())
	}
	page := b.must(http.StatusOK, b.get(r.header.Get("Location")))
	m := planID.FindStringSubmatch(page.raw)
	if m == nil {
		t.Fatalf("no note of the new plan: %.2000s", page.raw)
	}
	has(t, page, "Weekly box", "9.90 CNY / 2 weeks", m[1])
	if strings.Contains(other.must(http.StatusOK, other.get("/console/plans")).raw, m[1]) {
		t.Error("another app lists the plan")
	}
	got := e.must(http.StatusOK, e.api("GET", "/v1/plans/"+m[1], e.shop.key, nil))
	if got.str("amount") != "9.90" || got.body["interval_count"] != 2.0 || got.body["trial_period_days"] != 7.0 {
		t.Errorf("the plan as the API reads it: %s", got.raw)
	}
}
