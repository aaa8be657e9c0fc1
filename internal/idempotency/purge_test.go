package idempotency_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/testdb"
)

// TestPurgeForgetsOnlyExpiredKeys keeps keys for Retention: older ones go,
// in batches of at most the limit, and a request under a forgotten key runs
// again, while a recent key still replays.
func TestPurgeForgetsOnlyExpiredKeys(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	s := idempotency.New(db.Pool, testSecret)
	req := func(key string) idempotency.Request {
		return idempotency.Request{Scope: "app_1", Key: key, Method: "POST", Path: "/v1/refunds", Body: []byte(`{"amount":"1.00"}`)}
	}
	for i := 0; i < 5; i++ {
		r := req(fmt.Sprintf("k%d", i))
		claim, _, err := s.Begin(ctx, r)
		if err != nil || claim == nil {
			t.Fatalf("begin %s: %v %v", r.Key, claim, err)
		}
		if err := s.Complete(ctx, claim, idempotency.Response{Status: 201, Body: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	// k0–k2 are a day past retention; k3 is an hour short of it.
	if _, err := db.Pool.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() - $1::interval - interval '1 day'
		WHERE key IN ('k0', 'k1', 'k2')`, idempotency.Retention.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() - $1::interval + interval '1 hour'
		WHERE key = 'k3'`, idempotency.Retention.String()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(ctx, 2); err != nil || n != 2 {
		t.Fatalf("first batch purged %d, %v; want 2", n, err)
	}
	if n, err := s.Purge(ctx, 2); err != nil || n != 1 {
		t.Fatalf("second batch purged %d, %v; want 1", n, err)
	}
	if n, err := s.Purge(ctx, 2); err != nil || n != 0 {
		t.Fatalf("third batch purged %d, %v; want 0", n, err)
	}
	if claim, replay, err := s.Begin(ctx, req("k0")); err != nil || claim == nil || replay != nil {
		t.Fatalf("a purged key: claim %v, replay %v, %v; want it to run again", claim, replay, err)
	}
	for _, key := range []string{"k3", "k4"} {
		if claim, replay, err := s.Begin(ctx, req(key)); err != nil || claim != nil || replay == nil || replay.Status != 201 {
			t.Fatalf("kept key %s: claim %v, replay %v, %v; want a replay", key, claim, replay, err)
		}
	}
}

// TestOnCitus runs the store's tests on a Citus cluster, where
// idempotency_keys is distributed by scope.
func TestOnCitus(t *testing.T) {
	testdb.WithCitus(t)
	t.Run("PurgeForgetsOnlyExpiredKeys", TestPurgeForgetsOnlyExpiredKeys)
	t.Run("AnswersSealed", TestAnswersSealed)
	t.Run("LateFirstRequestCannotTouchTheTakeover", TestLateFirstRequestCannotTouchTheTakeover)
}
