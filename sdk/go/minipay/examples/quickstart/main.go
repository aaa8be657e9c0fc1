// Command quickstart is the Go backend of docs/quickstart.md: it creates a
// checkout session and prints the webhooks it receives.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/minipay/minipay/sdk/go/minipay"
)

func main() {
	client := minipay.New(os.Getenv("MINIPAY_SECRET_KEY"), minipay.WithBaseURL(os.Getenv("MINIPAY_URL")))
	webhookSecret := os.Getenv("MINIPAY_WEBHOOK_SECRET")

	// 1. Receive webhooks: verify the raw body, then act once per event id.
	http.HandleFunc("POST /webhooks", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		event, err := minipay.VerifyWebhook(webhookSecret, r.Header, body, 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if session, err := event.Session(); err == nil {
			fmt.Printf("received %s for %s\n", event.Type, session.ID)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "4242"
	}
	go func() { log.Fatal(http.ListenAndServe("127.0.0.1:"+port, nil)) }()

	// 2. Create a checkout session for a new order; hand its id and client
	//    secret to the mini-app, which calls requestPayment. The order id is
	//    the idempotency key: retrying this order never charges twice.
	orderID := fmt.Sprintf("go-order-%d", time.Now().UnixNano())
	session, err := client.CreateSession(context.Background(), minipay.SessionParams{
		Amount: "6.00", Currency: "CNY", Option: "virtual_goods",
		ClientReferenceID: orderID, IdempotencyKey: orderID,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("session %s, client secret %s\n", session.ID, session.ClientSecret)
	select {}
}
