package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

func (e *env) account(code, currency, normal string, noOverdraft bool) string {
	e.t.Helper()
	r := e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/accounts", map[string]any{
		"code": code, "currency": currency, "normal_balance": normal, "no_overdraft": noOverdraft}))
	return r.str("id")
}

func posting(account, side, amount string) map[string]any {
	return map[string]any{"account": account, side: amount}
}

func TestLedgerOverHTTP(t *testing.T) {
	e := newEnv(t)
	bank := e.account("platform:funding:CNY", "CNY", "debit", false)
	wallet := e.account("wallet:usr_1:CNY", "CNY", "credit", true)
	shop := e.account("dev:dev_1:pending:CNY", "CNY", "credit", false)
	fees := e.account("platform:fees:CNY", "CNY", "credit", false)

	top := e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/transfers", map[string]any{
		"code": "topup", "postings": []any{posting("platform:funding:CNY", "debit", "100.00"), posting(wallet, "credit", "100.00")},
		"metadata": map[string]string{"order": "A-1"},
	}))
	if top.str("status") != "posted" || !strings.HasPrefix(top.str("id"), "tr_") {
		t.Fatalf("transfer %s", top.raw)
	}
	pay := e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/transfers", map[string]any{
		"id": "pay_1", "code": "payment",
		"postings": []any{posting(wallet, "debit", "25.00"), posting(shop, "credit", "24.85"), posting(fees, "credit", "0.15")},
	}))
	ps := pay.body["postings"].([]any)
	if len(ps) != 3 || ps[1].(map[string]any)["credit"] != "24.85" || ps[1].(map[string]any)["currency"] != "CNY" {
		t.Fatalf("postings %s", pay.raw)
	}
	acct := e.must(http.StatusOK, e.admin("GET", "/v1/ledger/accounts/"+wallet, nil))
	if acct.str("balance") != "75.00" || acct.str("available") != "75.00" || acct.str("credits_posted") != "100.00" {
		t.Fatalf("wallet %s", acct.raw)
	}
	byCode := e.must(http.StatusOK, e.admin("GET", "/v1/ledger/accounts/platform:funding:CNY", nil))
	if byCode.str("id") != bank || byCode.str("balance") != "100.00" {
		t.Fatalf("bank by code %s", byCode.raw)
	}
	asOf := e.must(http.StatusOK, e.admin("GET", "/v1/ledger/accounts/"+wallet+"?at="+top.str("created"), nil))
	if asOf.str("balance") != "100.00" {
		t.Fatalf("wallet as of the top-up: %s", asOf.raw)
	}

	// A hold, then its post; another hold, then its void.
	hold := e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/transfers", map[string]any{
		"id": "hold_1", "code": "payment", "pending": true, "timeout": 600,
		"postings": []any{posting(wallet, "debit", "10.00"), posting(shop, "credit", "10.00")},
	}))
	if hold.str("status") != "pending" || hold.str("expires_at") == "" {
		t.Fatalf("hold %s", hold.raw)
	}
	if w := e.admin("GET", "/v1/ledger/accounts/"+wallet, nil); w.str("available") != "65.00" || w.str("balance") != "75.00" {
		t.Fatalf("wallet during hold %s", w.raw)
	}
	if r := e.must(http.StatusOK, e.admin("POST", "/v1/ledger/transfers/hold_1/post", nil)); r.str("status") != "posted" {
		t.Fatalf("post %s", r.raw)
	}
	if r := e.admin("POST", "/v1/ledger/transfers/hold_1/void", nil); r.status != http.StatusConflict || r.errCode() != "transfer_already_posted" {
		t.Fatalf("void after post: %s", r.raw)
	}
	e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/transfers", map[string]any{
		"id": "hold_2", "code": "payment", "pending": true,
		"postings": []any{posting(wallet, "debit", "5.00"), posting(shop, "credit", "5.00")},
	}))
	if r := e.must(http.StatusOK, e.admin("POST", "/v1/ledger/transfers/hold_2/void", nil)); r.str("status") != "voided" {
		t.Fatalf("void %s", r.raw)
	}
	rev := e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/transfers/pay_1/reverse", map[string]any{"metadata": map[string]string{"why": "test"}}))
	if rev.str("reverses") != "pay_1" {
		t.Fatalf("reverse %s", rev.raw)
	}
	if g := e.must(http.StatusOK, e.admin("GET", "/v1/ledger/transfers/pay_1", nil)); g.str("code") != "payment" {
		t.Fatalf("get %s", g.raw)
	}

	// Entries, paged two at a time: top-up, payment, hold, post, hold, void, reversal.
	var seen []string
	after := ""
	for {
		r := e.must(http.StatusOK, e.admin("GET", "/v1/ledger/accounts/"+wallet+"/entries?limit=2&starting_after="+after, nil))
		data := r.body["data"].([]any)
		for _, d := range data {
			seen = append(seen, d.(map[string]any)["transfer"].(string))
		}
		if r.body["has_more"] != true {
			break
		}
		after = seen[len(seen)-1]
	}
	if len(seen) != 7 {
		t.Fatalf("entries %v", seen)
	}
	tb := e.must(http.StatusOK, e.admin("GET", "/v1/ledger/trial_balance", nil))
	cur := tb.body["currencies"].([]any)[0].(map[string]any)
	if tb.body["balanced"] != true || cur["debits"] != cur["credits"] {
		t.Fatalf("trial balance %s", tb.raw)
	}
	if w := e.admin("GET", "/v1/ledger/accounts/"+wallet, nil); w.str("balance") != "90.00" { // 100 - 25 + 25 (reversed) - 10 (posted hold)
		t.Fatalf("wallet at the end %s", w.raw)
	}
}

