// Package seal encrypts small values at rest (webhook signing secrets,
// stored idempotent answers) with AES-256-GCM under a key derived from the
// server secret (MINIPAY_SECRET) by HKDF-SHA256, one key per purpose.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// version is the first byte of every sealed value, so the format can
// change without guessing.
const version = 1

// ErrOpen: a value cannot be opened: it was sealed under another server
// secret or for other additional data, altered, or never sealed.
var ErrOpen = errors.New("seal: cannot open the value (has MINIPAY_SECRET changed, or the row been altered?)")

// Sealer seals and opens values for one purpose. It is safe for concurrent
// use.
type Sealer struct {
	aead cipher.AEAD
}

// New returns a Sealer whose key is derived from serverSecret for purpose
// (the HKDF info): values sealed for one purpose do not open for another.
func New(serverSecret []byte, purpose string) *Sealer {
	key, err := hkdf.Key(sha256.New, serverSecret, nil, purpose, 32)
	if err != nil {
		panic("seal: derive key: " + err.Error()) // only for impossible lengths
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("seal: " + err.Error())
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("seal: " + err.Error())
	}
	return &Sealer{aead: aead}
}

// Seal encrypts plaintext bound to aad (which is not stored: Open needs
// the same): version, random nonce, ciphertext and tag.
func (s *Sealer) Seal(plaintext, aad []byte) []byte {
	n := s.aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(plaintext)+s.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		panic("seal: crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return s.aead.Seal(out, out[1:], plaintext, aad)
}

// Open decrypts what Seal made with the same aad, or fails with ErrOpen.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != version {
		return nil, ErrOpen
	}
	out, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
