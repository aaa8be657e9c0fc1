package api_test

// Fuzz targets for every POST body the API decodes, and one for the whole
// router. Each drives the real handler over real HTTP against a real
// database and checks the rules of hostile input: no input is ever a 5xx,
// every error is the documented JSON error object, a 4xx changes nothing,
// and the ledger passes its audit after anything that succeeded.
//
// The fixtures are created under Idempotency-Keys, so their ids are derived
// from those keys and are the same in every database; the seed corpora in
// testdata/fuzz can name them literally (see fuzzIDs).
//
// Run one with: go test ./api -run '^$' -fuzz '^FuzzTransferBody$' -fuzztime 30s

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minipay/minipay/api/apitest"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/testdb"
	"github.com/minipay/minipay/ledger"
)

// Fixed keys and the ids derived from them.
const (
	fuzzAdminKey = "admin_fuzz_0123456789"
	fuzzHostKey  = "host_fuzz_0123456789"
	fuzzUser     = "usr_fuzz"
)

// fuzzIDs are the fixture ids: every one derived from an Idempotency-Key,
// so they do not change between runs.
var fuzzIDs = func() map[string]string {
	dev := idempotency.DeriveID("dev", "admin", "fuzz-dev")
	app := idempotency.DeriveID("app", "admin", "fuzz-app")
	return map[string]string{
		"dev":      dev,
		"app":      app,
		"open":     idempotency.DeriveID("cs", app, "fuzz-open"),
		"paid":     idempotency.DeriveID("cs", app, "fuzz-paid"),
		"held":     idempotency.DeriveID("cs", app, "fuzz-held"),
		"full":     idempotency.DeriveID("cs", app, "fuzz-full"), // paid, with the most metadata an app may give
		"spare":    idempotency.DeriveID("cs", app, "fuzz-spare"),
		"disputed": idempotency.DeriveID("dp", "host", "fuzz-dispute"),
		"pending":  "tr_fuzz_pending",
		"posted":   "tr_fuzz_posted",
		"otherdev": idempotency.DeriveID("dev", "admin", "fuzz-otherdev"),
		"otherapp": idempotency.DeriveID("app", "admin", "fuzz-otherapp"),
	}
}()

// fuzzEnv is a server over its own database with a developer and app (and
// another app), a funded wallet, sessions in each state, ledger accounts
// and a pending transfer.
type fuzzEnv struct {
	db       *testdb.DB
	url      string
	client   *http.Client
	ledger   *ledger.Ledger
	appKey   string
	otherKey string
	secrets  map[string]string // session id → client_secret
}

