package minipay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary secrets, headers and bodies to the verifier:
// it never panics, fails only with its documented errors, and accepts a
// message only when one of its v1 signatures is the HMAC-SHA256 of
// "id.timestamp.body" under the secret (computed here independently) and
// the timestamp is within tolerance.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	key := base64.StdEncoding.EncodeToString([]byte("fuzz key"))
	good := "v1," + base64.StdEncoding.EncodeToString(refMAC([]byte("fuzz key"), "msg_1", "1700000000", []byte(`{"a":1}`)))
	f.Add("whsec_"+key, "msg_1", "1700000000", good, []byte(`{"a":1}`))
	f.Add("whsec_"+key, "msg_1", "1700000000", "v1,AAAA "+good, []byte(`{"a":1}`))
	f.Add("whsec_"+key, "msg_1", "1700000000", good, []byte(`{"a":2}`))
	f.Add("whsec_"+key, "msg_1", "+1700000000", good, []byte(`{"a":1}`))
	f.Add("whsec_"+key, "msg_1", "99999999999999999999", good, []byte(nil))
	f.Add("whsec_"+key, "msg_1", "-9223372036854775808", good, []byte(nil))
	f.Add("whsec_", "", "", "", []byte(nil))
	f.Add("whsec_!!", "msg_1", "1700000000", "v2,"+good[3:], []byte(nil))
	f.Add(key, "msg_1", "1700000000", good, []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, secret, msgID, ts, sigs string, body []byte) {
		h := http.Header{}
		h.Set(WebhookIDHeader, msgID)
		h.Set(WebhookTimestampHeader, ts)
		h.Set(WebhookSignatureHeader, sigs)
		err := verifyAt(secret, h, body, time.Minute, now)
		if err != nil {
			for _, known := range []error{ErrWebhookSecret, ErrWebhookHeaders, ErrWebhookTimestamp, ErrWebhookTooOld, ErrWebhookTooNew, ErrWebhookSignature} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("undocumented error %v", err)
		}
		raw, _ := strings.CutPrefix(secret, "whsec_")
		k, kerr := base64.StdEncoding.DecodeString(raw)
		sec, terr := strconv.ParseInt(ts, 10, 64)
		if !strings.HasPrefix(secret, "whsec_") || kerr != nil || len(k) == 0 || terr != nil {
			t.Fatalf("accepted with secret %q, timestamp %q", secret, ts)
		}
		if d := now.Sub(time.Unix(sec, 0)); d > time.Minute || d < -time.Minute {
			t.Fatalf("accepted timestamp %q, %v from now", ts, d)
		}
		want := refMAC(k, msgID, ts, body)
		for _, s := range strings.Fields(sigs) {
			if v, ok := strings.CutPrefix(s, "v1,"); ok {
				if got, err := base64.StdEncoding.DecodeString(v); err == nil && hmac.Equal(got, want) {
					return
				}
			}
		}
		t.Fatalf("accepted %q for id %q, timestamp %q, body %q: no signature matches", sigs, msgID, ts, body)
	})
}

// FuzzSignVerify: whatever SignWebhook produces for a message verifies, with each
// of the secrets it was signed with, and changing the body, the id or the
// secret makes it fail.
func FuzzSignVerify(f *testing.F) {
	f.Add([]byte("key one"), []byte("key two"), "msg_1", []byte(`{"type":"checkout.session.completed"}`))
	f.Add([]byte{0}, []byte{0xff}, "m.1", []byte{})
	f.Fuzz(func(t *testing.T, k1, k2 []byte, msgID string, body []byte) {
		if len(k1) == 0 || len(k2) == 0 || msgID == "" || string(k1) == string(k2) {
			return
		}
		now := time.Unix(1_700_000_000, 0)
		s1 := "whsec_" + base64.StdEncoding.EncodeToString(k1)
		s2 := "whsec_" + base64.StdEncoding.EncodeToString(k2)
		h, err := WebhookHeaders(msgID, now, body, s1, s2)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{s1, s2} {
			if err := verifyAt(s, h, body, 0, now); err != nil {
				t.Fatalf("signed message does not verify with %s: %v", s, err)
			}
		}
		// The rest with s1's signature alone, so that the other key below
		// cannot happen to be s2.
		if h, err = WebhookHeaders(msgID, now, body, s1); err != nil {
			t.Fatal(err)
		}
		if err := verifyAt(s1, h, append(body, 'x'), 0, now); !errors.Is(err, ErrWebhookSignature) {
			t.Fatalf("changed body: %v", err)
		}
		h.Set(WebhookIDHeader, msgID+"x")
		if err := verifyAt(s1, h, body, 0, now); !errors.Is(err, ErrWebhookSignature) {
			t.Fatalf("changed id: %v", err)
		}
		h.Set(WebhookIDHeader, msgID)
		// Another key: k1 with its first byte changed (not k1 with bytes
		// appended: HMAC pads short keys with zeros, so "k" and "k\x00"
		// are the same key).
		other := "whsec_" + base64.StdEncoding.EncodeToString(append([]byte{k1[0] ^ 1}, k1[1:]...))
		if err := verifyAt(other, h, body, 0, now); !errors.Is(err, ErrWebhookSignature) {
			t.Fatalf("another secret: %v", err)
		}
		if err := verifyAt(s1, h, body, 0, now.Add(DefaultWebhookTolerance+time.Second)); !errors.Is(err, ErrWebhookTooOld) {
			t.Fatalf("replayed later: %v", err)
		}
	})
}

func refMAC(key []byte, msgID, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msgID + "." + ts + "."))
	m.Write(body)
	return m.Sum(nil)
}
