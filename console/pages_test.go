package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPaymentsPage(t *testing.T) {
	e := newEnv(t)
	first := e.paid(e.shop, "u1", "10.00")
	second := e.paid(e.shop, "u2", "20.00")
	open := e.must(http.StatusCreated, e.api("POST", "/v1/checkout/sessions", e.shop.key,
		map[string]any{"amount": "7.00", "currency": "USD", "option": "goods"})).str("id")
	theirs := e.paid(e.other, "u3", "99.00")
	e.must(http.StatusCreated, e.api("POST", "/v1/refunds", e.shop.key, map[string]any{"checkout_session": second, "amount": "5.00"}))
	b := e.signIn(e.shop.key)

	page := b.must(http.StatusOK, b.get("/console/payments"))
	has(t, page, first, second, "10.00 CNY", "20.00 CNY", "<td>session</td>", "order-u1",
		// Totals: 30.00 paid, 5.00 refunded, 0.6 % fees (0.06 + 0.12, 0.03 of it returned), net 24.85.
		`<td>CNY</td><td class="num">2</td><td class="num">30.00 CNY</td><td class="num">5.00 CNY</td><td class="num">0.15 CNY</td><td class="num">24.85 CNY</td>`)
	for _, not := range []string{theirs, "99.00", open, "USD"} {
		if strings.Contains(page.raw, not) {
			t.Errorf("the payments page shows %s (another app's, or not paid)", not)
		}
	}

	// Filters: by status, by kind, by day; totals follow them.
	page = b.must(http.StatusOK, b.get("/console/payments?status=partially_refunded"))
	has(t, page, second, `<td class="num">1</td><td class="num">20.00 CNY</td>`)
	if strings.Contains(page.raw, first) {
		t.Errorf("status=partially_refunded shows a paid payment")
	}
	has(t, b.must(http.StatusOK, b.get("/console/payments?kind=checkout_session&status=paid")), first)
	has(t, b.must(http.StatusOK, b.get("/console/payments?kind=invoice")), "No payments match.")
	today := time.Now().UTC().Format(time.DateOnly)
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	has(t, b.must(http.StatusOK, b.get("/console/payments?from="+today+"&to="+today)), first, second)
	has(t, b.must(http.StatusOK, b.get("/console/payments?from="+tomorrow)), "No payments match.")
	for _, bad := range []string{"status=open", "kind=wallet", "from=yesterday", "to=2026-13-01", "limit=0"} {
		r := b.get("/console/payments?" + bad)
		if r.status != http.StatusBadRequest && !(bad == "limit=0" && r.status == http.StatusOK) {
			t.Errorf("%s: %d", bad, r.status)
		}
	}

	// Paging keeps the filters.
	page = b.must(http.StatusOK, b.get("/console/payments?kind=checkout_session&limit=1"))
	next := regexp.MustCompile(`href="([^"]+)" data-testid="next-page"`).FindStringSubmatch(page.raw)
	if next == nil || !strings.Contains(next[1], "kind=checkout_session") {
		t.Fatalf("no next page link keeping the filter: %.3000s", page.raw)
	}
	shown := strings.Contains(page.raw, second)
	page2 := b.must(http.StatusOK, b.get(strings.ReplaceAll(next[1], "&amp;", "&")))
	if !shown || !strings.Contains(page2.raw, first) || strings.Contains(page2.raw, `data-testid="next-page"`) {
		t.Errorf("paging: the first page has the newest (%v), the second the oldest and no next link", shown)
	}
}

