package idempotency_test

import (
	"context"
	"testing"

	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/testdb"
)

// TestLateFirstRequestCannotTouchTheTakeover: a first request that outlives
// its lease loses the key to a retry that takes it over. When the slow one
// finally finishes, neither its Release nor its Complete may touch the
// retry's claim: the retry is still running, and its answer is the one a
// later retry must replay.
func TestLateFirstRequestCannotTouchTheTakeover(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	s := idempotency.New(db.Pool, testSecret)
	r := idempotency.Request{Scope: "app_1", Key: "k", Method: "POST", Path: "/v1/refunds", Body: []byte(`{"amount":"1.00"}`)}
	first, _, err := s.Begin(ctx, r)
	if err != nil || first == nil {
		t.Fatalf("first claim: %v %v", first, err)
	}
	expireLease(t, db)
	second, _, err := s.Begin(ctx, r)
	if err != nil || second == nil {
		t.Fatalf("takeover: %v %v", second, err)
	}

	// The slow first request gives up: its release must leave the
	// takeover's claim alone, so a third request still waits for it.
	if err := s.Release(ctx, first); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM idempotency_keys WHERE status IS NULL`); n != 1 {
		t.Fatalf("the late release removed the takeover's claim (%d claims left)", n)
	}
	// Or it completes late: its answer must not be stored over the
	// takeover's claim.
	if err := s.Complete(ctx, first, idempotency.Response{Status: 201, Body: []byte(`{"who":"first"}`)}); err == nil {
		t.Fatal("a claim that was taken over completed without an error")
	}
	if n := count(t, db, `SELECT count(*) FROM idempotency_keys WHERE status IS NOT NULL`); n != 0 {
		t.Fatal("the late first request stored its answer over the takeover's claim")
	}
	if err := s.Complete(ctx, second, idempotency.Response{Status: 201, Body: []byte(`{"who":"second"}`)}); err != nil {
		t.Fatal(err)
	}
	_, replay, err := s.Begin(ctx, r)
	if err != nil || replay == nil || string(replay.Body) != `{"who":"second"}` {
		t.Fatalf("replay %+v, %v; want the takeover's answer", replay, err)
	}
}

func expireLease(t *testing.T, db *testdb.DB) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), `UPDATE idempotency_keys SET locked_until = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *testdb.DB, sql string) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var testSecret = []byte("idempotency test server secret..")
