package minipay_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
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

// A developer's backend sells a monthly membership: the plan once, then a
// subscription per user, whose id and client secret the mini-app hands to
// requestSubscription. The membership starts on the subscription.activated
// webhook, not on the front end's word.
func ExampleClient_CreateSubscription() {
	ctx := context.Background()
	client := minipay.New(os.Getenv("MINIPAY_SECRET_KEY"), minipay.WithBaseURL(os.Getenv("MINIPAY_URL")))
	plan, err := client.CreatePlan(ctx, minipay.PlanParams{Name: "Tea Club monthly", Amount: "30.00", Currency: "CNY",
		Option: "subscription", Interval: "month", IdempotencyKey: "plan-tea-club-monthly"})
	if err != nil {
		log.Fatal(err)
	}
	sub, err := client.CreateSubscription(ctx, minipay.SubscriptionParams{Plan: plan.ID, ClientReferenceID: "member-42"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sub.ID, sub.ClientSecret) // to the mini-app front end
}
