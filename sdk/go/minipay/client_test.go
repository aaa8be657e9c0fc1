package minipay_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minipay/minipay/sdk/go/minipay"
)

func TestCheckoutRefundBalance(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	c := s.client
	sess, err := c.CreateSession(ctx, minipay.SessionParams{
		LineItems: []minipay.LineItem{{Name: "Gem pack", UnitAmount: "19.99", Quantity: 2}},
		Currency:  "CNY", Option: "virtual_goods", ClientReferenceID: "order-1", Metadata: map[string]string{"player": "p-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sess.Status != "open" || sess.AmountTotal != "39.98" || !strings.HasPrefix(sess.ClientSecret, "cs_") && sess.ClientSecret == "" {
		t.Fatalf("session %+v", sess)
	}
	s.raw("POST", "/v1/wallets/usr_1/topups", hostKey, `{"amount": "100.00", "currency": "CNY"}`, 200)
	s.raw("POST", "/v1/checkout/sessions/"+sess.ID+"/confirm", hostKey, `{"user_id": "usr_1", "client_secret": "`+sess.ClientSecret+`"}`, 200)

	got, err := c.GetSession(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "complete" || got.PaymentStatus != "paid" || got.Fee == nil || *got.Fee != "11.99" ||
		got.Customer == nil || !strings.HasPrefix(*got.Customer, "ou_") || got.Metadata["player"] != "p-1" {
		t.Fatalf("paid session %+v", got)
	}
	list, err := c.ListSessions(ctx, minipay.SessionListParams{Status: "complete", ListParams: minipay.ListParams{Limit: 5}})
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != sess.ID || list.HasMore {
		t.Fatalf("list %+v %v", list, err)
	}
	ref, err := c.CreateRefund(ctx, minipay.RefundParams{CheckoutSession: sess.ID, Amount: "19.99", Reason: "requested_by_customer"})
	if err != nil {
		t.Fatal(err)
	}
	if ref.Amount != "19.99" || ref.FeeRefunded != "6.00" || ref.Status != "succeeded" {
		t.Fatalf("refund %+v", ref)
	}
	if r2, err := c.GetRefund(ctx, ref.ID); err != nil || r2.ID != ref.ID {
		t.Fatalf("get refund %+v %v", r2, err)
	}
	bal, err := c.GetBalance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(bal.Pending) != 1 || bal.Pending[0] != (minipay.Money{Currency: "CNY", Amount: "14.00"}) {
		t.Fatalf("balance %+v", bal) // (39.98 - 11.99) - (19.99 - 6.00)
	}
	// The rest of the payment, then nothing is left to refund.
	if _, err := c.CreateRefund(ctx, minipay.RefundParams{CheckoutSession: sess.ID}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateRefund(ctx, minipay.RefundParams{CheckoutSession: sess.ID, Amount: "0.01"})
	var apiErr *minipay.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != "charge_already_refunded" || !strings.HasPrefix(apiErr.RequestID, "req_") {
		t.Fatalf("refund of a refunded session: %#v", err)
	}

	open, err := c.CreateSession(ctx, minipay.SessionParams{Amount: "5.00", Currency: "CNY", Option: "tip"})
	if err != nil {
		t.Fatal(err)
	}
	if canceled, err := c.CancelSession(ctx, open.ID); err != nil || canceled.Status != "canceled" {
		t.Fatalf("cancel %+v %v", canceled, err)
	}
}

func TestTypedErrors(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	before := s.sessions()
	_, err := s.client.CreateSession(ctx, minipay.SessionParams{Amount: "1.001", Currency: "CNY", Option: "goods"})
	var e *minipay.Error
	if !errors.As(err, &e) || e.Status != 400 || e.Type != "invalid_request_error" || e.Code != "amount_precision" || e.Param != "amount" || e.RequestID == "" {
		t.Fatalf("bad amount: %#v", err)
	}
	if _, err := s.client.GetSession(ctx, "cs_nope"); minipay.ErrorCode(err) != "session_not_found" {
		t.Fatalf("unknown session: %v", err)
	}
	bad := minipay.New("sk_wrong", minipay.WithBaseURL(s.url))
	if _, err := bad.GetBalance(ctx); !errors.As(err, &e) || e.Status != 401 || e.Type != "authentication_error" {
		t.Fatalf("wrong key: %#v", err)
	}
	if after := s.sessions(); after != before {
		t.Fatalf("sessions %d → %d after failed calls", before, after)
	}
}

// flaky is a real proxy in front of the API that misbehaves on chosen
// requests, and records the Idempotency-Key of every request it sees.
type flaky struct {
	mu    sync.Mutex
	n     int
	keys  []string
	fault func(n int, w http.ResponseWriter, r *http.Request, forward func()) bool
}

func newFlaky(t *testing.T, target string, fault func(n int, w http.ResponseWriter, r *http.Request, forward func()) bool) (*flaky, string) {
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	f := &flaky{fault: fault}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.n++
		n := f.n
		f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
		f.mu.Unlock()
		if !f.fault(n, w, r, func() { proxy.ServeHTTP(httptest.NewRecorder(), r) }) {
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// TestRetryAfterLostResponse: the first request reaches the server and
// creates the session, but the connection drops before the answer arrives.
// The retry carries the same Idempotency-Key, so the server replays the
// first result: one session, not two.
func TestRetryAfterLostResponse(t *testing.T) {
	s := newServer(t)
	f, proxyURL := newFlaky(t, s.url, func(n int, w http.ResponseWriter, r *http.Request, forward func()) bool {
		if n > 1 {
			return false
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		forward()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	})
	c := minipay.New(s.sk, minipay.WithBaseURL(proxyURL), minipay.WithBackoff(10*time.Millisecond, time.Second))
	sess, err := c.CreateSession(context.Background(), minipay.SessionParams{Amount: "12.34", Currency: "CNY", Option: "goods"})
	if err != nil {
		t.Fatal(err)
	}
	if n := s.sessions(); n != 1 {
		t.Fatalf("%d sessions after a retried create, want 1", n)
	}
	if len(f.keys) != 2 || f.keys[0] == "" || f.keys[0] != f.keys[1] {
		t.Fatalf("idempotency keys across the retry: %q", f.keys)
	}
	if got, err := c.GetSession(context.Background(), sess.ID); err != nil || got.AmountTotal != "12.34" {
		t.Fatalf("get %+v %v", got, err)
	}
	// The next logical call gets a key of its own.
	if _, err := c.CreateSession(context.Background(), minipay.SessionParams{Amount: "1.00", Currency: "CNY", Option: "goods"}); err != nil {
		t.Fatal(err)
	}
	if f.keys[3] == f.keys[0] || s.sessions() != 2 {
		t.Fatalf("second call: keys %q", f.keys)
	}
}

// TestRetryOn5xxAndGiveUp: 503s are retried with the same key until the
// retry budget runs out; a caller-chosen key is the one sent.
func TestRetryOn5xxAndGiveUp(t *testing.T) {
	s := newServer(t)
	fail := 2
	f, proxyURL := newFlaky(t, s.url, func(n int, w http.ResponseWriter, r *http.Request, forward func()) bool {
		if n > fail {
			return false
		}
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error": {"type": "api_error", "code": "shutting_down", "message": "draining", "request_id": "req_x"}}`))
		return true
	})
	c := minipay.New(s.sk, minipay.WithBaseURL(proxyURL), minipay.WithMaxRetries(2), minipay.WithBackoff(time.Millisecond, 50*time.Millisecond))
	if _, err := c.CreateSession(context.Background(), minipay.SessionParams{Amount: "2.00", Currency: "CNY", Option: "goods", IdempotencyKey: "order-77"}); err != nil {
		t.Fatal(err)
	}
	if len(f.keys) != 3 || f.keys[0] != "order-77" || f.keys[2] != "order-77" {
		t.Fatalf("keys %q", f.keys)
	}
	fail = 100
	_, err := c.CreateSession(context.Background(), minipay.SessionParams{Amount: "2.00", Currency: "CNY", Option: "goods"})
	var e *minipay.Error
	if !errors.As(err, &e) || e.Status != 503 || e.Code != "shutting_down" || e.RequestID != "req_x" {
		t.Fatalf("after the retry budget: %#v", err)
	}
	if len(f.keys) != 6 {
		t.Fatalf("%d requests, want 3 + 3", len(f.keys))
	}
	if n := s.sessions(); n != 1 {
		t.Fatalf("%d sessions", n)
	}
}

// TestRetryHonorsRateLimit: the server's own rate limiter answers 429 with
// Retry-After; the client waits and gets through.
func TestRetryHonorsRateLimit(t *testing.T) {
	s := newServer(t, "MINIPAY_RATE_LIMIT=2") // 2 requests per second per key, bursts of 4
	c := minipay.New(s.sk, minipay.WithBaseURL(s.url), minipay.WithMaxRetries(5), minipay.WithBackoff(10*time.Millisecond, 3*time.Second))
	for i := range 8 {
		if _, err := c.GetBalance(context.Background()); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	noRetry := minipay.New(s.sk, minipay.WithBaseURL(s.url), minipay.WithMaxRetries(0))
	var limited bool
	for range 10 {
		if minipay.ErrorCode(func() error { _, err := noRetry.GetBalance(context.Background()); return err }()) == "rate_limited" {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("the server never rate limited: the test exercises nothing")
	}
}

func TestContextCancelStopsRetrying(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 2 {
			cancel() // during the first retry
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	c := minipay.New("sk_x", minipay.WithBaseURL(srv.URL), minipay.WithMaxRetries(100), minipay.WithBackoff(time.Millisecond, time.Millisecond))
	_, err := c.GetBalance(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("%d requests after the context ended, want 2", n)
	}
}

// TestHostClient: the host funds a wallet (once, however often the top-up
// is retried), confirms a session for the signed-in user, and reads the
// wallet after.
func TestHostClient(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	host := minipay.NewHost(hostKey, minipay.WithBaseURL(s.url))
	sess, err := s.client.CreateSession(ctx, minipay.SessionParams{Amount: "7.00", Currency: "CNY", Option: "goods"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		w, err := host.TopUp(ctx, "usr_host_go", minipay.TopUpParams{Amount: "10.00", Currency: "CNY", IdempotencyKey: "bank-ref-1"})
		if err != nil || len(w.Balances) != 1 || w.Balances[0].Available != "10.00" {
			t.Fatalf("top-up: %+v %v", w, err)
		}
	}
	if _, err := host.Confirm(ctx, sess.ID, minipay.ConfirmParams{UserID: "usr_host_go", ClientSecret: "wrong"}); minipay.ErrorCode(err) == "" {
		t.Fatalf("confirm with a wrong client secret: %v", err)
	}
	paid, err := host.Confirm(ctx, sess.ID, minipay.ConfirmParams{UserID: "usr_host_go", ClientSecret: sess.ClientSecret, IdempotencyKey: "bridge-req-1"})
	if err != nil || paid.Status != "complete" {
		t.Fatalf("confirm: %+v %v", paid, err)
	}
	if w, err := host.GetWallet(ctx, "usr_host_go"); err != nil || w.Balances[0].Available != "3.00" {
		t.Fatalf("wallet after paying: %+v %v", w, err)
	}
	if _, err := host.Confirm(ctx, sess.ID, minipay.ConfirmParams{ClientSecret: sess.ClientSecret}); minipay.ErrorCode(err) != "parameter_missing" {
		t.Fatalf("confirm without a user: %v", err)
	}
}

// TestAppAndFeed: the key's app, and the event log as a feed, oldest first.
func TestAppAndFeed(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	app, err := s.client.GetApp(ctx)
	if err != nil || !strings.HasPrefix(app.ID, "app_") || app.Name != "SDK test app" {
		t.Fatalf("app %+v %v", app, err)
	}
	var made []string
	for range 3 {
		sess, err := s.client.CreateSession(ctx, minipay.SessionParams{Amount: "1.00", Currency: "CNY", Option: "goods"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.client.CancelSession(ctx, sess.ID); err != nil {
			t.Fatal(err)
		}
		made = append(made, sess.ID)
	}
	var got []string
	after := ""
	for deadline := time.Now().Add(10 * time.Second); len(got) < 3 && time.Now().Before(deadline); {
		page, err := s.client.ListEvents(ctx, minipay.EventListParams{OldestFirst: true, ListParams: minipay.ListParams{StartingAfter: after, Limit: 2}})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Data {
			sess, _ := e.Session()
			got, after = append(got, sess.ID), e.ID
		}
	}
	if strings.Join(got, " ") != strings.Join(made, " ") {
		t.Fatalf("feed %v, want the cancellations in order %v", got, made)
	}
}

// TestNetworkErrorNamesURLAndCause: a server that is not there is an error
// that says which URL and why, with one "minipay:" prefix.
func TestNetworkErrorNamesURLAndCause(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	_, err := minipay.New("sk_x", minipay.WithBaseURL(addr), minipay.WithMaxRetries(0)).GetBalance(context.Background())
	if !minipay.IsNetworkError(err) || !strings.HasPrefix(err.Error(), "minipay: GET "+addr+"/v1/balance: ") ||
		!strings.Contains(err.Error(), "connection refused") || strings.Count(err.Error(), "minipay") != 1 {
		t.Fatalf("err %q", err)
	}
}
