package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

// consoleCase is how the matrix calls one console route: the path with its
// parameters filled in to an object of the "shop" app, the form that
// succeeds for an accepted kind, the success status, which kinds are
// accepted, and whether another app asking gets 404.
type consoleCase struct {
	path   string
	form   url.Values
	status int
	kinds  []string // "app", "admin"; none for public pages
	owned  bool
	listed string // for a list page: an id of shop's it shows, and another app's view does not
	fresh  bool   // sign in anew for the call (signing out ends the session)
}

// receiver answers webhooks with a status the test sets, counting them.
type receiver struct {
	srv    *httptest.Server
	status atomic.Int32
	n      atomic.Int32
}

func newReceiver(t *testing.T, status int) *receiver {
	rc := &receiver{}
	rc.status.Store(int32(status))
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.n.Add(1)
		w.WriteHeader(int(rc.status.Load()))
		_, _ = w.Write([]byte(`{"received": true}`))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// deliver runs the dispatcher until cond holds.
func (e *env) deliver(cond func() bool) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.srv.Webhooks.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatal("deliveries did not happen in 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// matureAll lets every payment's holding period pass.
func (e *env) matureAll() {
	e.exec(`UPDATE balance_transactions SET available_on = now() - interval '1 hour' WHERE payout_id IS NULL`)
}

// TestConsoleAuthorizationMatrix calls every console route with every way
// in — no session, a forged cookie, the host key (refused at sign-in),
// another app's session, the app's, the admin's — and checks the answer: a page asked for without a session
// goes to the sign-in form and a form is refused (403); a kind the page is
// not for gets 403; another app asking for this app's object gets 404 and
// changes nothing; an accepted kind succeeds. A list shows the app's
// objects to it and not to another app.
func TestConsoleAuthorizationMatrix(t *testing.T) {
	e := newEnv(t)
	rolled := e.tenant("rolled")
	rc := newReceiver(t, http.StatusInternalServerError)
	ep := e.must(http.StatusCreated, e.api("POST", "/v1/webhook_endpoints", e.shop.key,
		map[string]any{"url": rc.srv.URL, "enabled_events": []string{"*"}})).str("id")

	// A payout of shop's developer, from a matured payment.
	e.paid(e.shop, "u0", "50.00")
	e.matureAll()
	run := e.must(http.StatusCreated, e.api("POST", "/v1/settlement_runs", e.admin,
		map[string]any{"cutoff": time.Now().UTC().Format(time.RFC3339Nano)}))
	payouts := e.must(http.StatusOK, e.api("GET", "/v1/payouts?settlement_run="+run.str("id"), e.admin, nil)).body["data"].([]any)
	payout := payouts[0].(map[string]any)["id"].(string)
	paid := e.paid(e.shop, "u1", "20.00")
	e.deliver(func() bool { return rc.n.Load() >= 2 })
	event := e.must(http.StatusOK, e.api("GET", "/v1/events?limit=1", e.shop.key, nil)).body["data"].([]any)[0].(map[string]any)["id"].(string)
	// Two disputes of shop's: one the app answers, one the admin rules.
	answered := e.dispute(e.paid(e.shop, "u2", "30.00"), "u2", "")
	ruled := e.dispute(e.paid(e.shop, "u3", "40.00"), "u3", "")
	plan, sub, _ := e.subscribed(e.shop, "u4", "member-4")

	app, admin := []string{"app"}, []string{"admin"}
	both := []string{"app", "admin"}
	cases := map[string]consoleCase{
		"GET /console/static/{name}": {path: "/console/static/" + assetName(t, e, "console"), status: http.StatusOK},
		"GET /console/login":         {path: "/console/login", status: http.StatusOK},
		"POST /console/logout":       {path: "/console/logout", status: http.StatusSeeOther, kinds: both, fresh: true},
		"GET /console/":              {path: "/console/", status: http.StatusSeeOther, kinds: both},

		"GET /console/payments":                     {path: "/console/payments", status: http.StatusOK, kinds: app, listed: paid},
		"GET /console/payments/{id}":                {path: "/console/payments/" + paid, status: http.StatusOK, kinds: app, owned: true},
		"POST /console/payments/{id}/refunds":       {path: "/console/payments/" + paid + "/refunds", form: url.Values{"amount": {"1.00"}, "idempotency_key": {"matrix-refund"}}, status: http.StatusSeeOther, kinds: app, owned: true},
		"GET /console/webhooks":                     {path: "/console/webhooks", status: http.StatusOK, kinds: app, listed: ep},
		"GET /console/webhooks/{id}":                {path: "/console/webhooks/" + ep, status: http.StatusOK, kinds: app, owned: true},
		"POST /console/webhooks/{id}/rotate_secret": {path: "/console/webhooks/" + ep + "/rotate_secret", status: http.StatusOK, kinds: app, owned: true},
		"POST /console/webhooks/{id}/redeliver":     {path: "/console/webhooks/" + ep + "/redeliver", form: url.Values{"event": {event}}, status: http.StatusSeeOther, kinds: app, owned: true},
		"GET /console/balance":                      {path: "/console/balance", status: http.StatusOK, kinds: app, listed: payout},

		"GET /console/subscriptions":              {path: "/console/subscriptions", status: http.StatusOK, kinds: app, listed: sub},
		"GET /console/subscriptions/{id}":         {path: "/console/subscriptions/" + sub, status: http.StatusOK, kinds: app, owned: true},
		"POST /console/subscriptions/{id}/cancel": {path: "/console/subscriptions/" + sub + "/cancel", form: url.Values{"when": {"period_end"}}, status: http.StatusSeeOther, kinds: app, owned: true},
		"GET /console/plans":                      {path: "/console/plans", status: http.StatusOK, kinds: app, listed: plan},
		"POST /console/plans":                     {path: "/console/plans", form: url.Values{"name": {"Matrix"}, "amount": {"5.00"}, "currency": {"CNY"}, "option": {"goods"}, "interval": {"month"}, "idempotency_key": {"matrix-plan"}}, status: http.StatusSeeOther, kinds: app},

		"GET /console/disputes":               {path: "/console/disputes", status: http.StatusOK, kinds: both, listed: answered},
		"GET /console/disputes/{id}":          {path: "/console/disputes/" + answered, status: http.StatusOK, kinds: both, owned: true},
		"POST /console/disputes/{id}/respond": {path: "/console/disputes/" + answered + "/respond", form: url.Values{"evidence_text": {"shipped with tracking SF123"}}, status: http.StatusSeeOther, kinds: app, owned: true},
		"POST /console/disputes/{id}/close":   {path: "/console/disputes/" + ruled + "/close", form: url.Values{"outcome": {"won"}}, status: http.StatusSeeOther, kinds: admin},

		"GET /console/developers":                      {path: "/console/developers", status: http.StatusOK, kinds: admin},
		"POST /console/developers":                     {path: "/console/developers", form: url.Values{"name": {"new"}, "idempotency_key": {"matrix-dev"}}, status: http.StatusSeeOther, kinds: admin},
		"GET /console/developers/{id}":                 {path: "/console/developers/" + e.shop.dev, status: http.StatusOK, kinds: admin},
		"POST /console/apps":                           {path: "/console/apps", form: url.Values{"developer": {e.shop.dev}, "name": {"second"}, "options": {"goods"}, "currencies": {"CNY"}, "idempotency_key": {"matrix-app"}}, status: http.StatusCreated, kinds: admin},
		"GET /console/apps/{id}":                       {path: "/console/apps/" + e.shop.app, status: http.StatusOK, kinds: admin},
		"POST /console/apps/{id}/roll_key":             {path: "/console/apps/" + rolled.app + "/roll_key", status: http.StatusOK, kinds: admin},
		"POST /console/apps/{id}/grants":               {path: "/console/apps/" + rolled.app + "/grants", form: url.Values{"options": {"goods"}, "currencies": {"CNY"}}, status: http.StatusSeeOther, kinds: admin},
		"GET /console/settlement_runs":                 {path: "/console/settlement_runs", status: http.StatusOK, kinds: admin},
		"POST /console/settlement_runs":                {path: "/console/settlement_runs", form: url.Values{"cutoff": {""}}, status: http.StatusSeeOther, kinds: admin},
		"GET /console/settlement_runs/{id}":            {path: "/console/settlement_runs/" + run.str("id"), status: http.StatusOK, kinds: admin},
		"GET /console/settlement_runs/{id}/report.csv": {path: "/console/settlement_runs/" + run.str("id") + "/report.csv?detail=true", status: http.StatusOK, kinds: admin},
		"GET /console/payouts":                         {path: "/console/payouts", status: http.StatusOK, kinds: admin},
		"POST /console/payouts/{id}/mark_paid":         {path: "/console/payouts/" + payout + "/mark_paid", status: http.StatusSeeOther, kinds: admin},
		"GET /console/ledger":                          {path: "/console/ledger", status: http.StatusOK, kinds: admin},
		"GET /console/webhook_backlog":                 {path: "/console/webhook_backlog", status: http.StatusOK, kinds: admin},
		"POST /console/login":                          {path: "/console/login"}, // public; TestSignIn covers it
	}

	var routes []string
	err := chi.Walk(e.srv.Console.Handler().(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(routes)

	sessions := map[string]*browser{"app": e.signIn(e.shop.key), "admin": e.signIn(e.admin), "other app": e.signIn(e.other.key)}
	forged := e.browser()
	forged.c.Jar.SetCookies(mustURL(e.srv.URL+"/console/"), []*http.Cookie{{Name: "minipay_console", Value: "forged-session-id-0123456789", Path: "/console"}})
	forged.csrf = sessions["admin"].csrf // even with a real token, a forged session is nobody
	// The host key has no console: its sign-in is refused, leaving the
	// browser as signed out as one that never tried.
	host := e.browser()
	if r := host.submit("/console/login", url.Values{"key": {e.host}}); r.status != http.StatusForbidden {
		t.Fatalf("host sign-in: %d", r.status)
	}
	sessions["none"], sessions["forged"], sessions["host"] = e.browser(), forged, host
	kinds := []string{"none", "forged", "host", "other app", "app", "admin"}

	for _, r := range routes {
		c, ok := cases[r]
		if !ok {
			t.Errorf("%s has no case in TestConsoleAuthorizationMatrix: add one (a path to an object of the shop app, the form that succeeds, the kinds it accepts)", r)
			continue
		}
		if r == "POST /console/login" {
			continue
		}
		method, _, _ := strings.Cut(r, " ")
		// Refused kinds first: they must change nothing.
		order := slices.Clone(kinds)
		slices.SortStableFunc(order, func(a, b string) int { return boolInt(accepts(c, a)) - boolInt(accepts(c, b)) })
		for _, k := range order {
			var want int
			switch {
			case len(c.kinds) == 0:
				want = c.status
			case k == "none" || k == "forged" || k == "host":
				want = http.StatusSeeOther
				if method == http.MethodPost {
					want = http.StatusForbidden
				}
			case !accepts(c, k):
				want = http.StatusForbidden
			case k == "other app" && c.owned:
				want = http.StatusNotFound
			default:
				want = c.status
			}
			b := sessions[k]
			if c.fresh && (k == "app" || k == "admin" || k == "other app") {
				b = e.signIn(map[string]string{"app": e.shop.key, "admin": e.admin, "other app": e.other.key}[k])
			}
			before := e.state()
			var got resp
			if method == http.MethodPost {
				form := url.Values{}
				for k, v := range c.form {
					form[k] = v
				}
				got = b.post(c.path, form)
			} else {
				got = b.get(c.path)
			}
			if got.status != want {
				t.Errorf("%s as %s: %d, want %d: %.300s", r, k, got.status, want, got.raw)
			}
			if want == http.StatusSeeOther && (k == "none" || k == "forged" || k == "host") && !strings.HasPrefix(got.header.Get("Location"), "/console/login?next=") {
				t.Errorf("%s as %s: sent to %q, not the sign-in form", r, k, got.header.Get("Location"))
			}
			if got.status >= 300 && got.status != http.StatusSeeOther {
				if after := e.state(); after != before {
					t.Errorf("%s as %s: %d but the state changed:\n before %s\n after  %s", r, k, got.status, before, after)
				}
			}
			if c.listed != "" && got.status == http.StatusOK {
				if in := strings.Contains(got.raw, c.listed); in != (k != "other app") {
					t.Errorf("%s as %s: %s shown: %v", r, k, c.listed, in)
				}
			}
		}
	}
	for r := range cases {
		if !slices.Contains(routes, r) {
			t.Errorf("case %s: the console has no such route", r)
		}
	}
}

func accepts(c consoleCase, kind string) bool {
	if kind == "other app" {
		kind = "app"
	}
	return slices.Contains(c.kinds, kind)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// assetName is the hashed name the console serves an asset under, as its
// pages link it.
func assetName(t *testing.T, e *env, prefix string) string {
	t.Helper()
	page := e.browser().get("/console/login")
	i := strings.Index(page.raw, "/console/static/"+prefix+".")
	if i < 0 {
		t.Fatalf("the sign-in page links no %s asset", prefix)
	}
	name := page.raw[i+len("/console/static/"):]
	return name[:strings.IndexByte(name, '"')]
}

// state is what a refused call must leave as it was.
func (e *env) state() string {
	e.t.Helper()
	var out string
	err := e.db.Pool.QueryRow(context.Background(), `SELECT concat_ws(' ',
		'transfers=' || (SELECT count(*) FROM ledger_transfers),
		'developers=' || (SELECT count(*) FROM developers),
		'apps=' || (SELECT count(*) FROM apps),
		'keys=' || (SELECT count(*) || '/' || count(expires_at) FROM api_keys),
		'sessions=' || (SELECT count(*) || '/' || coalesce(sum(version), 0) FROM checkout_sessions),
		'refunds=' || (SELECT count(*) FROM refunds),
		'events=' || (SELECT count(*) FROM events),
		'endpoints=' || (SELECT count(*) || '/' || coalesce(sum(version), 0) FROM webhook_endpoints),
		'deliveries=' || (SELECT count(*) FROM webhook_deliveries),
		'runs=' || (SELECT count(*) || '/' || coalesce(sum(version), 0) FROM settlement_runs),
		'payouts=' || (SELECT count(*) || '/' || coalesce(sum(version), 0) FROM payouts),
		'disputes=' || (SELECT count(*) || '/' || coalesce(sum(version), 0) FROM disputes),
		'plans=' || (SELECT count(*) FROM subscription_plans),
		'subscriptions=' || (SELECT count(*) || '/' || coalesce(sum(version), 0) FROM subscriptions),
		'invoices=' || (SELECT count(*) || '/' || coalesce(sum(version), 0) FROM subscription_invoices))`).Scan(&out)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}
