package console_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestRootRedirectsToConsole(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := b.get("/")
	if r.status != http.StatusFound || r.header.Get("Location") != "/console/" {
		t.Fatalf("/: %d %q", r.status, r.header.Get("Location"))
	}
	r = b.get("/console/")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/console/login") {
		t.Fatalf("/console/ signed out: %d %q", r.status, r.header.Get("Location"))
	}
	// The API still answers JSON beside it.
	if r := e.api("GET", "/v1/nothing", e.admin, nil); r.status != http.StatusNotFound || r.body["error"] == nil {
		t.Fatalf("API 404: %d %s", r.status, r.raw)
	}
}

func TestSignIn(t *testing.T) {
	e := newEnv(t)

	// Each kind lands on its own first page, with a session cookie.
	for _, c := range []struct{ key, home string }{{e.shop.key, "/console/payments"}, {e.admin, "/console/settlement_runs"}} {
		b := e.browser()
		r := b.submit("/console/login", url.Values{"key": {c.key}})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/" {
			t.Fatalf("sign in: %d %q %s", r.status, r.header.Get("Location"), r.raw)
		}
		if got := b.get("/console/").header.Get("Location"); got != c.home {
			t.Errorf("home of %.6s…: %q, want %q", c.key, got, c.home)
		}
		b.must(http.StatusOK, b.get(c.home))
	}

	// A wrong key is told only that it is wrong, whatever it looks like:
	// the page is the same for each, and names no kind of key.
	var pages []string
	for _, key := range []string{"sk_wrong0123456789", "admin_wrong", "host_wrong", "nonsense", ""} {
		b := e.browser()
		r := b.submit("/console/login", url.Values{"key": {key}})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("wrong key %q: %d", key, r.status)
		}
		has(t, r, "That key is not valid.")
		pages = append(pages, csrfField.ReplaceAllString(r.raw, ""))
		if c := r.header.Get("Set-Cookie"); strings.Contains(c, "minipay_console=") {
			t.Errorf("wrong key %q got a session cookie: %s", key, c)
		}
	}
	for i, p := range pages {
		if p != pages[0] {
			t.Errorf("the page for wrong key %d differs from the first", i)
		}
		for _, word := range []string{"admin", "host", "sk_", "secret key"} {
			if strings.Contains(strings.ToLower(p), word) {
				t.Errorf("the wrong-key page names %q", word)
			}
		}
	}

	// The host key is valid but has no console.
	r := e.browser().submit("/console/login", url.Values{"key": {e.host}})
	if r.status != http.StatusForbidden {
		t.Fatalf("host key: %d %s", r.status, r.raw)
	}
	has(t, r, "cannot sign in to the console")
	if n := e.count(`SELECT count(*) FROM console_sessions`); n != 2 {
		t.Errorf("%d sessions, want the 2 signed in above", n)
	}

	// The sign-in form needs its CSRF token, matching its cookie.
	b := e.browser()
	b.get("/console/login")
	if r := b.postRaw("/console/login", url.Values{"key": {e.admin}}); r.status != http.StatusForbidden {
		t.Errorf("sign-in without csrf_token: %d", r.status)
	}
	if r := b.postRaw("/console/login", url.Values{"key": {e.admin}, "csrf_token": {"forged"}}); r.status != http.StatusForbidden {
		t.Errorf("sign-in with a forged csrf_token: %d", r.status)
	}
	if r := e.browser().postRaw("/console/login", url.Values{"key": {e.admin}, "csrf_token": {"x"}}); r.status != http.StatusForbidden {
		t.Errorf("sign-in without the login cookie: %d", r.status)
	}

	// After sign-in the person goes where they were going, if that is a
	// console page; anything else goes home. (A new server: this one's
	// sign-in attempts are spent.)
	e = newEnv(t)
	for next, want := range map[string]string{
		"/console/developers?limit=5": "/console/developers?limit=5",
		"//evil.example/console/":     "/console/",
		"https://evil.example/":       "/console/",
		"/console/logout":             "/console/",
	} {
		b := e.browser()
		r := b.submit("/console/login?next="+url.QueryEscape(next), url.Values{"key": {e.admin}, "next": {next}})
		if r.header.Get("Location") != want {
			t.Errorf("next=%q: went to %q, want %q", next, r.header.Get("Location"), want)
		}
	}
}

