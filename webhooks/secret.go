package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Signing secrets are "whsec_" and the base64 of secretBytes random bytes,
// as the Standard Webhooks specification asks (24 to 64 bytes).
const (
	secretPrefix = "whsec_"
	secretBytes  = 32
)

// newSecret returns a fresh signing secret and its raw key.
func newSecret() (string, []byte) {
	key := make([]byte, secretBytes)
	if _, err := rand.Read(key); err != nil {
		panic("webhooks: crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(key), key
}

// sealPurpose derives the key that encrypts signing secrets at rest from
// the server secret. Each sealed secret is bound to its endpoint's id, so
// one copied to another endpoint's row does not open there.
const sealPurpose = "minipay webhooks: signing secret encryption v1"

// openSecret decrypts an endpoint's stored signing secret.
func (s *Service) openSecret(endpointID string, sealed []byte) ([]byte, error) {
	key, err := s.sealer.Open(sealed, []byte(endpointID))
	if err != nil {
		return nil, fmt.Errorf("%w: endpoint %s", ErrSecretUndecryptable, endpointID)
	}
	return key, nil
}

// sealSecret encrypts a signing key for an endpoint.
func (s *Service) sealSecret(endpointID string, key []byte) []byte {
	return s.sealer.Seal(key, []byte(endpointID))
}

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// signature returns the webhook-signature header value for a message: one
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" per key, space-separated
// (the current key first, then a rotated-out one still in its grace period).
func signature(keys [][]byte, msgID string, at time.Time, body []byte) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	sigs := make([]string, 0, len(keys))
	for _, key := range keys {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(msgID))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " ")
}
