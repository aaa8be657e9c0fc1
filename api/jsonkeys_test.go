package api_test

import (
	"net/http"
	"testing"
)

// TestJSONKeysExact: encoding/json matches field names regardless of case
// and keeps the last of duplicate names, while the idempotency fingerprint
// keeps every member. A body such as {"amount":"1.00","AMOUNT":"9.00"}
// would refund 9.00 under a key first used for 1.00. Duplicate names and
// names in the wrong case are refused, at every depth, and change nothing.
func TestJSONKeysExact(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	e.topUp("u", "100.00", "CNY")
	sess := e.session(shop, map[string]any{"amount": "10.00", "currency": "CNY", "option": "goods"})
	e.must(http.StatusOK, e.confirm(sess, "u"))
	id := sess.str("id")
	before := e.ledgerCounts()
	for _, c := range []struct{ path, body, param string }{
		{"/v1/refunds", `{"checkout_session":"` + id + `","amount":"1.00","AMOUNT":"9.00"}`, "AMOUNT"},
		{"/v1/refunds", `{"checkout_session":"` + id + `","Amount":"9.00"}`, "Amount"},
		{"/v1/refunds", `{"checkout_session":"` + id + `","amount":"1.00","amount":"9.00"}`, "amount"},
		{"/v1/refunds", `{"checkout_session":"` + id + `","metadata":{"a":"1","a":"2"}}`, "metadata.a"},
		{"/v1/refunds", `{"checkout_session":"` + id + `","amount":"1.00","\u0061mount":"9.00"}`, "amount"},
		{"/v1/refunds", `{"checkout_session":"` + id + `","metadata":{"a/b":"1","a\/b":"2"}}`, "metadata.a/b"},
		{"/v1/checkout/sessions", `{"currency":"CNY","option":"goods","line_items":[{"name":"x","unit_amount":"1.00","quantity":1,"Quantity":9}]}`, "line_items[0].Quantity"},
		{"/v1/checkout/sessions", `{"amount":"1.00","currency":"CNY","option":"goods","metadata":{"k":"v"},"METADATA":{"k":"w"}}`, "METADATA"},
	} {
		r := e.call("POST", c.path, shop.key, c.body)
		if r.status != http.StatusBadRequest || r.errParam() != c.param {
			t.Errorf("%s %s: %d %s; want 400 with param %s", c.path, c.body, r.status, r.raw, c.param)
		}
	}
	if after := e.ledgerCounts(); after != before {
		t.Fatalf("a refused body moved money: %v → %v", before, after)
	}
	if n := e.count(`SELECT count(*) FROM checkout_sessions`); n != 1 {
		t.Fatalf("%d sessions, want the one", n)
	}
	// Metadata keys that differ only in case are different keys.
	ok := e.call("POST", "/v1/refunds", shop.key, `{"checkout_session":"`+id+`","amount":"1.00","metadata":{"a":"1","A":"2"}}`)
	if ok.status != http.StatusCreated || ok.body["metadata"].(map[string]any)["A"] != "2" {
		t.Fatalf("metadata keys a and A: %d %s", ok.status, ok.raw)
	}
}
