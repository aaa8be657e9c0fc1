package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"gopkg.in/yaml.v3"

	"github.com/minipay/minipay/docs"
)

// operation is what docs/openapi.yaml says about one method and path.
type operation struct {
	Keys      []string       `yaml:"x-minipay-keys"`
	Responses map[string]any `yaml:"responses"`
}

// success is the operation's documented success status (its lowest 2xx).
func (op operation) success() int {
	best := 0
	for code := range op.Responses {
		if n, err := strconv.Atoi(code); err == nil && n >= 200 && n < 300 && (best == 0 || n < best) {
			best = n
		}
	}
	return best
}

// authzCase is how the matrix exercises one route: the path with its
// parameters filled in, a body that succeeds for the allowed kind, and
// whether the route addresses an object of the test app (so another app's
// key must get 404).
type authzCase struct {
	path  string
	body  any
	owned bool
	// status is the success wanted when it is not the operation's lowest
	// documented 2xx (a call that creates rather than finds).
	status int
	// listed is, for a list route, an id of the test app's that an
	// accepted key sees in the response and another app's key does not.
	listed string
	// hostBody, if set, is the body the host key sends instead of body
	// (a route both keys call, each with its own parameters); hostPath
	// likewise the path.
	hostBody any
	hostPath string
}

// TestAuthorizationMatrix sends every route the router serves with every
// kind of key — none, a wrong one, another app's sk_, the app's sk_, the
// host key, the admin key — and checks the status the documentation
// promises: x-minipay-keys in docs/openapi.yaml lists the kinds a route
// accepts; without a key or with an unknown one it is 401; a key of another
// kind gets 403; another app's key asking for this app's object gets 404;
// an accepted key gets the operation's documented success.
func TestAuthorizationMatrix(t *testing.T) {
	e := newSandboxEnv(t) // so the test helpers answer too
	var spec struct {
		Paths map[string]map[string]operation `yaml:"paths"`
	}
	if err := yaml.Unmarshal(docs.OpenAPI, &spec); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}

	// Objects of the app under test ("shop"), some in each state a
	// route needs.
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	other := e.tenant("other", []string{"goods"}, []string{"CNY"})
	rolled := e.tenant("rolled", []string{"goods"}, []string{"CNY"})

	// Webhooks: a real receiver on loopback (the test server allows
	// private addresses) and shop's endpoints, created before any payment
	// so that checkout events fan out to the first one.
	receiver := newReceiver(t)
	newEndpoint := func() string {
		return e.must(http.StatusCreated, e.call("POST", "/v1/webhook_endpoints", shop.key, map[string]any{
			"url": receiver.srv.URL, "enabled_events": []string{"checkout.session.completed"}})).str("id")
	}
	endpoint, toDelete := newEndpoint(), newEndpoint()

	// A payout of shop's developer, made by settling a matured payment.
	// It comes before the other payments, which the catalog holds for a
	// day, so no later settlement run pays them out from under the
	// refund and capture cases.
	e.paid(shop, "u0", "100.00", "CNY")
	e.matureAll()
	run := e.must(http.StatusCreated, e.admin("POST", "/v1/settlement_runs", map[string]any{"cutoff": time.Now().UTC().Format(time.RFC3339Nano)}))
	if run.str("status") != "completed" || run.body["payouts"] != float64(1) {
		t.Fatalf("settlement run: %s", run.raw)
	}
	payouts := e.must(http.StatusOK, e.admin("GET", "/v1/payouts?settlement_run="+run.str("id"), nil))
	payout, _ := payouts.body["data"].([]any)
	if len(payout) != 1 || payout[0].(map[string]any)["developer"] != shop.dev {
		t.Fatalf("payouts of the run: %s", payouts.raw)
	}
	payoutID := payout[0].(map[string]any)["id"].(string)
	// The run the matrix creates: a later cutoff (a request later, so
	// another microsecond), already passed when the call is made.
	nextCutoff := time.Now().UTC().Format(time.RFC3339Nano)

	e.topUp("u1", "1000.00", "CNY")
	newSession := func(manual bool) resp {
		b := map[string]any{"amount": "10.00", "currency": "CNY", "option": "goods"}
		if manual {
			b["capture_method"] = "manual"
		}
		return e.session(shop, b)
	}
	toCancel, toConfirm := newSession(false), newSession(false)
	paid := newSession(false)
	e.must(http.StatusOK, e.confirm(paid, "u1"))
	toCapture, toVoid := newSession(true), newSession(true)
	e.must(http.StatusOK, e.confirm(toCapture, "u1"))
	e.must(http.StatusOK, e.confirm(toVoid, "u1"))
	refund := e.must(http.StatusCreated, e.call("POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": paid.str("id"), "amount": "1.00"}))
	// Disputes of shop's payments by their payer u1: one to read, one to
	// answer, one to rule, and a payment to dispute.
	dispute := func() string {
		s := newSession(false)
		e.must(http.StatusOK, e.confirm(s, "u1"))
		return e.must(http.StatusCreated, e.host("POST", "/v1/disputes", map[string]any{"payment": s.str("id"), "user_id": "u1",
			"amount": "2.00", "reason": "not_received"})).str("id")
	}
	disputed, toRespond, toRule := dispute(), dispute(), dispute()
	toDispute := newSession(false)
	e.must(http.StatusOK, e.confirm(toDispute, "u1"))
	acctA, acctB := e.account("authz:a", "CNY", "debit", false), e.account("authz:b", "CNY", "credit", false)
	transfer := func(pending bool) string {
		return e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/transfers", map[string]any{"code": "adjustment", "pending": pending,
			"postings": []any{posting(acctA, "debit", "1.00"), posting(acctB, "credit", "1.00")}})).str("id")
	}
	posted, toPost, toVoidTr := transfer(false), transfer(true), transfer(true)
	twoPostings := []any{posting(acctA, "debit", "1.00"), posting(acctB, "credit", "1.00")}

	// Subscriptions: a plan, one subscription to read, one to sign, one
	// signed to cancel; a test clock to read and one to advance.
	plan := e.must(http.StatusCreated, e.call("POST", "/v1/plans", shop.key, map[string]any{"name": "Club", "amount": "1.00",
		"currency": "CNY", "option": "goods", "interval": "month"}))
	newSub := func() resp {
		return e.must(http.StatusCreated, e.call("POST", "/v1/subscriptions", shop.key, map[string]any{"plan": plan.str("id")}))
	}
	sub, toSign, toCancelSub := newSub(), newSub(), newSub()
	signed := e.must(http.StatusOK, e.host("POST", "/v1/subscriptions/"+toCancelSub.str("id")+"/sign",
		map[string]any{"user_id": "u1", "client_secret": toCancelSub.str("client_secret")}))
	clock := e.must(http.StatusCreated, e.call("POST", "/v1/test_clocks", shop.key, map[string]any{"frozen_time": "2027-01-31T09:00:00Z"}))

	// Deliver shop's checkout events for real, so the attempt log has
	// entries and the event is one a receiver got; then stop, so nothing
	// changes behind the matrix's back.
	event := receiver.deliverAll(t, e)

	// How to call each route so that it succeeds for an accepted key.
	// Every route the router serves must have a case here.
	cases := map[string]authzCase{
		"GET /healthz":      {path: "/healthz"},
		"GET /readyz":       {path: "/readyz"},
		"GET /openapi.yaml": {path: "/openapi.yaml"},

		"POST /v1/ledger/accounts":                {path: "/v1/ledger/accounts", body: map[string]any{"code": "authz:c", "currency": "CNY", "normal_balance": "debit"}},
		"GET /v1/ledger/accounts/{id}":            {path: "/v1/ledger/accounts/" + acctA},
		"GET /v1/ledger/accounts/{id}/entries":    {path: "/v1/ledger/accounts/" + acctA + "/entries"},
		"POST /v1/ledger/transfers":               {path: "/v1/ledger/transfers", body: map[string]any{"code": "adjustment", "postings": twoPostings}},
		"GET /v1/ledger/transfers/{id}":           {path: "/v1/ledger/transfers/" + posted},
		"POST /v1/ledger/transfers/{id}/post":     {path: "/v1/ledger/transfers/" + toPost + "/post", body: map[string]any{}},
		"POST /v1/ledger/transfers/{id}/void":     {path: "/v1/ledger/transfers/" + toVoidTr + "/void", body: map[string]any{}},
		"POST /v1/ledger/transfers/{id}/reverse":  {path: "/v1/ledger/transfers/" + posted + "/reverse", body: map[string]any{}},
		"GET /v1/ledger/trial_balance":            {path: "/v1/ledger/trial_balance"},
		"POST /v1/developers":                     {path: "/v1/developers", body: map[string]any{"name": "new"}},
		"GET /v1/developers/{id}":                 {path: "/v1/developers/" + shop.dev},
		"POST /v1/apps":                           {path: "/v1/apps", body: map[string]any{"developer": shop.dev, "name": "second", "options": []string{"goods"}, "currencies": []string{"CNY"}}},
		"GET /v1/apps/{id}":                       {path: "/v1/apps/" + shop.app},
		"PATCH /v1/apps/{id}":                     {path: "/v1/apps/" + shop.app, body: map[string]any{"name": "shop app"}},
		"POST /v1/apps/{id}/keys/roll":            {path: "/v1/apps/" + rolled.app + "/keys/roll", body: map[string]any{}},
		"GET /v1/monetization_options":            {path: "/v1/monetization_options"},
		"POST /v1/wallets/{user_id}/topups":       {path: "/v1/wallets/u2/topups", body: map[string]any{"amount": "1.00", "currency": "CNY"}},
		"GET /v1/wallets/{user_id}":               {path: "/v1/wallets/u1"},
		"POST /v1/checkout/sessions":              {path: "/v1/checkout/sessions", body: map[string]any{"amount": "1.00", "currency": "CNY", "option": "goods"}},
		"GET /v1/checkout/sessions":               {path: "/v1/checkout/sessions?limit=100", listed: paid.str("id")},
		"GET /v1/checkout/sessions/{id}":          {path: "/v1/checkout/sessions/" + paid.str("id"), owned: true},
		"POST /v1/checkout/sessions/{id}/cancel":  {path: "/v1/checkout/sessions/" + toCancel.str("id") + "/cancel", body: map[string]any{}, owned: true},
		"POST /v1/checkout/sessions/{id}/confirm": {path: "/v1/checkout/sessions/" + toConfirm.str("id") + "/confirm", body: map[string]any{"user_id": "u1", "client_secret": toConfirm.str("client_secret")}},
		"POST /v1/checkout/sessions/{id}/capture": {path: "/v1/checkout/sessions/" + toCapture.str("id") + "/capture", body: map[string]any{}, owned: true},
		"POST /v1/checkout/sessions/{id}/void":    {path: "/v1/checkout/sessions/" + toVoid.str("id") + "/void", body: map[string]any{}, owned: true},
		"POST /v1/refunds":                        {path: "/v1/refunds", body: map[string]any{"checkout_session": paid.str("id"), "amount": "1.00"}, owned: true},
		"GET /v1/refunds/{id}":                    {path: "/v1/refunds/" + refund.str("id"), owned: true},
		"GET /v1/balance":                         {path: "/v1/balance"},
		"POST /v1/disputes": {path: "/v1/disputes", body: map[string]any{"payment": toDispute.str("id"), "user_id": "u1", "reason": "duplicate"},
			status: http.StatusCreated},
		"GET /v1/disputes":               {path: "/v1/disputes?limit=100", listed: disputed},
		"GET /v1/disputes/{id}":          {path: "/v1/disputes/" + disputed, owned: true},
		"POST /v1/disputes/{id}/respond": {path: "/v1/disputes/" + toRespond + "/respond", body: map[string]any{"evidence": map[string]any{"text": "shipped"}}, owned: true},
		"POST /v1/disputes/{id}/close":   {path: "/v1/disputes/" + toRule + "/close", body: map[string]any{"outcome": "won"}},
		"GET /v1/balance_transactions":   {path: "/v1/balance_transactions"},

		"POST /v1/plans":                     {path: "/v1/plans", body: map[string]any{"name": "Yearly", "amount": "9.00", "currency": "CNY", "option": "goods", "interval": "year"}},
		"GET /v1/plans":                      {path: "/v1/plans?limit=100", listed: plan.str("id")},
		"GET /v1/plans/{id}":                 {path: "/v1/plans/" + plan.str("id"), owned: true},
		"POST /v1/subscriptions":             {path: "/v1/subscriptions", body: map[string]any{"plan": plan.str("id")}, owned: true},
		"GET /v1/subscriptions":              {path: "/v1/subscriptions?limit=100", hostPath: "/v1/subscriptions?limit=100&user_id=u1", listed: toCancelSub.str("id")},
		"GET /v1/subscriptions/{id}":         {path: "/v1/subscriptions/" + sub.str("id"), owned: true},
		"POST /v1/subscriptions/{id}/sign":   {path: "/v1/subscriptions/" + toSign.str("id") + "/sign", body: map[string]any{"user_id": "u1", "client_secret": toSign.str("client_secret")}},
		"POST /v1/subscriptions/{id}/cancel": {path: "/v1/subscriptions/" + toCancelSub.str("id") + "/cancel", body: map[string]any{"at_period_end": true}, hostBody: map[string]any{"user_id": "u1"}, owned: true},
		"GET /v1/invoices":                   {path: "/v1/invoices?limit=100", listed: signed.str("latest_invoice")},
		"GET /v1/invoices/{id}":              {path: "/v1/invoices/" + signed.str("latest_invoice"), owned: true},
		"POST /v1/test_clocks":               {path: "/v1/test_clocks", body: map[string]any{"frozen_time": "2027-01-31T09:00:00Z"}},
		"GET /v1/test_clocks/{id}":           {path: "/v1/test_clocks/" + clock.str("id"), owned: true},
		"POST /v1/test_clocks/{id}/advance":  {path: "/v1/test_clocks/" + clock.str("id") + "/advance", body: map[string]any{"frozen_time": "2027-02-28T09:00:00Z"}, owned: true},

		"POST /v1/webhook_endpoints":                    {path: "/v1/webhook_endpoints", body: map[string]any{"url": receiver.srv.URL, "enabled_events": []string{"*"}}},
		"GET /v1/webhook_endpoints":                     {path: "/v1/webhook_endpoints?limit=100", listed: endpoint},
		"GET /v1/webhook_endpoints/{id}":                {path: "/v1/webhook_endpoints/" + endpoint, owned: true},
		"PATCH /v1/webhook_endpoints/{id}":              {path: "/v1/webhook_endpoints/" + endpoint, body: map[string]any{"description": "orders"}, owned: true},
		"DELETE /v1/webhook_endpoints/{id}":             {path: "/v1/webhook_endpoints/" + toDelete, owned: true},
		"POST /v1/webhook_endpoints/{id}/rotate_secret": {path: "/v1/webhook_endpoints/" + endpoint + "/rotate_secret", body: map[string]any{}, owned: true},
		"GET /v1/webhook_endpoints/{id}/attempts":       {path: "/v1/webhook_endpoints/" + endpoint + "/attempts", owned: true},
		"GET /v1/events":                                {path: "/v1/events?limit=100", listed: event},
		"GET /v1/events/{id}":                           {path: "/v1/events/" + event, owned: true},
		"POST /v1/events/{id}/redeliver":                {path: "/v1/events/" + event + "/redeliver", body: map[string]any{}, owned: true},
		"GET /v1/app":                                   {path: "/v1/app"},
		"POST /v1/test_helpers/trigger":                 {path: "/v1/test_helpers/trigger", body: map[string]any{"event_type": "checkout.session.canceled"}},

		"POST /v1/settlement_runs":                {path: "/v1/settlement_runs", body: map[string]any{"cutoff": nextCutoff}, status: http.StatusCreated},
		"GET /v1/settlement_runs":                 {path: "/v1/settlement_runs"},
		"GET /v1/settlement_runs/{id}":            {path: "/v1/settlement_runs/" + run.str("id")},
		"GET /v1/settlement_runs/{id}/report.csv": {path: "/v1/settlement_runs/" + run.str("id") + "/report.csv?detail=true"},
		"GET /v1/payouts":                         {path: "/v1/payouts?limit=100", listed: payoutID},
		"GET /v1/payouts/{id}":                    {path: "/v1/payouts/" + payoutID, owned: true},
		"POST /v1/payouts/{id}/mark_paid":         {path: "/v1/payouts/" + payoutID + "/mark_paid", body: map[string]any{}},
	}

	var routes, undocumented []string
	err := chi.Walk(e.handler.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(strings.ReplaceAll(route, "/*/", "/"), "/")
		op := spec.Paths[route][strings.ToLower(method)]
		if len(op.Keys) == 0 {
			undocumented = append(undocumented, method+" "+route)
		}
		routes = append(routes, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(undocumented)
	for _, r := range undocumented {
		method, path, _ := strings.Cut(r, " ")
		t.Errorf("%s has no x-minipay-keys in docs/openapi.yaml: under paths: %s: %s: add the line\n"+
			"      x-minipay-keys: [admin|host|app|public, …]   (the kinds of key the route accepts)\n"+
			"and add a case for it to TestAuthorizationMatrix in api/authz_test.go (a path to an object of the \"shop\" app and a body that succeeds)",
			r, path, strings.ToLower(method))
	}

	kinds := []struct{ name, key string }{
		{"none", ""}, {"wrong", "sk_wrong_0123456789abcdefghijklmnopqrstuvwxyz"},
		{"other app", other.key}, {"app", shop.key}, {"host", e.hostKey}, {"admin", e.adminKey},
	}
	sort.Strings(routes)
	for _, r := range routes {
		method, route, _ := strings.Cut(r, " ")
		op := spec.Paths[route][strings.ToLower(method)]
		if len(op.Keys) == 0 {
			continue // reported above
		}
		c, known := cases[r]
		if !known {
			t.Errorf("%s has no case in TestAuthorizationMatrix: add one to cases in api/authz_test.go:\n"+
				"\t%q: {path: <the route with its parameters filled in to an object of the \"shop\" app, created above>, "+
				"body: <a body that succeeds for an accepted key, or nil>, owned: <true if the object is shop's, so another app's key gets 404>, "+
				"listed: <for a list route, an id of shop's it lists>, status: <the success status, if not the lowest documented 2xx>}\n"+
				"(only 401 and 403 are checked until then)", r, r)
			c = authzCase{path: fillParams(route)}
			if method != http.MethodGet && method != http.MethodDelete {
				c.body = map[string]any{}
			}
		}
		success := op.success()
		if c.status != 0 {
			success = c.status
		}
		public := slices.Contains(op.Keys, "public")
		if _, documented := op.Responses[strconv.Itoa(success)]; !documented && !public {
			t.Errorf("%s: success status %d is not documented in docs/openapi.yaml", r, success)
		}
		// Refused kinds first: they must change nothing, so the
		// objects are still in the state the accepted call needs.
		slices.SortStableFunc(kinds, func(a, b struct{ name, key string }) int {
			return boolInt(accepts(op.Keys, a.name)) - boolInt(accepts(op.Keys, b.name))
		})
		for _, k := range kinds {
			var want int
			switch {
			case public:
				want = http.StatusOK
			case k.name == "none" || k.name == "wrong":
				want = http.StatusUnauthorized
			case !accepts(op.Keys, k.name):
				want = http.StatusForbidden
			case !known:
				continue // reported above; without a case the call could do anything
			case k.name == "other app" && c.owned:
				want = http.StatusNotFound
			default:
				want = success
			}
			before := e.authzState()
			body, path := c.body, c.path
			if k.name == "host" && c.hostBody != nil {
				body = c.hostBody
			}
			if k.name == "host" && c.hostPath != "" {
				path = c.hostPath
			}
			got := e.call(method, path, k.key, body)
			if got.status != want {
				t.Errorf("%s with %s key: %d, want %d: %s", r, k.name, got.status, want, got.raw)
			}
			if got.status >= 400 {
				if after := e.authzState(); after != before {
					t.Errorf("%s with %s key: %d but the state changed:\n before %s\n after  %s", r, k.name, got.status, before, after)
				}
			}
			if c.listed != "" && got.status == want && want < 300 {
				if in := strings.Contains(string(got.raw), c.listed); in != (k.name != "other app") {
					t.Errorf("%s with %s key: %s listed: %v: %.300s", r, k.name, c.listed, in, got.raw)
				}
			}
		}
	}
	for r := range cases {
		if !slices.Contains(routes, r) {
			t.Errorf("case %s: the router has no such route", r)
		}
	}
	e.mustBalanced()
}

// accepts reports whether a route documented with keys accepts a key of
// the named kind; another app's key is an app key.
func accepts(keys []string, kind string) bool {
	switch kind {
	case "none", "wrong":
		return slices.Contains(keys, "public")
	case "other app":
		return slices.Contains(keys, "app")
	}
	return slices.Contains(keys, kind)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fillParams replaces every {param} of a route with an id no object has.
func fillParams(route string) string {
	parts := strings.Split(route, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") {
			parts[i] = fmt.Sprintf("authz_missing_%d", i)
		}
	}
	return strings.Join(parts, "/")
}

// authzState is what a refused call must leave as it was: the ledger, and
// the rows (with their versions) of every kind of object the routes touch.
func (e *env) authzState() string {
	e.t.Helper()
	var out string
	err := e.db.Pool.QueryRow(context.Background(), `SELECT concat_ws(' ',
		'transfers=' || (SELECT count(*) FROM ledger_transfers),
		'postings=' || (SELECT count(*) FROM ledger_postings),
		'accounts=' || (SELECT count(*) FROM ledger_accounts),
		'developers=' || (SELECT count(*) FROM developers),
		'apps=' || (SELECT count(*) FROM apps),
		'keys=' || (SELECT count(*) FROM api_keys),
		'sessions=' || (SELECT count(*) || '/' || coalesce(sum(version), 0) FROM checkout_sessions),
		'refunds=' || (SELECT count(*) FROM refunds),
		'payments=' || (SELECT count(*) || '/' || coalesce(sum(version), 0) FROM payments),
		'disputes=' || (SELECT count(*) || '/' || coalesce(sum(version), 0) FROM disputes),
		'events=' || (SELECT count(*) FROM events),
		'endpoints=' || (SELECT count(*) || '/' || coalesce(sum(version), 0) FROM webhook_endpoints),
		'deliveries=' || (SELECT count(*) FROM webhook_deliveries),
		'runs=' || (SELECT count(*) || '/' || coalesce(sum(version), 0) FROM settlement_runs),
		'payouts=' || (SELECT count(*) || '/' || coalesce(sum(version), 0) FROM payouts))`).Scan(&out)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// receiver is a real webhook receiver on loopback that counts deliveries
// and remembers the first event id it got.
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	first string
	n     int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rc.mu.Lock()
		if rc.n == 0 {
			rc.first = r.Header.Get("webhook-id")
		}
		rc.n++
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// deliverAll runs the dispatcher until no delivery is pending and the
// receiver got at least one, then stops it; it returns the id of the first
// event the receiver got.
func (rc *receiver) deliverAll(t *testing.T, e *env) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.webhooks.Run(ctx)
	}()
	waitUntil(t, func() bool {
		rc.mu.Lock()
		n := rc.n
		rc.mu.Unlock()
		return n > 0 && e.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`) == 0
	})
	cancel()
	<-done
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !strings.HasPrefix(rc.first, "evt_") {
		t.Fatalf("delivered without an event id: %q", rc.first)
	}
	return rc.first
}