// TestBadLedgerInput sends every kind of bad request: each gets its own 4xx
// with a code, and the ledger does not change.
func TestBadLedgerInput(t *testing.T) {
	e := newEnv(t)
	a := e.account("a", "CNY", "debit", false)
	b := e.account("b", "CNY", "credit", true)
	usd := e.account("u", "USD", "credit", false)
	jpy := e.account("j", "JPY", "credit", false)
	e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/transfers", map[string]any{"code": "seed",
		"postings": []any{posting(a, "debit", "1.00"), posting(b, "credit", "1.00")}}))
	before := e.ledgerCounts()
	tr := func(ps ...any) map[string]any { return map[string]any{"code": "x", "postings": ps} }
	cases := []struct {
		name   string
		body   any
		status int
		code   string
		param  string
	}{
		{"unbalanced", tr(posting(a, "debit", "1.00"), posting(b, "credit", "0.99")), 400, "unbalanced", "postings"},
		{"unknown account", tr(posting(a, "debit", "1.00"), posting("acct_nope", "credit", "1.00")), 404, "account_not_found", "postings[1].account"},
		{"mixed currencies", tr(posting(a, "debit", "1.00"), posting(usd, "credit", "1.00")), 400, "unbalanced", "postings"},
		{"zero", tr(posting(a, "debit", "0.00"), posting(b, "credit", "0.00")), 400, "amount_not_positive", "postings[0].debit"},
		{"negative", tr(posting(a, "debit", "-1.00"), posting(b, "credit", "-1.00")), 400, "amount_invalid", "postings[0].debit"},
		{"too many decimals", tr(posting(a, "debit", "1.001"), posting(b, "credit", "1.001")), 400, "amount_precision", "postings[0].debit"},
		{"yen decimals", tr(posting(jpy, "credit", "1.5"), posting(e.account("j2", "JPY", "debit", false), "debit", "1.5")), 400, "amount_precision", "postings[0].credit"},
		{"int64 overflow", tr(posting(a, "debit", "92233720368547758.08"), posting(b, "credit", "92233720368547758.08")), 400, "amount_too_large", "postings[0].debit"},
		{"number not string", `{"code":"x","postings":[{"account":"a","debit":1},{"account":"b","credit":1}]}`, 400, "invalid_type", "postings.debit"},
		{"exponent", tr(posting(a, "debit", "1e2"), posting(b, "credit", "1e2")), 400, "amount_invalid", "postings[0].debit"},
		{"one posting", tr(posting(a, "debit", "1.00")), 400, "transfer_invalid", "postings"},
		{"both sides", tr(map[string]any{"account": a, "debit": "1.00", "credit": "1.00"}, posting(b, "credit", "1.00")), 400, "transfer_invalid", "postings[0]"},
		{"malformed JSON", `{"code": "x", "postings": [`, 400, "invalid_json", ""},
		{"trailing data", `{"code": "x"} {"code": "y"}`, 400, "invalid_json", ""},
		{"not an object", `[1, 2]`, 400, "invalid_json", ""},
		{"unknown field", `{"code": "x", "postings": [], "amount": "1.00"}`, 400, "unknown_field", "amount"},
		{"invalid utf-8", "{\"code\": \"x\xff\", \"postings\": []}", 400, "invalid_utf8", ""},
		{"bad timeout", map[string]any{"code": "x", "pending": true, "timeout": -1, "postings": []any{posting(a, "debit", "1.00"), posting(b, "credit", "1.00")}}, 400, "parameter_invalid", "timeout"},
		{"bad id", map[string]any{"id": "has space", "code": "x", "postings": []any{posting(a, "debit", "1.00"), posting(b, "credit", "1.00")}}, 400, "transfer_invalid", "id"},
		{"insufficient funds", tr(posting(b, "debit", "5.00"), posting(a, "credit", "5.00")), 402, "insufficient_funds", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.admin("POST", "/v1/ledger/transfers", c.body)
			if r.status != c.status || r.errCode() != c.code || (c.param != "" && r.errParam() != c.param) {
				t.Fatalf("got %d %s (param %q), want %d %s (param %q): %s", r.status, r.errCode(), r.errParam(), c.status, c.code, c.param, r.raw)
			}
			errObj := r.body["error"].(map[string]any)
			if errObj["request_id"] == "" || errObj["message"] == "" || errObj["type"] == "" {
				t.Fatalf("incomplete error object: %s", r.raw)
			}
		})
	}
	if after := e.ledgerCounts(); after != before {
		t.Fatalf("bad requests changed the ledger: %v -> %v", before, after)
	}

	// Transport-level refusals.
	if r := e.call("POST", "/v1/ledger/transfers", e.adminKey, "{}", "Content-Type", "text/plain"); r.status != 415 {
		t.Fatalf("wrong content type: %d %s", r.status, r.raw)
	}
	big := `{"code": "` + strings.Repeat("x", 1<<20) + `"}`
	if r := e.admin("POST", "/v1/ledger/transfers", big); r.status != 413 || r.errCode() != "body_too_large" {
		t.Fatalf("big body: %d %s", r.status, r.raw)
	}
	if r := e.admin("GET", "/v1/ledger/nothing", nil); r.status != 404 || r.errCode() != "resource_missing" {
		t.Fatalf("unknown route: %d %s", r.status, r.raw)
	}
	if r := e.admin("GET", "/v1/ledger/accounts/acct_missing", nil); r.status != 404 || r.errCode() != "account_not_found" {
		t.Fatalf("missing account: %d %s", r.status, r.raw)
	}
	if r := e.admin("GET", "/v1/ledger/accounts/"+a+"/entries?limit=101", nil); r.status != 400 || r.errParam() != "limit" {
		t.Fatalf("limit 101: %d %s", r.status, r.raw)
	}
	if r := e.admin("POST", "/v1/ledger/accounts", map[string]any{"code": "a", "currency": "CNY", "normal_balance": "debit"}); r.status != 409 || r.errCode() != "account_exists" {
		t.Fatalf("duplicate account: %d %s", r.status, r.raw)
	}
	if r := e.admin("POST", "/v1/ledger/accounts", map[string]any{"code": "n", "currency": "XYZ", "normal_balance": "debit"}); r.status != 400 || r.errCode() != "unknown_currency" {
		t.Fatalf("unknown currency: %d %s", r.status, r.raw)
	}
	if after := e.ledgerCounts(); after != before {
		t.Fatalf("bad requests changed the ledger: %v -> %v", before, after)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		key    string
		status int
		code   string
	}{
		{"", 401, "missing_api_key"},
		{"admin_wrong", 401, "invalid_api_key"},
		{e.hostKey, 403, "forbidden"},
		{e.adminKey, 200, ""},
	}
	for _, c := range cases {
		r := e.call("GET", "/v1/ledger/trial_balance", c.key, nil)
		if r.status != c.status || r.errCode() != c.code {
			t.Errorf("key %q: %d %s", c.key, r.status, r.raw)
		}
		if r.header.Get("Request-Id") == "" {
			t.Errorf("no Request-Id header")
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/openapi.yaml"} {
		if r := e.call("GET", path, "", nil); r.status != 200 {
			t.Errorf("%s: %d", path, r.status)
		}
	}
}