// TestCookieFlags checks the session cookie: HttpOnly, SameSite=Strict,
// scoped to /console, and Secure exactly when the browser's connection is
// TLS (here, or at a trusted proxy).
func TestCookieFlags(t *testing.T) {
	e := newEnv(t)
	h := e.srv.Console.Handler()
	signIn := func(tlsHere bool, proto string, trust bool) *http.Cookie {
		t.Helper()
		e.srv.Console.TrustProxy = trust
		defer func() { e.srv.Console.TrustProxy = false }()
		get := httptest.NewRequest("GET", "/console/login", nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, get)
		login := w.Result().Cookies()[0]
		token := csrfField.FindStringSubmatch(w.Body.String())[1]
		post := httptest.NewRequest("POST", "/console/login", strings.NewReader(url.Values{"key": {e.admin}, "csrf_token": {token}}.Encode()))
		post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		post.AddCookie(login)
		if tlsHere {
			post.TLS = &tls.ConnectionState{}
		}
		if proto != "" {
			post.Header.Set("X-Forwarded-Proto", proto)
		}
		w = httptest.NewRecorder()
		h.ServeHTTP(w, post)
		for _, c := range w.Result().Cookies() {
			if c.Name == "minipay_console" {
				return c
			}
		}
		t.Fatalf("no session cookie: %d %s", w.Code, w.Body)
		return nil
	}
	for _, c := range []struct {
		name          string
		tlsHere       bool
		proto         string
		trust, secure bool
	}{
		{"plain http", false, "", false, false},
		{"TLS here", true, "", false, true},
		{"https at an untrusted proxy", false, "https", false, false},
		{"https at a trusted proxy", false, "https", true, true},
		{"http at a trusted proxy", false, "http", true, false},
	} {
		ck := signIn(c.tlsHere, c.proto, c.trust)
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console" || ck.Secure != c.secure || len(ck.Value) < 40 {
			t.Errorf("%s: cookie %+v, want HttpOnly, SameSite=Strict, Path=/console, Secure=%v", c.name, ck, c.secure)
		}
	}
	// The database keeps only a hash of the session id.
	if n := e.count(`SELECT count(*) FROM console_sessions WHERE length(hash) = 32`); n != 5 {
		t.Errorf("%d hashed sessions, want 5", n)
	}
}

// altered is token with its last character changed (never to itself).
func altered(token string) string {
	last := "A"
	if strings.HasSuffix(token, "A") {
		last = "B"
	}
	return token[:len(token)-1] + last
}

func TestCSRFRefused(t *testing.T) {
	e := newEnv(t)
	b := e.signIn(e.admin)
	devs := func() int { return e.count(`SELECT count(*) FROM developers`) }
	before := devs()
	for name, form := range map[string]url.Values{
		"no token":           {"name": {"x"}, "csrf_token": nil},
		"empty token":        {"name": {"x"}, "csrf_token": {""}},
		"another's token":    {"name": {"x"}, "csrf_token": {e.signIn(e.admin).csrf}},
		"the token, altered": {"name": {"x"}, "csrf_token": {altered(b.csrf)}},
	} {
		if form["csrf_token"] == nil {
			delete(form, "csrf_token")
			r := b.postRaw("/console/developers", form)
			if r.status != http.StatusForbidden {
				t.Errorf("%s: %d", name, r.status)
			}
			continue
		}
		if r := b.postRaw("/console/developers", form); r.status != http.StatusForbidden {
			t.Errorf("%s: %d", name, r.status)
		}
	}
	if devs() != before {
		t.Fatalf("a refused form created a developer")
	}
	b.must(http.StatusSeeOther, b.post("/console/developers", url.Values{"name": {"x"}, "idempotency_key": {"k1"}}))
	if devs() != before+1 {
		t.Fatalf("the form with its token created nothing")
	}
	// Every form on every page carries the token.
	for _, path := range []string{"/console/developers", "/console/developers/" + e.shop.dev, "/console/settlement_runs", "/console/apps/" + e.shop.app} {
		page := b.must(http.StatusOK, b.get(path))
		forms := strings.Count(page.raw, `method="post"`)
		if tokens := strings.Count(page.raw, `name="csrf_token" value="`+b.csrf+`"`); forms == 0 || tokens != forms {
			t.Errorf("%s: %d post forms, %d with the token", path, forms, tokens)
		}
	}
}

