package apps_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/internal/testdb"
)

var secret = []byte("apps test server secret.........")

// TestRetiredOperatorKeyStaysRetired: a process still configured with an
// operator key that a newer one replaced must not bring it back to life,
// neither while it is in its grace period (it keeps its expiry and the new
// key stays permanent) nor after it expired (start is refused).
func TestRetiredOperatorKeyStaysRetired(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	svc := apps.New(db.Pool, secret)
	ensure := func(key string) error {
		_, err := svc.EnsureOperatorKey(ctx, apps.KindAdmin, key)
		return err
	}
	for range 2 { // a restart with the same key changes nothing
		if err := ensure("admin-key-one-0123456789"); err != nil {
			t.Fatal(err)
		}
	}
	if err := ensure("admin-key-two-0123456789"); err != nil { // the rotation
		t.Fatal(err)
	}
	var graceEnd time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT expires_at FROM api_keys WHERE source = 'env' AND expires_at IS NOT NULL`).Scan(&graceEnd); err != nil {
		t.Fatal(err)
	}
	// A replica not yet updated restarts with the old key.
	if err := ensure("admin-key-one-0123456789"); err != nil {
		t.Fatalf("an old key in its grace period stops a replica from starting: %v", err)
	}
	var permanent, oldEnd int
	db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE expires_at IS NULL), count(*) FILTER (WHERE expires_at = $1)
		FROM api_keys WHERE kind = 'admin'`, graceEnd).Scan(&permanent, &oldEnd)
	if permanent != 1 || oldEnd != 1 {
		t.Fatalf("after the old key came back: %d permanent keys, %d keeping the grace period; want the new one permanent and the old one retiring as before", permanent, oldEnd)
	}
	if _, err := svc.Authenticate(ctx, "admin-key-two-0123456789"); err != nil {
		t.Fatalf("the new key: %v", err)
	}

	// The grace period ends; the stale replica restarts again.
	if _, err := db.Pool.Exec(ctx, `UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE expires_at IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	if err := ensure("admin-key-one-0123456789"); !errors.Is(err, apps.ErrKeyRetired) {
		t.Fatalf("starting with a retired key: %v, want ErrKeyRetired", err)
	}
	fresh := apps.New(db.Pool, secret) // nothing cached
	if _, err := fresh.Authenticate(ctx, "admin-key-one-0123456789"); !errors.Is(err, apps.ErrUnauthenticated) {
		t.Fatalf("the retired key came back to life: %v", err)
	}
}
