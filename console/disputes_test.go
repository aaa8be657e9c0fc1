package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// disputeState is what a refused dispute form must leave as it was: the
// dispute's row, and the events and transfers written.
func (e *env) disputeState(id string) string {
	e.t.Helper()
	var out string
	err := e.db.Pool.QueryRow(e.t.Context(), `SELECT concat_ws(' ', d.status, d.version, coalesce(d.evidence::text, '-'),
		(SELECT count(*) FROM events WHERE object_id = d.id), (SELECT count(*) FROM ledger_transfers))
		FROM disputes d WHERE d.id = $1`, id).Scan(&out)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) events(objectID, typ string) int {
	e.t.Helper()
	return e.count(`SELECT count(*) FROM events WHERE object_id = $1 AND type = $2`, objectID, typ)
}

// TestDisputeAnswer: the app finds its dispute, sees what the user says
// and by when to answer, and answers with evidence; refused forms (no CSRF
// token, no evidence, too many files, another app's dispute, answering
// twice or late) say why and change nothing.
func TestDisputeAnswer(t *testing.T) {
	e := newEnv(t)
	pay := e.paid(e.shop, "host_user_4711", "40.00")
	dp := e.dispute(pay, "host_user_4711", "25.00")
	theirs := e.dispute(e.paid(e.other, "u9", "9.00"), "u9", "")
	b := e.signIn(e.shop.key)

	// The list: the app's dispute, not another app's; filtered by status.
	page := b.must(http.StatusOK, b.get("/console/disputes"))
	has(t, page, dp, "25.00 CNY", "not_received", `<span class="badge needs_response">`, `href="/console/payments/`+pay+`"`,
		`href="/console/disputes"`) // the nav
	if strings.Contains(page.raw, theirs) {
		t.Error("the list shows another app's dispute")
	}
	has(t, b.must(http.StatusOK, b.get("/console/disputes?status=needs_response")), dp)
	has(t, b.must(http.StatusOK, b.get("/console/disputes?status=won")), "No disputes match.")
	has(t, b.must(http.StatusOK, b.get("/console/disputes?payment="+pay)), dp)
	if r := b.get("/console/disputes?status=open"); r.status != http.StatusBadRequest || !strings.Contains(r.raw, "needs_response, under_review, won or lost") {
		t.Errorf("bad status filter: %d %.500s", r.status, r.raw)
	}

	// The dispute's page: payment, amount, reason, complaint, deadline, forms.
	page = b.must(http.StatusOK, b.get("/console/disputes/" + dp))
	has(t, page, "25.00 CNY disputed", "40.00 CNY paid", `data-testid="complaint">The parcel never arrived.`, "not_received",
		"6 days 23 hours left", `data-testid="respond-form"`, `data-testid="accept-form"`, `href="/console/payments/`+pay+`"`,
		"dispute.created", "Not answered yet.")
	if strings.Contains(page.raw, "host_user_4711") {
		t.Error("the dispute's page shows the host's user id")
	}
	// The payment's page links to it.
	has(t, b.must(http.StatusOK, b.get("/console/payments/"+pay)), `href="/console/disputes/`+dp+`"`, "Held by a dispute")

	before := e.disputeState(dp)
	unchanged := func(what string) {
		t.Helper()
		if after := e.disputeState(dp); after != before {
			t.Errorf("%s changed the dispute: %s -> %s", what, before, after)
		}
	}
	// No CSRF token, or another's: 403.
	if r := b.postRaw("/console/disputes/"+dp+"/respond", url.Values{"evidence_text": {"x"}}); r.status != http.StatusForbidden {
		t.Errorf("respond without a CSRF token: %d", r.status)
	}
	if r := b.postRaw("/console/disputes/"+dp+"/respond", url.Values{"evidence_text": {"x"}, "csrf_token": {e.signIn(e.other.key).csrf}}); r.status != http.StatusForbidden {
		t.Errorf("respond with another session's CSRF token: %d", r.status)
	}
	unchanged("a form without its CSRF token")
	// No evidence: told to write some (or accept), what was typed kept.
	r := b.post("/console/disputes/"+dp+"/respond", url.Values{"evidence_text": {""}, "evidence_files": {"https://files.example/receipt.pdf"}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("respond without evidence: %d", r.status)
	}
	has(t, r, `role="alert"`, "Write your evidence before sending it, or accept the dispute.", "https://files.example/receipt.pdf", `data-testid="respond-form"`)
	// Too many files: the domain's limit, as the API states it.
	r = b.post("/console/disputes/"+dp+"/respond", url.Values{"evidence_text": {"see files"}, "evidence_files": {strings.Repeat("f\n", 11)}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.raw, "evidence.files: ") || !strings.Contains(r.raw, "at most 10 files") {
		t.Fatalf("respond with 11 files: %d %.3000s", r.status, r.raw)
	}
	// Accepting needs the box ticked.
	r = b.post("/console/disputes/"+dp+"/respond", url.Values{"accept": {"true"}, "note": {"sorry"}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.raw, "Tick the box to confirm") || !strings.Contains(r.raw, `value="sorry"`) {
		t.Fatalf("accept without confirming: %d %.3000s", r.status, r.raw)
	}
	// Another app: not found, for the page and the form.
	other := e.signIn(e.other.key)
	if r := other.get("/console/disputes/" + dp); r.status != http.StatusNotFound {
		t.Errorf("another app's dispute page: %d", r.status)
	}
	if r := other.post("/console/disputes/"+dp+"/respond", url.Values{"evidence_text": {"mine"}}); r.status != http.StatusNotFound {
		t.Errorf("answering another app's dispute: %d", r.status)
	}
	if r := other.post("/console/disputes/"+dp+"/respond", url.Values{"accept": {"true"}, "confirm": {"yes"}}); r.status != http.StatusNotFound {
		t.Errorf("accepting another app's dispute: %d", r.status)
	}
	if r := b.get("/console/disputes/dp_nope"); r.status != http.StatusNotFound {
		t.Errorf("no such dispute: %d", r.status)
	}
	unchanged("refused forms")

	// The answer: evidence and two file references, under review, with
	// its event; the API sees the same dispute.
	r = b.must(http.StatusSeeOther, b.post("/console/disputes/"+dp+"/respond", url.Values{
		"evidence_text":  {"Delivered on 3 May, signed for by the customer.\nTracking SF1234567."},
		"evidence_files": {" https://files.example/pod.pdf \r\n\r\nticket-881\r\n"}}))
	page = b.must(http.StatusOK, b.get(r.header.Get("Location")))
	has(t, page, "Evidence sent: the dispute is under review.", `data-testid="dispute-status">under_review`,
		"Delivered on 3 May, signed for by the customer.\nTracking SF1234567.", "<code>https://files.example/pod.pdf</code>",
		"<code>ticket-881</code>", "dispute.updated")
	if strings.Contains(page.raw, `data-testid="respond-form"`) || strings.Contains(page.raw, `data-testid="accept-form"`) {
		t.Error("an answered dispute still offers the answer forms")
	}
	if n := e.events(dp, "dispute.updated"); n != 1 {
		t.Errorf("%d dispute.updated events", n)
	}
	got := e.must(http.StatusOK, e.api("GET", "/v1/disputes/"+dp, e.shop.key, nil))
	ev, _ := got.body["evidence"].(map[string]any)
	if got.str("status") != "under_review" || ev == nil || ev["text"] != "Delivered on 3 May, signed for by the customer.\nTracking SF1234567." ||
		len(ev["files"].([]any)) != 2 {
		t.Fatalf("API after the console's answer: %s", got.raw)
	}
	// A second answer (a double submit) is refused as the API refuses it.
	before = e.disputeState(dp)
	r = b.post("/console/disputes/"+dp+"/respond", url.Values{"evidence_text": {"again"}})
	if r.status != http.StatusConflict || !strings.Contains(r.raw, "under review") {
		t.Fatalf("answering twice: %d %.2000s", r.status, r.raw)
	}
	unchanged("answering twice")

	// Late: past evidence_due_by, the page offers no form and the form is refused.
	late := e.dispute(e.paid(e.shop, "u5", "5.00"), "u5", "")
	e.exec(`UPDATE disputes SET evidence_due_by = now() - interval '1 minute' WHERE id = $1`, late)
	page = b.must(http.StatusOK, b.get("/console/disputes/"+late))
	if strings.Contains(page.raw, `data-testid="respond-form"`) || strings.Contains(page.raw, "left)") {
		t.Error("an overdue dispute offers the answer form")
	}
	before = e.disputeState(late)
	r = b.post("/console/disputes/"+late+"/respond", url.Values{"evidence_text": {"too late"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.raw, "the time to answer this dispute has passed") {
		t.Fatalf("answering late: %d %.2000s", r.status, r.raw)
	}
	if after := e.disputeState(late); after != before {
		t.Errorf("a late answer changed the dispute: %s -> %s", before, after)
	}
}

// TestDisputeAccept: accepting, with the box ticked, loses the dispute at
// once; the money goes back to the payer and the payment shows it.
func TestDisputeAccept(t *testing.T) {
	e := newEnv(t)
	pay := e.paid(e.shop, "u1", "30.00")
	dp := e.dispute(pay, "u1", "")
	b := e.signIn(e.shop.key)
	r := b.must(http.StatusSeeOther, b.post("/console/disputes/"+dp+"/respond",
		url.Values{"accept": {"true"}, "confirm": {"yes"}, "note": {"We could not find the parcel."}}))
	page := b.must(http.StatusOK, b.get(r.header.Get("Location")))
	has(t, page, "Accepted: the dispute is lost", `data-testid="dispute-status">lost`, "accepted by the developer",
		"We could not find the parcel.", "dispute.closed", "0.18 CNY")
	if n := e.events(dp, "dispute.closed"); n != 1 {
		t.Errorf("%d dispute.closed events", n)
	}
	sess := e.must(http.StatusOK, e.api("GET", "/v1/checkout/sessions/"+pay, e.shop.key, nil))
	if sess.str("amount_refunded") != "30.00" {
		t.Fatalf("the payment after the accepted dispute: %s", sess.raw)
	}
	wallet := e.must(http.StatusOK, e.api("GET", "/v1/wallets/u1", e.host, nil))
	if !strings.Contains(wallet.raw, `"available":"30.00"`) {
		t.Fatalf("the payer's wallet after the accepted dispute: %s", wallet.raw)
	}
	has(t, b.must(http.StatusOK, b.get("/console/payments/"+pay)), `data-testid="payment-status">refunded`, `<span class="badge lost">lost</span>`)
}

// TestDisputeRuling: the admin sees every app's disputes, filters them,
// and rules; a bad ruling form says why and changes nothing.
func TestDisputeRuling(t *testing.T) {
	e := newEnv(t)
	mine := e.dispute(e.paid(e.shop, "u1", "20.00"), "u1", "")
	theirs := e.dispute(e.paid(e.other, "u2", "8.00"), "u2", "")
	a := e.signIn(e.admin)

	page := a.must(http.StatusOK, a.get("/console/disputes"))
	has(t, page, mine, theirs, `href="/console/apps/`+e.shop.app+`"`, `href="/console/apps/`+e.other.app+`"`, `name="app"`)
	page = a.must(http.StatusOK, a.get("/console/disputes?app="+e.other.app))
	if !strings.Contains(page.raw, theirs) || strings.Contains(page.raw, mine) {
		t.Errorf("filtered by app: %.3000s", page.raw)
	}
	// Paging.
	page = a.must(http.StatusOK, a.get("/console/disputes?limit=1"))
	if !strings.Contains(page.raw, `data-testid="next-page"`) || strings.Count(page.raw, `<tr data-status=`) != 1 {
		t.Errorf("a page of one: %.3000s", page.raw)
	}

	page = a.must(http.StatusOK, a.get("/console/disputes/"+mine))
	has(t, page, `data-testid="close-form"`, "20.00 CNY disputed", e.shop.app)
	if strings.Contains(page.raw, `data-testid="respond-form"`) {
		t.Error("the admin is offered the developer's answer form")
	}
	before := e.disputeState(mine)
	if r := a.postRaw("/console/disputes/"+mine+"/close", url.Values{"outcome": {"won"}}); r.status != http.StatusForbidden {
		t.Errorf("close without a CSRF token: %d", r.status)
	}
	for _, bad := range []string{"", "maybe"} {
		r := a.post("/console/disputes/"+mine+"/close", url.Values{"outcome": {bad}})
		if r.status != http.StatusBadRequest || !strings.Contains(r.raw, "outcome") || !strings.Contains(r.raw, `role="alert"`) {
			t.Errorf("outcome %q: %d %.2000s", bad, r.status, r.raw)
		}
	}
	if after := e.disputeState(mine); after != before {
		t.Errorf("refused rulings changed the dispute: %s -> %s", before, after)
	}

	// Won: the money goes back to the developer.
	r := a.must(http.StatusSeeOther, a.post("/console/disputes/"+mine+"/close", url.Values{"outcome": {"won"}}))
	page = a.must(http.StatusOK, a.get(r.header.Get("Location")))
	has(t, page, "Ruled won", `data-testid="dispute-status">won`, "won (the platform's ruling)", "dispute.closed")
	if strings.Contains(page.raw, `data-testid="close-form"`) {
		t.Error("a ruled dispute still offers the ruling form")
	}
	if n := e.events(mine, "dispute.closed"); n != 1 {
		t.Errorf("%d dispute.closed events", n)
	}
	if d := e.must(http.StatusOK, e.api("GET", "/v1/disputes/"+mine, e.admin, nil)); d.str("status") != "won" || d.str("outcome") != "won" {
		t.Fatalf("API after the ruling: %s", d.raw)
	}
	// A ruling is final.
	before = e.disputeState(mine)
	if r := a.post("/console/disputes/"+mine+"/close", url.Values{"outcome": {"lost"}}); r.status != http.StatusConflict || !strings.Contains(r.raw, "closed") {
		t.Errorf("ruling twice: %d %.2000s", r.status, r.raw)
	}
	if after := e.disputeState(mine); after != before {
		t.Errorf("a second ruling changed the dispute: %s -> %s", before, after)
	}
	has(t, a.must(http.StatusOK, a.get("/console/disputes?status=won")), mine)
	// The developer sees the ruling.
	has(t, e.signIn(e.shop.key).get("/console/disputes/"+mine), `data-testid="outcome">won`)
}
