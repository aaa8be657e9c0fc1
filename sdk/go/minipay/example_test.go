package minipay_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/minipay/minipay/sdk/go/minipay"
)

// A receiver verifies each webhook, with the body exactly as received,
// before acting on it, and acts once per event id.
func ExampleVerifyWebhook() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		event, err := minipay.VerifyWebhook(secret, r.Header, body, 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Println(event.Type, event.ID)
		w.WriteHeader(http.StatusNoContent)
	})

	body := `{"id":"evt_1","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_1"}}}`
	h, _ := minipay.WebhookHeaders("evt_1", time.Now(), []byte(body), secret)
	req := httptest.NewRequest("POST", "/webhooks", strings.NewReader(body))
	req.Header = h
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// checkout.session.completed evt_1
	// 204
}
