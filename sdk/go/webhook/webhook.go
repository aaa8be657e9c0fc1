// Package webhook verifies the webhooks minipay sends to developers'
// backends. minipay signs every delivery per the Standard Webhooks
// specification (https://www.standardwebhooks.com): the headers
// webhook-id, webhook-timestamp and webhook-signature, the last holding one
// or more space-separated "v1,<base64 HMAC-SHA256>" signatures of
// "<id>.<timestamp>.<body>" made with the endpoint's secret ("whsec_"
// followed by the base64 of the key). While a secret is being rotated,
// deliveries carry a signature made with each secret, so a receiver with
// either one verifies them.
//
// Verify before parsing the body, with the body exactly as received, and
// treat webhook-id (the event id) as an idempotency key: deliveries are at
// least once.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// DefaultTolerance is how far a webhook's timestamp may be from the
// receiver's clock, either way, when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Errors Verify returns; compare with errors.Is.
var (
	// ErrSecret: the secret is not "whsec_" followed by base64.
	ErrSecret = errors.New("webhook: malformed secret")
	// ErrMissingHeaders: webhook-id, webhook-timestamp or webhook-signature is absent.
	ErrMissingHeaders = errors.New("webhook: missing signature headers")
	// ErrTimestamp: webhook-timestamp is not Unix seconds.
	ErrTimestamp = errors.New("webhook: malformed timestamp")
	// ErrTooOld: the timestamp is further in the past than the tolerance
	// (a replay, or a clock far off).
	ErrTooOld = errors.New("webhook: timestamp too old")
	// ErrTooNew: the timestamp is further in the future than the tolerance.
	ErrTooNew = errors.New("webhook: timestamp too new")
	// ErrNoMatch: no v1 signature in the header matches the body and secret.
	ErrNoMatch = errors.New("webhook: no matching signature")
)

// Verify checks that header and body are a webhook signed with secret and
// sent within tolerance of now (DefaultTolerance when tolerance is 0). It
// accepts the message when any one of the header's signatures matches, and
// compares signatures in constant time.
func Verify(secret string, header http.Header, body []byte, tolerance time.Duration) error {
	return verifyAt(secret, header, body, tolerance, time.Now())
}

func verifyAt(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return err
	}
	msgID, ts, sigs := header.Get(HeaderID), header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if msgID == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrTimestamp, ts)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	at := time.Unix(sec, 0)
	switch {
	case now.Sub(at) > tolerance:
		return fmt.Errorf("%w: %s", ErrTooOld, at.UTC().Format(time.RFC3339))
	case at.Sub(now) > tolerance:
		return fmt.Errorf("%w: %s", ErrTooNew, at.UTC().Format(time.RFC3339))
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
	return ErrNoMatch
}

// Sign returns the webhook-signature value for a message: a v1 signature
// per secret, space-separated. It is what minipay sends, for tests of
// receivers.
func Sign(msgID string, at time.Time, body []byte, secrets ...string) (string, error) {
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

// Headers returns the three headers of a signed message, for tests of
// receivers.
func Headers(msgID string, at time.Time, body []byte, secrets ...string) (http.Header, error) {
	sig, err := Sign(msgID, at, body, secrets...)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return h, nil
}

func decodeSecret(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, fmt.Errorf("%w: it starts with whsec_", ErrSecret)
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("%w: the part after whsec_ is not base64", ErrSecret)
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