func newFuzzEnv(tb testing.TB) *fuzzEnv {
	tb.Helper()
	db := testdb.New(tb)
	s := apitest.Start(tb, db.Pool, apitest.Options{
		Keys: map[apps.KeyKind]string{apps.KindAdmin: fuzzAdminKey, apps.KindHost: fuzzHostKey}})
	e := &fuzzEnv{db: db, url: s.URL, ledger: s.Ledger, secrets: map[string]string{},
		client: &http.Client{Timeout: time.Minute}}

	must := func(method, path, key, idem string, body any) map[string]any {
		tb.Helper()
		b, _ := json.Marshal(body)
		status, raw := e.do(tb, method, path, key, b, "Idempotency-Key", idem)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		if status >= 300 {
			tb.Fatalf("fixture %s %s: %d %s", method, path, status, raw)
		}
		return out
	}
	must("POST", "/v1/developers", fuzzAdminKey, "fuzz-dev", map[string]any{"name": "fuzz"})
	app := must("POST", "/v1/apps", fuzzAdminKey, "fuzz-app", map[string]any{"developer": fuzzIDs["dev"], "name": "fuzz app",
		"options": []string{"goods", "tip", "virtual_goods"}, "currencies": []string{"CNY", "JPY", "KWD"}})
	e.appKey = app["secret_key"].(string)
	must("POST", "/v1/developers", fuzzAdminKey, "fuzz-otherdev", map[string]any{"name": "other"})
	other := must("POST", "/v1/apps", fuzzAdminKey, "fuzz-otherapp", map[string]any{"developer": fuzzIDs["otherdev"], "name": "other app",
		"options": []string{"goods"}, "currencies": []string{"CNY"}})
	e.otherKey = other["secret_key"].(string)
	must("POST", "/v1/wallets/"+fuzzUser+"/topups", fuzzHostKey, "fuzz-topup", map[string]any{"amount": "1000000.00", "currency": "CNY"})
	for _, name := range []string{"open", "paid", "held", "spare", "full"} {
		body := map[string]any{"amount": "100.00", "currency": "CNY", "option": "goods"}
		if name == "held" {
			body["capture_method"] = "manual"
		}
		if name == "full" {
			body["metadata"] = fullMetadata()
		}
		sess := must("POST", "/v1/checkout/sessions", e.appKey, "fuzz-"+name, body)
		e.secrets[fuzzIDs[name]] = sess["client_secret"].(string)
		if name != "open" {
			must("POST", "/v1/checkout/sessions/"+fuzzIDs[name]+"/confirm", fuzzHostKey, "fuzz-confirm-"+name,
				map[string]any{"user_id": fuzzUser, "client_secret": sess["client_secret"]})
		}
	}
	must("POST", "/v1/disputes", fuzzHostKey, "fuzz-dispute", map[string]any{"payment": fuzzIDs["paid"], "user_id": fuzzUser,
		"amount": "10.00", "reason": "not_received"})
	must("POST", "/v1/ledger/accounts", fuzzAdminKey, "fuzz-acct-a", map[string]any{"code": "fuzz:a", "currency": "CNY", "normal_balance": "debit"})
	must("POST", "/v1/ledger/accounts", fuzzAdminKey, "fuzz-acct-b", map[string]any{"code": "fuzz:b", "currency": "CNY", "normal_balance": "credit", "no_overdraft": true})
	must("POST", "/v1/ledger/accounts", fuzzAdminKey, "fuzz-acct-y", map[string]any{"code": "fuzz:y", "currency": "JPY", "normal_balance": "debit"})
	for _, tr := range []struct {
		id      string
		pending bool
	}{{fuzzIDs["posted"], false}, {fuzzIDs["pending"], true}} {
		must("POST", "/v1/ledger/transfers", fuzzAdminKey, "fuzz-"+tr.id, map[string]any{"id": tr.id, "code": "adjustment",
			"pending": tr.pending, "postings": []any{
				map[string]any{"account": "fuzz:a", "debit": "5.00"}, map[string]any{"account": "fuzz:b", "credit": "5.00"}}})
	}
	return e
}

// fullMetadata is the most metadata an app may give an object: 50 keys.
func fullMetadata() map[string]string {
	md := map[string]string{}
	for i := range ledger.MetadataKeysMax {
		md[fmt.Sprintf("key%02d", i)] = strings.Repeat("v", 10)
	}
	return md
}

// do sends one request; headers come in pairs, an empty value is not sent.
func (e *fuzzEnv) do(tb testing.TB, method, path, key string, body []byte, headers ...string) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] != "" {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := e.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading the response: %v", method, path, err)
	}
	return res.StatusCode, raw
}