func TestPaymentPageAndRefund(t *testing.T) {
	e := newEnv(t)
	id := e.paid(e.shop, "u1", "30.00")
	b := e.signIn(e.shop.key)
	page := b.must(http.StatusOK, b.get("/console/payments/"+id))
	has(t, page, "<h1>30.00 CNY <span", "order-u1", "checkout.session.completed", `data-testid="refund-form"`, "0.18 CNY", "goods@2026-01-01T00:00:00Z: 0.6 % and 0 CNY")
	key := regexp.MustCompile(`name="idempotency_key" value="([^"]+)"`).FindStringSubmatch(page.raw)[1]

	// Too much is refused with the reason, keeping what was typed; nothing moves.
	r := b.post("/console/payments/"+id+"/refunds", url.Values{"amount": {"31.00"}, "reason": {"broken"}, "idempotency_key": {key}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("refund too large: %d", r.status)
	}
	has(t, r, "exceeds what remains", `value="31.00"`, `value="broken"`)
	r = b.post("/console/payments/"+id+"/refunds", url.Values{"amount": {"1.001"}, "idempotency_key": {key}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("refund with too many decimals: %d", r.status)
	}
	if n := e.count(`SELECT count(*) FROM refunds`); n != 0 {
		t.Fatalf("%d refunds after refused forms", n)
	}

	// A refund, submitted twice (a double click), is one refund.
	form := url.Values{"amount": {"5.00"}, "reason": {"late delivery"}, "idempotency_key": {key}}
	r = b.must(http.StatusSeeOther, b.post("/console/payments/"+id+"/refunds", form))
	b.must(http.StatusSeeOther, b.post("/console/payments/"+id+"/refunds", form))
	if n := e.count(`SELECT count(*) FROM refunds`); n != 1 {
		t.Fatalf("%d refunds after a double submit", n)
	}
	page = b.must(http.StatusOK, b.get(r.header.Get("Location")))
	has(t, page, "Refunded: re_", "5.00 CNY", "late delivery", "refund.succeeded", "partially_refunded")
	// The API sees the same payment.
	sess := e.must(http.StatusOK, e.api("GET", "/v1/checkout/sessions/"+id, e.shop.key, nil))
	if sess.str("amount_refunded") != "5.00" || sess.str("payment_status") != "partially_refunded" {
		t.Fatalf("API after the console's refund: %s", sess.raw)
	}
	// The rest, with the amount left empty.
	page = b.get("/console/payments/" + id)
	key = regexp.MustCompile(`name="idempotency_key" value="([^"]+)"`).FindStringSubmatch(page.raw)[1]
	b.must(http.StatusSeeOther, b.post("/console/payments/"+id+"/refunds", url.Values{"idempotency_key": {key}}))
	page = b.must(http.StatusOK, b.get("/console/payments/"+id))
	has(t, page, `data-testid="payment-status">refunded`, `data-testid="refunded">30.00 CNY`)
	if strings.Contains(page.raw, `data-testid="refund-form"`) {
		t.Errorf("a refunded payment still offers the refund form")
	}
	// Another app's payment is not found, for its page and its form.
	other := e.signIn(e.other.key)
	if r := other.get("/console/payments/" + id); r.status != http.StatusNotFound {
		t.Errorf("another app's payment: %d", r.status)
	}
	if r := b.get("/console/payments/cs_nope"); r.status != http.StatusNotFound {
		t.Errorf("no such payment: %d", r.status)
	}
	unpaid := e.must(http.StatusCreated, e.api("POST", "/v1/checkout/sessions", e.shop.key,
		map[string]any{"amount": "7.00", "currency": "CNY", "option": "goods"})).str("id")
	if r := b.get("/console/payments/" + unpaid); r.status != http.StatusNotFound {
		t.Errorf("a session never paid: %d", r.status)
	}
	if r := other.post("/console/payments/"+id+"/refunds", url.Values{"idempotency_key": {"x"}}); r.status != http.StatusNotFound {
		t.Errorf("refunding another app's payment: %d", r.status)
	}
}

func TestWebhookPages(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, http.StatusServiceUnavailable)
	created := e.must(http.StatusCreated, e.api("POST", "/v1/webhook_endpoints", e.shop.key,
		map[string]any{"url": rc.srv.URL, "enabled_events": []string{"checkout.session.completed"}}))
	ep, firstSecret := created.str("id"), created.str("secret")
	e.paid(e.shop, "u1", "10.00")
	e.deliver(func() bool { return rc.n.Load() >= 1 && e.count(`SELECT count(*) FROM webhook_attempts`) >= 1 })
	b := e.signIn(e.shop.key)

	has(t, b.must(http.StatusOK, b.get("/console/webhooks")), ep, rc.srv.URL, "checkout.session.completed")
	page := b.must(http.StatusOK, b.get("/console/webhooks/"+ep))
	has(t, page, `data-outcome="failed"`, `<td class="num">503</td>`, " ms</td>", "{&#34;received&#34;: true}", "Redeliver")
	if strings.Contains(page.raw, firstSecret) {
		t.Fatal("the endpoint page shows the signing secret")
	}
	event := regexp.MustCompile(`data-outcome="failed" data-event="(evt_[^"]+)"`).FindStringSubmatch(page.raw)[1]

	// The receiver is fixed; the failed delivery is sent again and lands.
	rc.status.Store(http.StatusOK)
	r := b.must(http.StatusSeeOther, b.post("/console/webhooks/"+ep+"/redeliver", url.Values{"event": {event}}))
	has(t, b.get(r.header.Get("Location")), "Queued for delivery again: "+event)
	e.deliver(func() bool {
		return e.count(`SELECT count(*) FROM webhook_attempts WHERE outcome = 'succeeded' AND event_id = $1`, event) == 1
	})
	has(t, b.must(http.StatusOK, b.get("/console/webhooks/"+ep)), `data-outcome="succeeded" data-event="`+event+`"`, `<td class="num">200</td>`)

	// A rotated secret is shown once, on the answer to the rotation.
	r = b.must(http.StatusOK, b.post("/console/webhooks/"+ep+"/rotate_secret", nil))
	secret := regexp.MustCompile(`<code>(whsec_[^<]+)</code>`).FindStringSubmatch(r.raw)
	if secret == nil || secret[1] == firstSecret {
		t.Fatalf("no new secret on the rotation's page: %.2000s", r.raw)
	}
	page = b.must(http.StatusOK, b.get("/console/webhooks/"+ep))
	if strings.Contains(page.raw, secret[1]) || strings.Contains(page.raw, "whsec_") {
		t.Fatal("the endpoint page shows the secret again")
	}
	has(t, page, "Previous secret", "signs until")
	// Redelivering another app's event is not found.
	theirs := e.paid(e.other, "u2", "1.00")
	_ = theirs
	otherEvent := e.must(http.StatusOK, e.api("GET", "/v1/events?limit=1", e.other.key, nil)).body["data"].([]any)[0].(map[string]any)["id"].(string)
	if r := b.post("/console/webhooks/"+ep+"/redeliver", url.Values{"event": {otherEvent}}); r.status != http.StatusNotFound {
		t.Errorf("redeliver another app's event: %d", r.status)
	}

	// The operators' backlog shows the endpoint while it has work waiting.
	rc.status.Store(http.StatusInternalServerError)
	e.paid(e.shop, "u3", "2.00")
	e.deliver(func() bool {
		return e.count(`SELECT count(*) FROM webhook_attempts WHERE outcome = 'failed'`) >= 2
	})
	admin := e.signIn(e.admin)
	page = admin.must(http.StatusOK, admin.get("/console/webhook_backlog"))
	has(t, page, ep, e.shop.app, `<span class="badge failed">failed</span>`, "Waiting deliveries</dt><dd>2</dd>")
}

func TestBalancePage(t *testing.T) {
	e := newEnv(t)
	e.paid(e.shop, "u1", "100.00")
	// Another app of the same developer: its money is the developer's too.
	b := e.signIn(e.shop.key)
	page := b.must(http.StatusOK, b.get("/console/balance"))
	matures := time.Now().UTC().Add(24 * time.Hour) // goods: held one day
	has(t, page, "99.40 CNY", "<td>"+matures.Format(time.DateOnly)+"</td><td class=\"num\">99.40 CNY</td>", "No payouts yet.")
	e.matureAll()
	e.must(http.StatusCreated, e.api("POST", "/v1/settlement_runs", e.admin, map[string]any{"cutoff": time.Now().UTC().Format(time.RFC3339Nano)}))
	page = b.must(http.StatusOK, b.get("/console/balance"))
	has(t, page, "po_", "in_transit", "99.40 CNY", "Nothing pending.")
	if other := e.signIn(e.other.key).get("/console/balance"); strings.Contains(other.raw, "po_") {
		t.Error("another developer's payout shows")
	}
}

func TestAdminPages(t *testing.T) {
	e := newEnv(t)
	b := e.signIn(e.admin)

	// A developer, then an app with the options ticked: its key, once.
	r := b.must(http.StatusSeeOther, b.post("/console/developers", url.Values{"name": {"Lantern Games"}, "idempotency_key": {"d1"}}))
	devPage := b.must(http.StatusOK, b.get(r.header.Get("Location")))
	has(t, devPage, "Lantern Games", "No apps yet.", `value="virtual_goods"`)
	dev := regexp.MustCompile(`data-testid="developer-id">(dev_[^<]+)<`).FindStringSubmatch(devPage.raw)[1]
	has(t, b.must(http.StatusOK, b.get("/console/developers")), dev, "Lantern Games")

	form := url.Values{"developer": {dev}, "name": {"Lantern"}, "options": {"virtual_goods", "tip"}, "currencies": {"CNY"}, "idempotency_key": {"a1"}}
	r = b.must(http.StatusCreated, b.post("/console/apps", form))
	key := regexp.MustCompile(`<code>(sk_[^<]+)</code>`).FindStringSubmatch(r.raw)
	app := regexp.MustCompile(`data-testid="app-id">(app_[^<]+)<`).FindStringSubmatch(r.raw)
	if key == nil || app == nil {
		t.Fatalf("no key or app on the created app's page: %.2000s", r.raw)
	}
	got := e.must(http.StatusOK, e.api("GET", "/v1/apps/"+app[1], e.admin, nil))
	if opts := got.body["options"].([]any); len(opts) != 2 || got.str("developer") != dev {
		t.Fatalf("the app as the API sees it: %s", got.raw)
	}
	e.must(http.StatusOK, e.api("GET", "/v1/checkout/sessions", key[1], nil)) // the key works
	// The form again (a double submit) is the same app, and no key.
	r = b.must(http.StatusCreated, b.post("/console/apps", form))
	if strings.Contains(r.raw, "sk_") || !strings.Contains(r.raw, "earlier submission") {
		t.Fatalf("double submit: %.2000s", r.raw)
	}
	if n := e.count(`SELECT count(*) FROM apps WHERE developer_id = $1`, dev); n != 1 {
		t.Fatalf("%d apps after a double submit", n)
	}
	page := b.must(http.StatusOK, b.get("/console/apps/"+app[1]))
	if strings.Contains(page.raw, key[1]) || strings.Contains(page.raw, "sk_") {
		t.Fatal("the app page shows a key")
	}
	// Bad grants are refused as the API refuses them.
	bad := url.Values{"developer": {dev}, "name": {"x"}, "options": {"lottery"}, "currencies": {"CNY"}, "idempotency_key": {"a2"}}
	if r := b.post("/console/apps", bad); r.status != http.StatusBadRequest || !strings.Contains(r.raw, "no such monetization option") {
		t.Fatalf("unknown option: %d %.500s", r.status, r.raw)
	}
	// Rolling shows the new key once; the old one keeps working for now.
	r = b.must(http.StatusOK, b.post("/console/apps/"+app[1]+"/roll_key", nil))
	rolled := regexp.MustCompile(`<code>(sk_[^<]+)</code>`).FindStringSubmatch(r.raw)
	if rolled == nil || rolled[1] == key[1] {
		t.Fatalf("roll: %.2000s", r.raw)
	}
	has(t, r, "stop working at")
	e.must(http.StatusOK, e.api("GET", "/v1/checkout/sessions", rolled[1], nil))
	e.must(http.StatusOK, e.api("GET", "/v1/checkout/sessions", key[1], nil))

	// What the app may sell is changed on its page, as PATCH /v1/apps/{id}
	// changes it; nothing ticked is refused and changes nothing.
	r = b.must(http.StatusSeeOther, b.post("/console/apps/"+app[1]+"/grants",
		url.Values{"options": {"goods", "subscription"}, "currencies": {"CNY"}}))
	has(t, b.must(http.StatusOK, b.get(r.header.Get("Location"))), `data-testid="grants-saved"`,
		`value="subscription" checked`, `value="goods" checked`, `value="tip">`)
	got = e.must(http.StatusOK, e.api("GET", "/v1/apps/"+app[1], e.admin, nil))
	if opts := got.body["options"].([]any); len(opts) != 2 || opts[1] != "subscription" {
		t.Fatalf("the app after the grants form: %s", got.raw)
	}
	if r := b.post("/console/apps/"+app[1]+"/grants", url.Values{"currencies": {"CNY"}}); r.status != http.StatusBadRequest ||
		!strings.Contains(r.raw, "at least one option") {
		t.Fatalf("no option ticked: %d %.500s", r.status, r.raw)
	}
	if got := e.must(http.StatusOK, e.api("GET", "/v1/apps/"+app[1], e.admin, nil)); len(got.body["options"].([]any)) != 2 {
		t.Fatalf("a refused grants form changed the app: %s", got.raw)
	}

	// The trial balance.
	e.paid(e.shop, "u1", "10.00")
	has(t, b.must(http.StatusOK, b.get("/console/ledger")), `data-testid="balanced"><span class="badge succeeded">balanced`, "<td>CNY</td>")
}

func TestFinancePages(t *testing.T) {
	e := newEnv(t)
	e.paid(e.shop, "u1", "100.00")
	e.paid(e.other, "u2", "50.00")
	e.matureAll()
	b := e.signIn(e.admin)

	// Settle from the form; the run's page has its totals and downloads.
	r := b.must(http.StatusSeeOther, b.post("/console/settlement_runs", url.Values{"cutoff": {""}}))
	run := strings.TrimPrefix(r.header.Get("Location"), "/console/settlement_runs/")
	page := b.must(http.StatusOK, b.get(r.header.Get("Location")))
	has(t, page, `data-testid="run-status">completed`, "<dt>Payouts</dt><dd>2</dd>", "150.00 CNY", "0.90 CNY", `data-testid="net-CNY">149.10 CNY`, "report.csv?detail=true")
	// The API sees the same run.
	api := e.must(http.StatusOK, e.api("GET", "/v1/settlement_runs/"+run, e.admin, nil))
	if tot := api.body["totals"].([]any)[0].(map[string]any); tot["net"] != "149.10" || tot["gross"] != "150.00" {
		t.Fatalf("API totals: %s", api.raw)
	}
	// A bad cutoff is refused.
	if r := b.post("/console/settlement_runs", url.Values{"cutoff": {"tomorrow"}}); r.status != http.StatusBadRequest {
		t.Fatalf("bad cutoff: %d", r.status)
	}

	// The runs page: the run with its totals, and the chart's data for today.
	page = b.must(http.StatusOK, b.get("/console/settlement_runs"))
	has(t, page, run, "net <strong>149.10 CNY</strong>", `<script type="application/json" id="chart-CNY">`, `data-chart="chart-CNY"`,
		"/console/static/chart.", "<td>"+time.Now().UTC().Format(time.DateOnly)+"</td><td>CNY</td><td class=\"num\">150.00 CNY</td>")
	chart := regexp.MustCompile(`id="chart-CNY">([^<]+)</script>`).FindStringSubmatch(page.raw)[1]
	if !strings.Contains(chart, `"gross":[`) || strings.Count(chart, `"0.00"`) < 3*29 || !strings.Contains(chart, `"150.00"`) {
		t.Errorf("chart data: %s", chart)
	}

	// The reports stream the same bytes as the API's.
	for _, q := range []string{"", "?detail=true"} {
		got := b.must(http.StatusOK, b.get("/console/settlement_runs/"+run+"/report.csv"+q))
		want := e.must(http.StatusOK, e.api("GET", "/v1/settlement_runs/"+run+"/report.csv"+q, e.admin, nil))
		if got.raw != want.raw || got.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
			!strings.Contains(got.header.Get("Content-Disposition"), "attachment") {
			t.Errorf("report%s differs from the API's:\n%s\n---\n%s", q, got.raw, want.raw)
		}
	}
	if r := b.get("/console/settlement_runs/sr_nope/report.csv"); r.status != http.StatusNotFound {
		t.Errorf("report of no run: %d", r.status)
	}

	// Payouts: mark one paid.
	page = b.must(http.StatusOK, b.get("/console/payouts?status=in_transit"))
	payout := regexp.MustCompile(`action="/console/payouts/(po_[^/]+)/mark_paid"`).FindStringSubmatch(page.raw)
	if payout == nil || strings.Count(page.raw, "Mark paid") != 2 {
		t.Fatalf("in-transit payouts: %.3000s", page.raw)
	}
	r = b.must(http.StatusSeeOther, b.post("/console/payouts/"+payout[1]+"/mark_paid", url.Values{"status": {"in_transit"}}))
	page = b.must(http.StatusOK, b.get(r.header.Get("Location")))
	has(t, page, "Marked paid: "+payout[1])
	if strings.Count(page.raw, "Mark paid") != 1 {
		t.Errorf("still two payouts in transit")
	}
	if p := e.must(http.StatusOK, e.api("GET", "/v1/payouts/"+payout[1], e.admin, nil)); p.str("status") != "paid" {
		t.Fatalf("payout after mark paid: %s", p.raw)
	}
	if r := b.get("/console/payouts?status=lost"); r.status != http.StatusBadRequest {
		t.Errorf("bad payout filter: %d", r.status)
	}
}
