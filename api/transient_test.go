package api_test

import (
	"context"
	"net/http"
	"testing"
)

// TestTransientErrorsAreNotReplayed: a refund that kept colliding with
// concurrent refunds answers 409 refund_contention and tells the client to
// retry. The retry, with the same Idempotency-Key as the docs ask, must run
// the refund again, not replay the 409 for seven days.
func TestTransientErrorsAreNotReplayed(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	e.topUp("u", "100.00", "CNY")
	sess := e.session(shop, map[string]any{"amount": "10.00", "currency": "CNY", "option": "goods"})
	e.must(http.StatusOK, e.confirm(sess, "u"))

	// Every refund's guarded update of the payment finds it changed, as if
	// other refunds kept winning the race.
	e.exec(`CREATE FUNCTION collide() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.amount_refunded <> OLD.amount_refunded THEN RETURN NULL; END IF; RETURN NEW; END $$`)
	e.exec(`CREATE TRIGGER collide BEFORE UPDATE ON payments FOR EACH ROW EXECUTE FUNCTION collide()`)
	body := map[string]any{"checkout_session": sess.str("id"), "amount": "4.00"}
	first := e.call("POST", "/v1/refunds", shop.key, body, "Idempotency-Key", "refund-1")
	if first.status != http.StatusConflict || first.errCode() != "refund_contention" {
		t.Fatalf("contended refund: %d %s", first.status, first.raw)
	}

	e.exec(`DROP TRIGGER collide ON payments`)
	retry := e.call("POST", "/v1/refunds", shop.key, body, "Idempotency-Key", "refund-1")
	if retry.status != http.StatusCreated || retry.header.Get("Idempotent-Replayed") != "" || retry.str("amount") != "4.00" {
		t.Fatalf("retry after the contention ended: %d %s (replayed %q)", retry.status, retry.raw, retry.header.Get("Idempotent-Replayed"))
	}
	again := e.call("POST", "/v1/refunds", shop.key, body, "Idempotency-Key", "refund-1")
	if again.status != http.StatusCreated || again.header.Get("Idempotent-Replayed") != "true" || again.str("id") != retry.str("id") {
		t.Fatalf("replay of the refund: %d %s", again.status, again.raw)
	}
	e.mustBalanced()
}

// exec runs SQL against the test database (fault injection).
func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Pool.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}
