package webhook_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/minipay/minipay/sdk/go/webhook"
)

// A receiver verifies each webhook before acting on it.
func ExampleVerify() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header, body, 5*time.Minute); err != nil {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		// Use r.Header.Get("webhook-id") to skip events already handled.
		w.WriteHeader(http.StatusNoContent)
	})

	body := `{"id":"evt_1","type":"checkout.session.completed"}`
	h, _ := webhook.Headers("evt_1", time.Now(), []byte(body), secret)
	req := httptest.NewRequest("POST", "/webhooks", strings.NewReader(body))
	req.Header = h
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output: 204
}
