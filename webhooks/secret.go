package webhooks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
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

// sealVersion is the first byte of every sealed secret, so the format can
// change without guessing.
const sealVersion = 1

// sealer encrypts signing secrets at rest with AES-256-GCM under a key
// derived from the server secret by HKDF-SHA256. The endpoint id is the
// additional data, so a sealed secret copied to another endpoint's row
// does not open there.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(serverSecret []byte) *sealer {
	key, err := hkdf.Key(sha256.New, serverSecret, nil, "minipay webhooks: signing secret encryption v1", 32)
	if err != nil {
		panic("webhooks: derive key: " + err.Error()) // only for impossible lengths
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("webhooks: " + err.Error())
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("webhooks: " + err.Error())
	}
	return &sealer{aead: aead}
}

// seal encrypts key for endpoint endpointID: version, nonce, ciphertext.
func (s *sealer) seal(endpointID string, key []byte) []byte {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(key)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		panic("webhooks: crypto/rand: " + err.Error())
	}
	return s.aead.Seal(out, out[1:], key, []byte(endpointID))
}

// open decrypts what seal made for endpointID.
func (s *sealer) open(endpointID string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: endpoint %s: unknown format", ErrSecretUndecryptable, endpointID)
	}
	key, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(endpointID))
	if err != nil {
		return nil, fmt.Errorf("%w: endpoint %s", ErrSecretUndecryptable, endpointID)
	}
	return key, nil
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