// state is everything a request could change, summarized: row counts of
// every table a POST writes and the sum of session versions.
func (e *fuzzEnv) state(t *testing.T) string {
	t.Helper()
	var s string
	err := e.db.Pool.QueryRow(context.Background(), `SELECT concat_ws(' ',
		(SELECT count(*) FROM ledger_accounts), (SELECT count(*) FROM ledger_transfers),
		(SELECT count(*) FROM ledger_postings), (SELECT count(*) FROM developers),
		(SELECT count(*) || '/' || md5(coalesce(string_agg(name || options::text || currencies::text, ',' ORDER BY id), '')) FROM apps),
		(SELECT count(*) FROM api_keys),
		(SELECT count(*) FROM checkout_sessions), (SELECT coalesce(sum(version), 0) FROM checkout_sessions),
		(SELECT count(*) FROM refunds), (SELECT count(*) FROM events),
		(SELECT count(*) || '/' || coalesce(sum(version), 0) FROM disputes), (SELECT coalesce(sum(version), 0) FROM payments),
		(SELECT count(*) FROM balance_transactions))`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// check sends the request and enforces the rules of hostile input.
func (e *fuzzEnv) check(t *testing.T, method, path, key string, body []byte, headers ...string) {
	t.Helper()
	before := e.state(t)
	status, raw := e.do(t, method, path, key, body, headers...)
	if status >= 500 {
		t.Fatalf("%s %s %q: %d %s", method, path, body, status, raw)
	}
	// A body that names a member twice is never accepted where bodies are
	// read (POST, PATCH; GET and DELETE ignore theirs): the decoder refuses
	// it (400), unless a layer that runs before the body is read refused
	// the request already (a key used before with another body: 409; a
	// content type that is not JSON: 415; a missing key: 401). The refusal
	// must change nothing, which the 4xx rule below checks.
	if (method == "POST" || method == "PATCH") && hasDuplicateMember(body) && status < 400 {
		t.Fatalf("%s %s %q names a member twice, answered %d %s; want a refusal", method, path, body, status, raw)
	}
	if status >= 400 {
		var eb struct {
			Error struct{ Type, Code, Message string }
		}
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Error.Code == "" || eb.Error.Type == "" {
			t.Fatalf("%s %s %q: %d without an error object: %s", method, path, body, status, raw)
		}
		if after := e.state(t); after != before {
			t.Fatalf("%s %s %q: %d %s changed the state %s -> %s", method, path, body, status, raw, before, after)
		}
		return
	}
	if strings.HasPrefix(path, "/v1/") && !json.Valid(raw) {
		t.Fatalf("%s %s %q: %d with a body that is not JSON: %s", method, path, body, status, raw)
	}
	a, err := e.ledger.Audit(context.Background())
	if err != nil || !a.OK() {
		t.Fatalf("%s %s %q: ledger audit after %d: %+v %v", method, path, body, status, a, err)
	}
}

// hasDuplicateMember reports whether body is JSON with an object that names
// the same member twice: encoding/json would keep the last, the
// idempotency fingerprint both, so the API must refuse it.
func hasDuplicateMember(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		names  map[string]bool
		key    bool // the next string token is a member name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if name, ok := tok.(string); ok && top != nil && top.object && top.key {
			if top.names[name] {
				return true
			}
			top.names[name], top.key = true, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, names: map[string]bool{}, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true // a value ended: a name comes next
		}
	}
}

// fuzzBody is a fuzz target for one route's body: the seeds are added, and
// every input is sent as the body of method path with key (path and key may
// name fixtures: {open}, {paid}, {held}, {full}, {pending}, {posted}).
func fuzzBody(f *testing.F, method, path string, key func(*fuzzEnv) string, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(expand(s)))
	}
	e := newFuzzEnv(f)
	p := expand(path)
	f.Fuzz(func(t *testing.T, body []byte) {
		e.check(t, method, p, key(e), body)
	})
}

// expand replaces {name} with the fixture id of that name.
func expand(s string) string {
	for name, id := range fuzzIDs {
		s = strings.ReplaceAll(s, "{"+name+"}", id)
	}
	return s
}

func admin(*fuzzEnv) string    { return fuzzAdminKey }
func host(*fuzzEnv) string     { return fuzzHostKey }
func appKey(e *fuzzEnv) string { return e.appKey }

// Inputs every body target starts from besides its own valid bodies.
var hostileSeeds = []string{
	``, `{}`, `null`, `[]`, `"x"`, `{"a":1}`, `{} {}`, `{"amount":"1.00"} x`, "{\"name\":\"\xff\"}",
	`{"amount":1e400}`, `{"metadata":{"k":null}}`, `{"amount":"-0.00"}`, `{"amount":"00000000000000000000000001"}`,
	`{"quantity":9223372036854775808}`, `{"timeout":-1}`, "{\"code\":\"\\u0000\"}",
}

func FuzzLedgerAccountBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/ledger/accounts", admin, append(hostileSeeds,
		`{"code":"fuzz:c","currency":"CNY","normal_balance":"debit"}`,
		`{"code":"fuzz:d","currency":"KWD","normal_balance":"credit","no_overdraft":true}`,
		`{"code":"fuzz:a","currency":"CNY","normal_balance":"debit"}`,
		"{\"code\":\"x\\u0000y\",\"currency\":\"CNY\",\"normal_balance\":\"debit\"}",
		`{"code":"fuzz:e","currency":"cny","normal_balance":"Debit"}`)...)
}

func FuzzTransferBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/ledger/transfers", admin, append(hostileSeeds,
		`{"code":"adjustment","postings":[{"account":"fuzz:a","debit":"1.00"},{"account":"fuzz:b","credit":"1.00"}]}`,
		`{"code":"adjustment","pending":true,"timeout":60,"postings":[{"account":"fuzz:a","debit":"0.01"},{"account":"fuzz:b","credit":"0.01"}]}`,
		`{"code":"adjustment","postings":[{"account":"fuzz:b","debit":"99.00"},{"account":"fuzz:a","credit":"99.00"}]}`,
		`{"code":"adjustment","postings":[{"account":"fuzz:a","debit":"1.00"},{"account":"fuzz:y","credit":"1"}]}`,
		`{"id":"{posted}","code":"adjustment","postings":[{"account":"fuzz:a","debit":"5.00"},{"account":"fuzz:b","credit":"5.00"}]}`,
		`{"code":"adjustment","postings":[{"account":"fuzz:a","debit":"92233720368547758.07"},{"account":"fuzz:b","credit":"92233720368547758.07"}]}`,
		`{"code":"adjustment","postings":[{"account":"fuzz:a","debit":"1.00","credit":"1.00"},{"account":"fuzz:b"}]}`,
		`{"code":"adjustment","metadata":{"k":"v"},"postings":[{"account":"fuzz:a","debit":"1.001"},{"account":"fuzz:b","credit":"1.001"}]}`,
		`{"code":"adjustment","postings":[{"account":"fuzz:a","debit":"1.00","Debit":"9.00"},{"account":"fuzz:b","credit":"1.00"}]}`,
		`{"code":"adjustment","postings":[{"account":"fuzz:a","debit":"1.00"},{"account":"fuzz:b","credit":"1.00","credit":"9.00"}]}`,
		`{"code":"adjustment","metadata":{"minipay_session":"{paid}"},"postings":[{"account":"fuzz:a","debit":"1.00"},{"account":"fuzz:b","credit":"1.00"}]}`)...)
}

func FuzzPendingPostBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/ledger/transfers/{pending}/post", admin, hostileSeeds...)
}

func FuzzPendingVoidBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/ledger/transfers/{pending}/void", admin, hostileSeeds...)
}

func FuzzReverseBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/ledger/transfers/{posted}/reverse", admin, append(hostileSeeds,
		`{"metadata":{"reason":"fuzz"}}`, `{"metadata":{"":""}}`)...)
}

func FuzzDeveloperBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/developers", admin, append(hostileSeeds,
		`{"name":"Acme"}`, `{"name":""}`, `{"name":"`+strings.Repeat("x", 300)+`"}`, "{\"name\":\"a\\u0000b\"}")...)
}

func FuzzAppBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/apps", admin, append(hostileSeeds,
		`{"developer":"{dev}","name":"shop","options":["goods"],"currencies":["CNY"]}`,
		`{"developer":"{dev}","name":"shop","options":["loans"],"currencies":["CNY"]}`,
		`{"developer":"{dev}","name":"shop","options":["goods","goods"],"currencies":["XXX"]}`,
		`{"developer":"dev_nope","name":"shop","options":[],"currencies":[]}`)...)
}

func FuzzAppUpdateBody(f *testing.F) {
	fuzzBody(f, "PATCH", "/v1/apps/{otherapp}", admin, append(hostileSeeds,
		`{"options":["goods","tip"]}`, `{"options":[]}`, `{"options":["loans"]}`, `{"options":null}`,
		`{"currencies":["CNY","JPY"]}`, `{"currencies":["XXX"]}`, `{"name":"renamed"}`, `{"name":" "}`,
		`{"developer":"{dev}"}`, `{"options":["goods"],"options":["tip"]}`)...)
}

func FuzzRollKeyBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/apps/{otherapp}/keys/roll", admin, hostileSeeds...)
}

func FuzzSessionBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/checkout/sessions", appKey, append(hostileSeeds,
		`{"amount":"12.34","currency":"CNY","option":"goods"}`,
		`{"amount":"1","currency":"JPY","option":"tip","expires_in":60,"capture_method":"manual"}`,
		`{"amount":"1.234","currency":"KWD","option":"virtual_goods","client_reference_id":"order-1","metadata":{"k":"v"}}`,
		`{"line_items":[{"name":"a","unit_amount":"1.00","quantity":3},{"name":"b","unit_amount":"0.01","quantity":1}],"currency":"CNY","option":"goods"}`,
		`{"line_items":[{"name":"a","unit_amount":"99999.99","quantity":9223372036854775807}],"currency":"CNY","option":"goods"}`,
		`{"line_items":[{"name":"a","unit_amount":"1.00","quantity":-1}],"currency":"CNY","option":"goods"}`,
		`{"amount":"12.345","currency":"CNY","option":"goods","expires_in":86401}`,
		`{"amount":"1.00","AMOUNT":"9.00","currency":"CNY","option":"goods"}`,
		`{"amount":"1.00","currency":"CNY","currency":"JPY","option":"goods"}`,
		`{"line_items":[{"name":"a","unit_amount":"1.00","quantity":1,"Quantity":9}],"currency":"CNY","option":"goods"}`,
		`{"amount":"1.00","currency":"CNY","option":"goods","metadata":{"minipay_session":"{paid}","minipay_app":"{otherapp}"}}`,
		`{"amount":"1.00","currency":"CNY","option":"goods","metadata":`+fullMetadataJSON()+`}`)...)
}

func fullMetadataJSON() string {
	b, _ := json.Marshal(fullMetadata())
	return string(b)
}

func FuzzConfirmBody(f *testing.F) {
	e0 := func(e *fuzzEnv) string { return fuzzHostKey }
	// The open session's client secret is random, so seeds cannot carry
	// it; the fuzzer still explores every way of getting it wrong.
	fuzzBody(f, "POST", "/v1/checkout/sessions/{open}/confirm", e0, append(hostileSeeds,
		`{"user_id":"usr_fuzz","client_secret":"cs_secret_wrong"}`,
		`{"user_id":"usr_other","client_secret":""}`,
		`{"user_id":"no spaces","client_secret":"x"}`,
		`{"user_id":"`+strings.Repeat("u", 200)+`","client_secret":"x"}`)...)
}

func FuzzSessionActionBody(f *testing.F) {
	f.Add(uint8(0), []byte(`{}`))
	f.Add(uint8(1), []byte(``))
	f.Add(uint8(2), []byte(`{"x":1}`))
	f.Add(uint8(3), []byte(`null`))
	for _, s := range hostileSeeds {
		f.Add(uint8(len(s)), []byte(s))
	}
	e := newFuzzEnv(f)
	paths := []string{"/v1/checkout/sessions/{open}/cancel", "/v1/checkout/sessions/{held}/capture",
		"/v1/checkout/sessions/{held}/void", "/v1/checkout/sessions/{paid}/cancel"}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		e.check(t, "POST", expand(paths[int(which)%len(paths)]), e.appKey, body)
	})
}

func FuzzRefundBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/refunds", appKey, append(hostileSeeds,
		`{"checkout_session":"{paid}","amount":"0.01","reason":"requested_by_customer"}`,
		`{"checkout_session":"{paid}"}`,
		`{"checkout_session":"{paid}","amount":"100.01"}`,
		`{"checkout_session":"{open}","amount":"1.00"}`,
		`{"checkout_session":"{held}","amount":"1.00","metadata":{"k":"v"}}`,
		// Names twice, or in another case: encoding/json keeps the last or
		// matches regardless of case, the fingerprint keeps what was sent.
		`{"checkout_session":"{paid}","amount":"0.01","AMOUNT":"90.00"}`,
		`{"checkout_session":"{paid}","amount":"0.01","amount":"90.00"}`,
		`{"checkout_session":"{paid}","Amount":"0.01"}`,
		`{"checkout_session":"{paid}","amount":"0.01","metadata":{"k":"v","k":"w"}}`,
		`{"checkout_session":"{paid}","checkout_session":"{open}","amount":"0.01"}`,
		// A payment with 50 metadata keys is refundable; minipay_ keys are minipay's.
		`{"checkout_session":"{full}","amount":"0.01"}`,
		`{"checkout_session":"{full}"}`,
		`{"checkout_session":"{paid}","amount":"0.01","metadata":{"minipay_refund":"re_forged"}}`)...)
}

func FuzzDisputeBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/disputes", host, append(hostileSeeds,
		`{"payment":"{spare}","user_id":"usr_fuzz","amount":"1.00","reason":"not_received","description":"never came"}`,
		`{"payment":"{paid}","user_id":"usr_fuzz","reason":"duplicate"}`,
		`{"payment":"{spare}","user_id":"usr_other","reason":"other"}`,
		`{"payment":"{open}","user_id":"usr_fuzz","reason":"other"}`,
		`{"payment":"{held}","user_id":"usr_fuzz","reason":"other"}`,
		`{"payment":"{spare}","user_id":"usr_fuzz","amount":"100.01","reason":"other"}`,
		`{"payment":"{spare}","user_id":"usr_fuzz","amount":"0.001","reason":"unauthorized"}`,
		`{"payment":"{spare}","user_id":"usr_fuzz","reason":"bored"}`,
		`{"payment":"in_nope","user_id":"usr_fuzz","reason":"other"}`)...)
}

func FuzzDisputeRespondBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/disputes/{disputed}/respond", appKey, append(hostileSeeds,
		`{"evidence":{"text":"shipped","files":["https://files.example/a.pdf"]}}`,
		`{"accept":true}`, `{"accept":false}`, `{"evidence":{"text":""}}`, `{"evidence":{"files":[""]}}`,
		`{"evidence":{"text":"x","files":[1]}}`, `{"evidence":null,"accept":true}`)...)
}

func FuzzDisputeCloseBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/disputes/{disputed}/close", admin, append(hostileSeeds,
		`{"outcome":"won"}`, `{"outcome":"lost"}`, `{"outcome":"draw"}`, `{"outcome":""}`, `{"outcome":null}`)...)
}

func FuzzTopUpBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/wallets/usr_fuzz2/topups", host, append(hostileSeeds,
		`{"amount":"10.00","currency":"CNY"}`, `{"amount":"10","currency":"JPY"}`, `{"amount":"0.001","currency":"KWD"}`,
		`{"amount":"92233720368547758.08","currency":"CNY"}`, `{"amount":"1.00","currency":"XXX"}`,
		`{"amount":"1.00","Amount":"900.00","currency":"CNY"}`, `{"amount":"1.00","currency":"CNY","amount":"900.00"}`)...)
}

