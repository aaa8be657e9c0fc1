package idempotency_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/seal"
	"github.com/minipay/minipay/internal/testdb"
)

// TestAnswersSealed: what a record keeps of the request and the answer is
// encrypted, replays still return the answer, records written in clear by
// an earlier version replay too and are sealed by SealLegacy, and a
// replica with another server secret cannot read the answers.
func TestAnswersSealed(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	s := idempotency.New(db.Pool, testSecret)
	r := idempotency.Request{Scope: "admin", Key: "k1", Method: "POST", Path: "/v1/apps", Body: []byte(`{"name":"shop"}`)}
	answer := []byte(`{"secret_key":"sk_visible_in_clear"}`)
	claim, _, err := s.Begin(ctx, r)
	if err != nil || claim == nil {
		t.Fatal(claim, err)
	}
	if err := s.Complete(ctx, claim, idempotency.Response{Status: 201, Body: answer}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM idempotency_keys WHERE position('sk_visible'::bytea IN response_body) > 0
		OR position('shop'::bytea IN request_body) > 0`); n != 0 {
		t.Fatal("the request or the answer is stored in clear")
	}
	if _, replay, err := s.Begin(ctx, r); err != nil || replay == nil || !bytes.Equal(replay.Body, answer) {
		t.Fatalf("replay %+v %v", replay, err)
	}
	other := r
	other.Body = []byte(`{"name":"other"}`)
	if _, _, err := s.Begin(ctx, other); !errors.Is(err, idempotency.ErrConflict) || !bytes.Contains([]byte(err.Error()), []byte("name")) {
		t.Fatalf("conflict naming the field from the sealed request: %v", err)
	}
	if _, _, err := idempotency.New(db.Pool, []byte("another server secret...........")).Begin(ctx, r); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("a replica with another secret: %v, want seal.ErrOpen", err)
	}

	// A record from before sealing: replayed as stored, then sealed.
	legacy := idempotency.Request{Scope: "admin", Key: "old", Method: "POST", Path: "/v1/apps", Body: []byte(`{"name":"old"}`)}
	claim, _, err = s.Begin(ctx, legacy)
	if err != nil || claim == nil {
		t.Fatal(claim, err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE idempotency_keys SET sealed = false, request_body = $2, status = 201, response_body = $3
		WHERE key = $1`, legacy.Key, legacy.Body, []byte(`{"secret_key":"sk_legacy"}`)); err != nil {
		t.Fatal(err)
	}
	if _, replay, err := s.Begin(ctx, legacy); err != nil || replay == nil || string(replay.Body) != `{"secret_key":"sk_legacy"}` {
		t.Fatalf("legacy replay %+v %v", replay, err)
	}
	if n, err := s.SealLegacy(ctx, 10); err != nil || n != 1 {
		t.Fatalf("sealed %d, %v; want the one legacy record", n, err)
	}
	if n := count(t, db, `SELECT count(*) FROM idempotency_keys WHERE NOT sealed OR position('sk_legacy'::bytea IN response_body) > 0`); n != 0 {
		t.Fatal("the legacy record is still in clear")
	}
	if _, replay, err := s.Begin(ctx, legacy); err != nil || replay == nil || string(replay.Body) != `{"secret_key":"sk_legacy"}` {
		t.Fatalf("replay after sealing %+v %v", replay, err)
	}
}
