package minipay_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/minipay/minipay/sdk/go/minipay"
)

type delivery struct {
	header http.Header
	body   []byte
}

// TestWebhookDeliveryAndEventLog registers a real receiving server, pays a
// session, and checks that the delivery verifies, decodes, and matches the
// event log.
func TestWebhookDeliveryAndEventLog(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	c := s.client
	deliveries := make(chan delivery, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		deliveries <- delivery{r.Header.Clone(), body}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	ep, err := c.CreateWebhookEndpoint(ctx, minipay.WebhookEndpointParams{URL: recv.URL + "/hook", Description: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ep.Secret, "whsec_") || ep.Status != "enabled" || len(ep.EnabledEvents) != 1 || ep.EnabledEvents[0] != "*" {
		t.Fatalf("endpoint %+v", ep)
	}
	if got, err := c.GetWebhookEndpoint(ctx, ep.ID); err != nil || got.Secret != "" || got.URL != recv.URL+"/hook" {
		t.Fatalf("get endpoint %+v %v", got, err)
	}
	desc := "renamed"
	if got, err := c.UpdateWebhookEndpoint(ctx, ep.ID, minipay.WebhookEndpointUpdate{Description: &desc}); err != nil || got.Description != desc {
		t.Fatalf("update endpoint %+v %v", got, err)
	}
	if l, err := c.ListWebhookEndpoints(ctx, minipay.ListParams{}); err != nil || len(l.Data) != 1 {
		t.Fatalf("list endpoints %+v %v", l, err)
	}

	sess, err := c.CreateSession(ctx, minipay.SessionParams{Amount: "8.88", Currency: "CNY", Option: "goods"})
	if err != nil {
		t.Fatal(err)
	}
	s.raw("POST", "/v1/wallets/usr_2/topups", hostKey, `{"amount": "10.00", "currency": "CNY"}`, 200)
	s.raw("POST", "/v1/checkout/sessions/"+sess.ID+"/confirm", hostKey, `{"user_id": "usr_2", "client_secret": "`+sess.ClientSecret+`"}`, 200)

	var d delivery
	select {
	case d = <-deliveries:
	case <-time.After(30 * time.Second):
		t.Fatal("no webhook delivered")
	}
	ev, err := minipay.VerifyWebhook(ep.Secret, d.header, d.body, 0)
	if err != nil {
		t.Fatal(err)
	}
	paid, err := ev.Session()
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "checkout.session.completed" || paid.ID != sess.ID || paid.PaymentStatus != "paid" || paid.AmountTotal != "8.88" {
		t.Fatalf("event %+v session %+v", ev, paid)
	}
	tampered := bytes.Replace(d.body, []byte("8.88"), []byte("9.88"), 1)
	if _, err := minipay.VerifyWebhook(ep.Secret, d.header, tampered, 0); !errors.Is(err, minipay.ErrWebhookSignature) {
		t.Fatalf("tampered body: %v", err)
	}

	list, err := c.ListEvents(ctx, minipay.EventListParams{Type: "checkout.session.completed"})
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != ev.ID {
		t.Fatalf("events %+v %v", list, err)
	}
	got, err := c.GetEvent(ctx, ev.ID)
	if err != nil || got.ID != ev.ID || !bytes.Equal(got.Data.Object, ev.Data.Object) {
		t.Fatalf("get event %+v %v", got, err)
	}
	rotated, err := c.RotateWebhookSecret(ctx, ep.ID)
	if err != nil || !strings.HasPrefix(rotated.Secret, "whsec_") || rotated.Secret == ep.Secret {
		t.Fatalf("rotate %+v %v", rotated, err)
	}
	if err := c.DeleteWebhookEndpoint(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetWebhookEndpoint(ctx, ep.ID); minipay.ErrorCode(err) == "" {
		t.Fatalf("deleted endpoint still readable: %v", err)
	}
}