// FuzzAPI drives the whole router: any method, route, path tail, key kind,
// Idempotency-Key, Content-Type and body.
func FuzzAPI(f *testing.F) {
	routes := []string{
		"/v1/ledger/accounts", "/v1/ledger/accounts/fuzz:a", "/v1/ledger/accounts/fuzz:a/entries",
		"/v1/ledger/transfers", "/v1/ledger/transfers/{pending}", "/v1/ledger/transfers/{pending}/post",
		"/v1/ledger/transfers/{pending}/void", "/v1/ledger/transfers/{posted}/reverse", "/v1/ledger/trial_balance",
		"/v1/developers", "/v1/developers/{dev}", "/v1/apps", "/v1/apps/{app}", "/v1/apps/{otherapp}/keys/roll",
		"/v1/monetization_options", "/v1/wallets/usr_fuzz/topups", "/v1/wallets/usr_fuzz",
		"/v1/checkout/sessions", "/v1/checkout/sessions/{open}", "/v1/checkout/sessions/{open}/cancel",
		"/v1/checkout/sessions/{open}/confirm", "/v1/checkout/sessions/{held}/capture",
		"/v1/checkout/sessions/{held}/void", "/v1/refunds", "/v1/refunds/re_nope", "/v1/balance",
		"/v1/balance_transactions", "/healthz", "/readyz", "/openapi.yaml",
		"/v1/disputes", "/v1/disputes/{disputed}", "/v1/disputes/{disputed}/respond", "/v1/disputes/{disputed}/close",
	}
	methods := []string{"GET", "POST", "PATCH", "DELETE", "PUT"}
	f.Add(uint8(1), uint8(3), "", uint8(0), "", "", []byte(`{"code":"adjustment","postings":[{"account":"fuzz:a","debit":"1.00"},{"account":"fuzz:b","credit":"1.00"}]}`))
	f.Add(uint8(1), uint8(17), "", uint8(2), "k1", "", []byte(`{"amount":"1.00","currency":"CNY","option":"goods"}`))
	f.Add(uint8(1), uint8(23), "", uint8(2), "k2", "", []byte(`{"checkout_session":"`+fuzzIDs["paid"]+`","amount":"0.01"}`))
	f.Add(uint8(1), uint8(15), "", uint8(1), "k3", "application/json; charset=utf-8", []byte(`{"amount":"1.00","currency":"CNY"}`))
	f.Add(uint8(0), uint8(18), "%ff", uint8(2), "", "", []byte(nil))
	f.Add(uint8(0), uint8(4), "%00", uint8(0), "", "", []byte(nil))
	f.Add(uint8(1), uint8(19), "", uint8(3), "k4", "text/plain", []byte(`{}`))
	f.Add(uint8(0), uint8(2), "?limit=0&starting_after=%ff", uint8(0), "", "", []byte(nil))
	f.Add(uint8(0), uint8(1), "?at=2020-13-01", uint8(0), "", "", []byte(nil))
	f.Add(uint8(1), uint8(9), "", uint8(0), "\x7f", "", []byte(`{"name":"x"}`))
	// A key used for one session, then with a body that names a member
	// twice: the idempotency layer's 409 comes before the body is decoded.
	f.Add(uint8(1), uint8(17), "", uint8(2), "k5", "", []byte(`{"amount":"1.00","currency":"CNY","option":"goods"}`))
	f.Add(uint8(1), uint8(17), "", uint8(2), "k5", "", []byte(`{"amount":"1.00","amount":"9.00","currency":"CNY","option":"goods"}`))
	// With a fresh key the decoder must refuse it.
	f.Add(uint8(1), uint8(17), "", uint8(2), "k6", "", []byte(`{"amount":"1.00","amount":"9.00","currency":"CNY","option":"goods"}`))
	// The same body with a content type that is not JSON: refused (415)
	// before the body is read.
	f.Add(uint8(1), uint8(17), "", uint8(2), "0", "0", []byte(`{"amount":"","amount"`))
	// A GET ignores its body, whatever it names.
	f.Add(uint8(0), uint8(17), "", uint8(2), "0", "", []byte(`{"amount":"","amount"`))
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, method, route uint8, tail string, key uint8, idem, contentType string, body []byte) {
		keys := []string{fuzzAdminKey, fuzzHostKey, e.appKey, e.otherKey, "", "sk_wrong"}
		path := expand(routes[int(route)%len(routes)]) + tail
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " #\r\n\t") || len(idem) > 1000 {
			return // not a request line a client can send
		}
		if _, err := http.NewRequest("GET", "http://x"+path, nil); err != nil {
			return
		}
		if strings.ContainsAny(idem+contentType, "\r\n\x00") || !validHeader(idem) || !validHeader(contentType) {
			return
		}
		e.check(t, methods[int(method)%len(methods)], path, keys[int(key)%len(keys)], body,
			"Idempotency-Key", idem, "Content-Type", contentType)
	})
}

// validHeader reports whether net/http would send v as a header value.
func validHeader(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