// TestIdempotencyKeys replays, conflicts and races Idempotency-Key.
func TestIdempotencyKeys(t *testing.T) {
	e := newEnv(t)
	a := e.account("a", "CNY", "debit", false)
	b := e.account("b", "CNY", "credit", false)
	body := map[string]any{"code": "topup", "postings": []any{posting(a, "debit", "1.00"), posting(b, "credit", "1.00")}}

	first := e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/transfers", body, "Idempotency-Key", "k1"))
	again := e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/transfers", body, "Idempotency-Key", "k1"))
	if string(again.raw) != string(first.raw) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay differs:\n%s\n%s", first.raw, again.raw)
	}
	// Same content with other spacing and key order: still the same request.
	sameKeysOtherOrder := `{"postings":[{"account":"` + a + `","debit":"1.00"},{"account":"` + b + `","credit":"1.00"}],   "code":"topup"}`
	if r := e.admin("POST", "/v1/ledger/transfers", sameKeysOtherOrder, "Idempotency-Key", "k1"); r.status != 201 || r.str("id") != first.str("id") {
		t.Fatalf("reformatted body: %d %s", r.status, r.raw)
	}
	other := map[string]any{"code": "topup", "postings": []any{posting(a, "debit", "2.00"), posting(b, "credit", "2.00")}, "metadata": map[string]string{"x": "y"}}
	r := e.admin("POST", "/v1/ledger/transfers", other, "Idempotency-Key", "k1")
	if r.status != 409 || r.errCode() != "idempotency_conflict" {
		t.Fatalf("conflict: %d %s", r.status, r.raw)
	}
	if msg := r.body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "metadata") || !strings.Contains(msg, "postings") {
		t.Fatalf("conflict does not name the differing fields: %s", msg)
	}
	if r := e.admin("POST", "/v1/ledger/accounts", map[string]any{"code": "c", "currency": "CNY", "normal_balance": "debit"}, "Idempotency-Key", "k1"); r.status != 409 {
		t.Fatalf("same key on another route: %d %s", r.status, r.raw)
	}
	// The host's keys are its own: the admin's k1 means nothing to it.
	if r := e.call("POST", "/v1/ledger/transfers", e.hostKey, body, "Idempotency-Key", "k1"); r.status != 403 {
		t.Fatalf("host: %d", r.status)
	}

	// Twenty identical requests at once: one runs, the others replay it.
	before := e.ledgerCounts()
	var wg sync.WaitGroup
	results := make([]resp, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.admin("POST", "/v1/ledger/transfers", body, "Idempotency-Key", "race")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.status != 201 || r.str("id") != results[0].str("id") {
			t.Fatalf("racer %d: %d %s", i, r.status, r.raw)
		}
	}
	if after := e.ledgerCounts(); after[0] != before[0]+1 {
		t.Fatalf("%d transfers written by 20 racers with one key", after[0]-before[0])
	}
	// An error response is replayed too, so a client sees one outcome per key.
	broke := map[string]any{"code": "x", "postings": []any{posting(a, "debit", "1.00"), posting(b, "credit", "2.00")}}
	r1 := e.admin("POST", "/v1/ledger/transfers", broke, "Idempotency-Key", "bad")
	r2 := e.admin("POST", "/v1/ledger/transfers", broke, "Idempotency-Key", "bad")
	if r1.status != 400 || string(r1.raw) != string(r2.raw) {
		t.Fatalf("error replay: %s / %s", r1.raw, r2.raw)
	}
	if r := e.admin("POST", "/v1/ledger/transfers", body, "Idempotency-Key", strings.Repeat("k", 256)); r.status != 400 || r.errCode() != "idempotency_key_invalid" {
		t.Fatalf("long key: %d %s", r.status, r.raw)
	}
}
