package minipay_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/minipay/minipay/sdk/go/minipay"
)

func newSecret(t *testing.T) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

var body = []byte(`{"id":"evt_1","type":"checkout.session.completed","data":{"object":{"id":"cs_1","amount_total":"12.34"}}}`)

// The independent reference implementation signs; Verify must accept it.
func TestVerifyAcceptsReferenceSignatures(t *testing.T) {
	secret := newSecret(t)
	ref, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig, err := ref.Sign("evt_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "evt_1")
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", sig)
	if err := verifyOnly(secret, h, body, time.Minute); err != nil {
		t.Fatalf("Verify rejected the reference signature: %v", err)
	}
	// One byte changed anywhere is refused.
	tampered := append([]byte{}, body...)
	tampered[len(tampered)-3] = '5'
	if err := verifyOnly(secret, h, tampered, time.Minute); !errors.Is(err, minipay.ErrWebhookSignature) {
		t.Fatalf("tampered body: %v", err)
	}
	h2 := h.Clone()
	h2.Set("webhook-id", "evt_2")
	if err := verifyOnly(secret, h2, body, time.Minute); !errors.Is(err, minipay.ErrWebhookSignature) {
		t.Fatalf("other id: %v", err)
	}
	if err := verifyOnly(newSecret(t), h, body, time.Minute); !errors.Is(err, minipay.ErrWebhookSignature) {
		t.Fatalf("other secret: %v", err)
	}
}

// Sign's output must verify with the reference implementation, with one
// signature and with two (a rotation), whichever secret the receiver has.
func TestReferenceAcceptsSign(t *testing.T) {
	oldSecret, newSecret := newSecret(t), newSecret(t)
	h, err := minipay.WebhookHeaders("evt_9", time.Now(), body, newSecret, oldSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{oldSecret, newSecret} {
		ref, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := ref.Verify(body, h); err != nil {
			t.Fatalf("reference rejected our signature: %v", err)
		}
		if err := verifyOnly(s, h, body, 0); err != nil {
			t.Fatalf("Verify rejected a rotation signature: %v", err)
		}
	}
	ref, _ := standardwebhooks.NewWebhook(newSecret)
	if err := ref.Verify([]byte(`{}`), h); err == nil {
		t.Fatal("reference accepted another body")
	}
}

func TestVerifyTimestampTolerance(t *testing.T) {
	secret := newSecret(t)
	for _, c := range []struct {
		skew time.Duration
		want error
	}{
		{0, nil},
		{-4 * time.Minute, nil},
		{4 * time.Minute, nil},
		{-6 * time.Minute, minipay.ErrWebhookTooOld},
		{6 * time.Minute, minipay.ErrWebhookTooNew},
	} {
		h, err := minipay.WebhookHeaders("evt_1", time.Now().Add(c.skew), body, secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifyOnly(secret, h, body, 5*time.Minute); !errors.Is(err, c.want) {
			t.Errorf("skew %s: got %v, want %v", c.skew, err, c.want)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	secret := newSecret(t)
	good, err := minipay.WebhookHeaders("evt_1", time.Now(), body, secret)
	if err != nil {
		t.Fatal(err)
	}
	valid := good.Get("webhook-signature")
	for name, c := range map[string]struct {
		secret string
		set    map[string]string
		want   error
	}{
		"no id":             {secret, map[string]string{"webhook-id": ""}, minipay.ErrWebhookHeaders},
		"no signature":      {secret, map[string]string{"webhook-signature": ""}, minipay.ErrWebhookHeaders},
		"bad timestamp":     {secret, map[string]string{"webhook-timestamp": "12a"}, minipay.ErrWebhookTimestamp},
		"v2 only":           {secret, map[string]string{"webhook-signature": "v2," + valid[3:]}, minipay.ErrWebhookSignature},
		"garbage then good": {secret, map[string]string{"webhook-signature": "v1,!!! nonsense v1a " + valid}, nil},
		"good then garbage": {secret, map[string]string{"webhook-signature": valid + " v1,AAAA"}, nil},
		"truncated":         {secret, map[string]string{"webhook-signature": valid[:20]}, minipay.ErrWebhookSignature},
		"bad secret":        {"whsec_***", nil, minipay.ErrWebhookSecret},
		"no prefix":         {secret[6:], nil, minipay.ErrWebhookSecret},
	} {
		h := good.Clone()
		for k, v := range c.set {
			h.Set(k, v)
		}
		if err := verifyOnly(c.secret, h, body, time.Minute); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
}

// verifyOnly is VerifyWebhook for tests that look only at the verdict.
func verifyOnly(secret string, h http.Header, body []byte, tolerance time.Duration) error {
	_, err := minipay.VerifyWebhook(secret, h, body, tolerance)
	return err
}
