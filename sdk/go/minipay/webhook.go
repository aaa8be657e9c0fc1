package minipay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhooks are signed per the Standard Webhooks specification
// (https://www.standardwebhooks.com): the headers webhook-id,
// webhook-timestamp and webhook-signature, the last holding one or more
// space-separated "v1,<base64 HMAC-SHA256>" signatures of
// "<id>.<timestamp>.<body>" made with the endpoint's secret ("whsec_"
// followed by the base64 of the key). While a secret is being rotated,
// deliveries carry a signature made with each secret, so a receiver with
// either one verifies them. minipay listen signs what it forwards the same
// way, with its local secret.

// Header names of the Standard Webhooks specification.
const (
	WebhookIDHeader        = "webhook-id"
	WebhookTimestampHeader = "webhook-timestamp"
	WebhookSignatureHeader = "webhook-signature"
)

// DefaultWebhookTolerance is how far a webhook's timestamp may be from the
// receiver's clock, either way, when VerifyWebhook is given no tolerance.
const DefaultWebhookTolerance = 5 * time.Minute

// Errors VerifyWebhook returns; compare with errors.Is. Answer the
// delivery with 400 for any of them.
var (
	// ErrWebhookSecret: the secret is not "whsec_" followed by base64.
	ErrWebhookSecret = errors.New("minipay: malformed webhook secret")
	// ErrWebhookHeaders: webhook-id, webhook-timestamp or webhook-signature
	// is absent.
	ErrWebhookHeaders = errors.New("minipay: missing webhook signature headers")
	// ErrWebhookTimestamp: webhook-timestamp is not Unix seconds.
	ErrWebhookTimestamp = errors.New("minipay: malformed webhook timestamp")
	// ErrWebhookTooOld: the timestamp is further in the past than the
	// tolerance (a replay, or a clock far off).
	ErrWebhookTooOld = errors.New("minipay: webhook timestamp too old")
	// ErrWebhookTooNew: the timestamp is further in the future than the
	// tolerance.
	ErrWebhookTooNew = errors.New("minipay: webhook timestamp too new")
	// ErrWebhookSignature: no v1 signature in the header matches the body
	// and secret.
	ErrWebhookSignature = errors.New("minipay: no matching webhook signature")
	// ErrWebhookBody: the body verified but is not an event.
	ErrWebhookBody = errors.New("minipay: webhook body is not an event")
)

// VerifyWebhook checks that header and body are a webhook signed with
// secret (whsec_…) and sent within tolerance of now (0 means
// DefaultWebhookTolerance), then decodes the event. Pass the body exactly
// as received: re-encoded JSON does not verify. It accepts the message
// when any one of the header's signatures matches, and compares
// signatures in constant time. Deliveries are at least once: use the
// event id to drop repeats.
func VerifyWebhook(secret string, header http.Header, body []byte, tolerance time.Duration) (*Event, error) {
	if err := verifyAt(secret, header, body, tolerance, time.Now()); err != nil {
		return nil, err
	}
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWebhookBody, err)
	}
	return &e, nil
}

func verifyAt(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return err
	}
	msgID, ts, sigs := header.Get(WebhookIDHeader), header.Get(WebhookTimestampHeader), header.Get(WebhookSignatureHeader)
	if msgID == "" || ts == "" || sigs == "" {
		return ErrWebhookHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrWebhookTimestamp, ts)
	}
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	at := time.Unix(sec, 0)
	switch {
	case now.Sub(at) > tolerance:
		return fmt.Errorf("%w: %s", ErrWebhookTooOld, at.UTC().Format(time.RFC3339))
	case at.Sub(now) > tolerance:
		return fmt.Errorf("%w: %s", ErrWebhookTooNew, at.UTC().Format(time.RFC3339))
	}
	want := mac(key, msgID, ts, body)
	for _, sig := range strings.Fields(sigs) {
		version, value, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrWebhookSignature
}

// SignWebhook returns the webhook-signature value for a message: a v1
// signature per secret, space-separated, as minipay sends it. For tests of
// receivers.
func SignWebhook(msgID string, at time.Time, body []byte, secrets ...string) (string, error) {
	ts := strconv.FormatInt(at.Unix(), 10)
	out := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := decodeSecret(s)
		if err != nil {
			return "", err
		}
		out = append(out, "v1,"+base64.StdEncoding.EncodeToString(mac(key, msgID, ts, body)))
	}
	return strings.Join(out, " "), nil
}

// WebhookHeaders returns the three headers of a signed message, for tests
// of receivers.
func WebhookHeaders(msgID string, at time.Time, body []byte, secrets ...string) (http.Header, error) {
	sig, err := SignWebhook(msgID, at, body, secrets...)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set(WebhookIDHeader, msgID)
	h.Set(WebhookTimestampHeader, strconv.FormatInt(at.Unix(), 10))
	h.Set(WebhookSignatureHeader, sig)
	return h, nil
}

func decodeSecret(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, fmt.Errorf("%w: it starts with whsec_", ErrWebhookSecret)
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("%w: the part after whsec_ is not base64", ErrWebhookSecret)
	}
	return key, nil
}

func mac(key []byte, msgID, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msgID))
	h.Write([]byte{'.'})
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}