func TestIdleExpiry(t *testing.T) {
	e := newEnv(t)
	b := e.signIn(e.shop.key)
	// Nearly 12 hours idle: still signed in, and the request counts as activity.
	e.exec(`UPDATE console_sessions SET last_seen_at = now() - interval '11 hours 59 minutes'`)
	b.must(http.StatusOK, b.get("/console/payments"))
	if n := e.count(`SELECT count(*) FROM console_sessions WHERE last_seen_at > now() - interval '1 minute'`); n != 1 {
		t.Fatalf("the request did not count as activity")
	}
	// 12 hours idle: signed out; pages send to the sign-in form, forms are refused.
	e.exec(`UPDATE console_sessions SET last_seen_at = now() - interval '12 hours 1 second'`)
	r := b.get("/console/payments?status=complete")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/login?next="+url.QueryEscape("/console/payments?status=complete") {
		t.Fatalf("idle session: %d %q", r.status, r.header.Get("Location"))
	}
	if r := b.post("/console/webhooks/we_x/rotate_secret", nil); r.status != http.StatusForbidden {
		t.Fatalf("idle session posting: %d", r.status)
	}
	if n, err := e.srv.Apps.PurgeConsoleSessions(t.Context(), 100); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	// A key that stops working ends its sessions at once.
	b = e.signIn(e.shop.key)
	e.exec(`UPDATE api_keys SET expires_at = now() WHERE app_id = $1`, e.shop.app)
	if r := b.get("/console/payments"); r.status != http.StatusSeeOther {
		t.Fatalf("session of an expired key: %d", r.status)
	}
}

func TestSignOut(t *testing.T) {
	e := newEnv(t)
	b := e.signIn(e.admin)
	var session string
	for _, c := range b.c.Jar.Cookies(mustURL(e.srv.URL + "/console/")) {
		if c.Name == "minipay_console" {
			session = c.Value
		}
	}
	if r := b.postRaw("/console/logout", nil); r.status != http.StatusForbidden {
		t.Fatalf("sign-out without the token: %d", r.status)
	}
	r := b.must(http.StatusSeeOther, b.post("/console/logout", nil))
	if r.header.Get("Location") != "/console/login" || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign-out: %q %q", r.header.Get("Location"), r.header.Get("Set-Cookie"))
	}
	if n := e.count(`SELECT count(*) FROM console_sessions`); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	// The old cookie, replayed, signs nobody in.
	replay := e.browser()
	replay.c.Jar.SetCookies(mustURL(e.srv.URL+"/console/"), []*http.Cookie{{Name: "minipay_console", Value: session, Path: "/console"}})
	if r := replay.get("/console/settlement_runs"); r.status != http.StatusSeeOther {
		t.Fatalf("replayed cookie: %d", r.status)
	}
}

func TestSignInRateLimited(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	var limited resp
	for i := 0; i < 12; i++ {
		r := b.submit("/console/login", url.Values{"key": {"wrong"}})
		if r.status == http.StatusTooManyRequests {
			limited = r
			break
		}
		if r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, r.status)
		}
	}
	if limited.status != http.StatusTooManyRequests || limited.header.Get("Retry-After") == "" {
		t.Fatalf("no 429 with Retry-After after 12 attempts: %d", limited.status)
	}
	// The right key is refused too until the bucket refills.
	if r := b.submit("/console/login", url.Values{"key": {e.admin}}); r.status != http.StatusTooManyRequests {
		t.Fatalf("right key while limited: %d", r.status)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
