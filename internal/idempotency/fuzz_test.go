package idempotency_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/testdb"
)

// FuzzKeys uses a key with one body, completes it, then retries it with the
// same body and with a second one: the same request must replay the stored
// response exactly, a different one must be an idempotency_conflict, and an
// invalid key must be refused without being stored. "The same request" is
// judged independently of the store: byte-equal bodies, blank bodies, or
// bodies that are each exactly one JSON value (valid UTF-8, nothing after
// it) and decode to equal values.
func FuzzKeys(f *testing.F) {
	for _, s := range [][3]string{
		{"k", `{"amount":"1.00","currency":"CNY"}`, `{"currency":"CNY","amount":"1.00"}`},
		{"k", `{"amount":"1.00"}`, `{"amount":"1.01"}`},
		{"order-42", `{"a":1}`, `{"a":1.0}`},
		{"k", `{"a":1}`, `{"a":1} {"a":2}`},
		{"k", `{"a":1}`, `{"a":1}garbage`},
		{"k", "{\"a\":\"\xff\"}", `{"a":"\ufffd"}`},
		{"k", "", "  \n"},
		{"k", "not json", "not json "},
		{"k", `{"a":1,"a":2}`, `{"a":2}`},
		// encoding/json matches names regardless of case and keeps the last
		// duplicate; the fingerprint must tell these apart (the API refuses
		// such bodies before they reach a handler).
		{"k", `{"amount":"1.00","AMOUNT":"9.00"}`, `{"amount":"1.00"}`},
		{"k", `{"amount":"1.00","AMOUNT":"9.00"}`, `{"amount":"9.00"}`},
		{"k", `{"amount":"1.00","amount":"9.00"}`, `{"amount":"9.00"}`},
		{"", `{}`, `{}`},
		{"tab\tkey", `{}`, `{}`},
		{string(bytes.Repeat([]byte("k"), 256)), `{}`, `{}`},
		{"ключ", `{}`, `{}`},
	} {
		f.Add(s[0], []byte(s[1]), []byte(s[2]))
	}
	db := testdb.New(f)
	store := idempotency.New(db.Pool, testSecret)
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, key string, body1, body2 []byte) {
		ctx := context.Background()
		scope := fmt.Sprintf("fuzz%d", n.Add(1)) // every input starts afresh
		first := idempotency.Request{Scope: scope, Key: key, Method: "POST", Path: "/v1/things", Body: body1}
		claim, replay, err := store.Begin(ctx, first)
		if !idempotency.ValidKey(key) {
			if !errors.Is(err, idempotency.ErrInvalidKey) || claim != nil || replay != nil {
				t.Fatalf("key %q: claim %v, replay %v, err %v; want ErrInvalidKey", key, claim, replay, err)
			}
			return
		}
		if err != nil || claim == nil || replay != nil {
			t.Fatalf("first use of %q: claim %v, replay %v, err %v", key, claim, replay, err)
		}
		stored := idempotency.Response{Status: 201, Body: append([]byte(`{"echo":`), append(body1, '}')...)}
		if err := store.Complete(ctx, claim, stored); err != nil {
			t.Fatal(err)
		}
		claim, replay, err = store.Begin(ctx, first)
		if err != nil || claim != nil || replay == nil || replay.Status != stored.Status || !bytes.Equal(replay.Body, stored.Body) {
			t.Fatalf("retry of %q with the same body: claim %v, replay %+v, err %v", key, claim, replay, err)
		}
		second := first
		second.Body = body2
		claim, replay, err = store.Begin(ctx, second)
		if sameRequest(body1, body2) {
			if err != nil || claim != nil || replay == nil || !bytes.Equal(replay.Body, stored.Body) {
				t.Fatalf("%q and %q are the same request, but: claim %v, replay %v, err %v", body1, body2, claim, replay, err)
			}
		} else if !errors.Is(err, idempotency.ErrConflict) || claim != nil || replay != nil {
			t.Fatalf("%q and %q differ, but: claim %v, replay %v, err %v", body1, body2, claim, replay, err)
		}
		other := second
		other.Path = "/v1/other"
		if _, _, err := store.Begin(ctx, other); !errors.Is(err, idempotency.ErrConflict) {
			t.Fatalf("the same key on another path: %v, want a conflict", err)
		}
	})
}

// sameRequest is the oracle for "the same body".
func sameRequest(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if len(bytes.TrimSpace(a)) == 0 && len(bytes.TrimSpace(b)) == 0 {
		return true
	}
	va, okA := oneJSONValue(a)
	vb, okB := oneJSONValue(b)
	return okA && okB && reflect.DeepEqual(va, vb)
}

func oneJSONValue(b []byte) (any, bool) {
	if !utf8.Valid(b) || !json.Valid(b) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

// FuzzDeriveID: ids derived from keys are stable, well formed, and differ
// between scopes and keys.
func FuzzDeriveID(f *testing.F) {
	f.Add("app_1", "k", "app_2", "k")
	f.Add("a", "b\x00c", "a\x00b", "c")
	f.Fuzz(func(t *testing.T, scope1, key1, scope2, key2 string) {
		a, b := idempotency.DeriveID("cs", scope1, key1), idempotency.DeriveID("cs", scope2, key2)
		if a != idempotency.DeriveID("cs", scope1, key1) {
			t.Fatal("not stable")
		}
		if len(a) != len("cs_")+26 {
			t.Fatalf("id %q", a)
		}
		// Scopes are app ids and operator kinds, never containing NUL,
		// which separates scope from key.
		if (a == b) != (scope1 == scope2 && key1 == key2) && !bytes.ContainsRune([]byte(scope1+scope2), 0) {
			t.Fatalf("DeriveID(%q, %q) = %s, DeriveID(%q, %q) = %s", scope1, key1, a, scope2, key2, b)
		}
	})
}
