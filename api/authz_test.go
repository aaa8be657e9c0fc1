package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

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
}

// TestAuthorizationMatrix sends every route the router serves with every
// kind of key — none, a wrong one, another app's sk_, the app's sk_, the
// host key, the admin key — and checks the status the documentation
// promises: x-minipay-keys in docs/openapi.yaml lists the kinds a route
// accepts; without a key or with an unknown one it is 401; a key of another
// kind gets 403; another app's key asking for this app's object gets 404;
// an accepted key gets the operation's documented success.
func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t)
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
	acctA, acctB := e.account("authz:a", "CNY", "debit", false), e.account("authz:b", "CNY", "credit", false)
	transfer := func(pending bool) string {
		return e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/transfers", map[string]any{"code": "adjustment", "pending": pending,
			"postings": []any{posting(acctA, "debit", "1.00"), posting(acctB, "credit", "1.00")}})).str("id")
	}
	posted, toPost, toVoidTr := transfer(false), transfer(true), transfer(true)
	twoPostings := []any{posting(acctA, "debit", "1.00"), posting(acctB, "credit", "1.00")}

	// How to call each route so that it succeeds for an accepted key.
	// A route missing here is still checked for 401 and 403 and that the
	// accepted key gets a status its operation documents.
	cases := map[string]authzCase{
		"GET /healthz":      {path: "/healthz"},
		"GET /readyz":       {path: "/readyz"},
		"GET /metrics":      {path: "/metrics"},
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
		"POST /v1/apps/{id}/keys/roll":            {path: "/v1/apps/" + rolled.app + "/keys/roll", body: map[string]any{}},
		"GET /v1/monetization_options":            {path: "/v1/monetization_options"},
		"POST /v1/wallets/{user_id}/topups":       {path: "/v1/wallets/u2/topups", body: map[string]any{"amount": "1.00", "currency": "CNY"}},
		"GET /v1/wallets/{user_id}":               {path: "/v1/wallets/u1"},
		"POST /v1/checkout/sessions":              {path: "/v1/checkout/sessions", body: map[string]any{"amount": "1.00", "currency": "CNY", "option": "goods"}},
		"GET /v1/checkout/sessions":               {path: "/v1/checkout/sessions"},
		"GET /v1/checkout/sessions/{id}":          {path: "/v1/checkout/sessions/" + paid.str("id"), owned: true},
		"POST /v1/checkout/sessions/{id}/cancel":  {path: "/v1/checkout/sessions/" + toCancel.str("id") + "/cancel", body: map[string]any{}, owned: true},
		"POST /v1/checkout/sessions/{id}/confirm": {path: "/v1/checkout/sessions/" + toConfirm.str("id") + "/confirm", body: map[string]any{"user_id": "u1", "client_secret": toConfirm.str("client_secret")}},
		"POST /v1/checkout/sessions/{id}/capture": {path: "/v1/checkout/sessions/" + toCapture.str("id") + "/capture", body: map[string]any{}, owned: true},
		"POST /v1/checkout/sessions/{id}/void":    {path: "/v1/checkout/sessions/" + toVoid.str("id") + "/void", body: map[string]any{}, owned: true},
		"POST /v1/refunds":                        {path: "/v1/refunds", body: map[string]any{"checkout_session": paid.str("id"), "amount": "1.00"}, owned: true},
		"GET /v1/refunds/{id}":                    {path: "/v1/refunds/" + refund.str("id"), owned: true},
		"GET /v1/balance":                         {path: "/v1/balance"},
		"GET /v1/balance_transactions":            {path: "/v1/balance_transactions"},
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
			t.Logf("%s: no case in TestAuthorizationMatrix; checking only that the accepted keys get a documented status", r)
			c = authzCase{path: fillParams(route)}
			if method != http.MethodGet && method != http.MethodDelete {
				c.body = map[string]any{}
			}
		}
		public := slices.Contains(op.Keys, "public")
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
			case k.name == "other app" && c.owned:
				want = http.StatusNotFound
			case !known:
				want = -1 // any documented status but 401 and 403
			default:
				want = op.success()
			}
			before := e.ledgerCounts()
			got := e.call(method, c.path, k.key, c.body)
			switch {
			case want == -1:
				if _, documented := op.Responses[strconv.Itoa(got.status)]; !documented || got.status == 401 || got.status == 403 {
					t.Errorf("%s with %s key: %d, not a documented status: %s", r, k.name, got.status, got.raw)
				}
			case got.status != want:
				t.Errorf("%s with %s key: %d, want %d: %s", r, k.name, got.status, want, got.raw)
			}
			if got.status >= 400 && e.ledgerCounts() != before {
				t.Errorf("%s with %s key: %d but the ledger changed", r, k.name, got.status)
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
