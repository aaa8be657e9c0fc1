package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestWire sends requests over one keep-alive connection to a real
// net/http server and checks what the server received and what came back.
func TestWire(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.Header.Get("Authorization") != "Bearer k" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request line or headers", http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/fail" {
			http.Error(w, "nope", http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"path":"` + r.URL.Path + `","got":` + string(body) + `}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := newWire(srv.URL)
	defer w.close()
	for i := 0; i < 3; i++ {
		raw, err := w.post(ctx, "/v1/things", "k", []byte(`{"n":1}`), http.StatusCreated)
		if err != nil {
			t.Fatal(err)
		}
		if string(raw) != `{"path":"/v1/things","got":{"n":1}}` {
			t.Fatalf("response %q", raw)
		}
	}
	_, err := w.post(ctx, "/fail", "k", []byte(`{}`), http.StatusCreated)
	if err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("unexpected status: err = %v", err)
	}
	if _, err := w.post(ctx, "/v1/things", "k", []byte(`{}`), http.StatusCreated); err != nil {
		t.Fatalf("after an error status: %v", err)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 5 requests, want 1 kept alive", n)
	}
}
