package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minipay/minipay/api/apitest"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/internal/testdb"
)

// env is the API and the console over a real database, reached over real
// HTTP, as serve answers them.
type env struct {
	t           *testing.T
	db          *testdb.DB
	srv         *apitest.Server
	admin, host string
	shop, other tenant
}

// tenant is a developer with one app and its secret key.
type tenant struct{ dev, app, key string }

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, db: testdb.New(t), admin: "admin_console_test_key", host: "host_console_test_key"}
	e.srv = apitest.Start(t, e.db.Pool, apitest.Options{Keys: map[apps.KeyKind]string{apps.KindAdmin: e.admin, apps.KindHost: e.host}})
	e.shop = e.tenant("shop")
	e.other = e.tenant("other")
	return e
}

// resp is an answer: status, headers and body (decoded when JSON).
type resp struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (r resp) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// api calls the API with key.
func (e *env) api(method, path, key string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.do(http.DefaultClient, req)
}

func (e *env) do(c *http.Client, req *http.Request) resp {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := c.Do(req.WithContext(ctx))
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (e *env) must(want int, r resp) resp {
	e.t.Helper()
	if r.status != want {
		e.t.Fatalf("status %d, want %d: %.2000s", r.status, want, r.raw)
	}
	return r
}

func (e *env) tenant(name string) tenant {
	e.t.Helper()
	dev := e.must(http.StatusCreated, e.api("POST", "/v1/developers", e.admin, map[string]any{"name": name}))
	app := e.must(http.StatusCreated, e.api("POST", "/v1/apps", e.admin, map[string]any{
		"developer": dev.str("id"), "name": name + " app", "options": []string{"goods", "tip"}, "currencies": []string{"CNY", "USD"}}))
	return tenant{dev: dev.str("id"), app: app.str("id"), key: app.str("secret_key")}
}

// paid creates a session of tn for amount and pays it from a funded wallet.
func (e *env) paid(tn tenant, user, amount string) string {
	e.t.Helper()
	e.must(http.StatusOK, e.api("POST", "/v1/wallets/"+user+"/topups", e.host, map[string]any{"amount": amount, "currency": "CNY"}))
	sess := e.must(http.StatusCreated, e.api("POST", "/v1/checkout/sessions", tn.key,
		map[string]any{"amount": amount, "currency": "CNY", "option": "goods", "client_reference_id": "order-" + user}))
	e.must(http.StatusOK, e.api("POST", "/v1/checkout/sessions/"+sess.str("id")+"/confirm", e.host,
		map[string]any{"user_id": user, "client_secret": sess.str("client_secret")}))
	return sess.str("id")
}

// dispute opens a dispute of payment for its payer user, as the host
// does (amount "": all that is left), and returns its id.
func (e *env) dispute(payment, user, amount string) string {
	e.t.Helper()
	body := map[string]any{"payment": payment, "user_id": user, "reason": "not_received",
		"description": "The parcel never arrived."}
	if amount != "" {
		body["amount"] = amount
	}
	return e.must(http.StatusCreated, e.api("POST", "/v1/disputes", e.host, body)).str("id")
}

// exec runs SQL the test needs to set a scene (time passing); the code
// under test writes none.
func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Pool.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// browser is a person's browser: it keeps cookies and does not follow
// redirects, so tests see them.
type browser struct {
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn signs in with key through the form, as a person does, and
// remembers the session's CSRF token from the first page.
func (e *env) signIn(key string) *browser {
	e.t.Helper()
	b := e.browser()
	r := b.submit("/console/login", url.Values{"key": {key}})
	if r.status != http.StatusSeeOther {
		e.t.Fatalf("sign in: %d %.500s", r.status, r.raw)
	}
	home := b.get(r.header.Get("Location"))
	page := b.get(home.header.Get("Location"))
	m := csrfField.FindStringSubmatch(page.raw)
	if page.status != http.StatusOK || m == nil {
		e.t.Fatalf("after sign-in: %d %.500s", page.status, page.raw)
	}
	b.csrf = m[1]
	return b
}

func (b *browser) get(path string) resp {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	return b.e.do(b.c, req)
}

// post sends a form with the session's CSRF token.
func (b *browser) post(path string, form url.Values) resp {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf_token"]; !ok && b.csrf != "" {
		form.Set("csrf_token", b.csrf)
	}
	return b.postRaw(path, form)
}

func (b *browser) postRaw(path string, form url.Values) resp {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.e.do(b.c, req)
}

// submit fills the form at path (GET it for its CSRF token, as a browser
// shows it) and posts it there.
func (b *browser) submit(path string, form url.Values) resp {
	b.e.t.Helper()
	page := b.get(path)
	m := csrfField.FindStringSubmatch(page.raw)
	if m == nil {
		b.e.t.Fatalf("no form at %s: %d %.500s", path, page.status, page.raw)
	}
	form.Set("csrf_token", m[1])
	return b.postRaw(path, form)
}

func (b *browser) must(want int, r resp) resp {
	b.e.t.Helper()
	return b.e.must(want, r)
}

// has fails unless page contains every text.
func has(t *testing.T, page resp, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if !strings.Contains(page.raw, s) {
			t.Errorf("page lacks %q: %.3000s", s, page.raw)
		}
	}
}
