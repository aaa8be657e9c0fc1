package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// TestMetadataAtTheLimit: an app may give a payment 50 metadata keys, and
// every money movement of it (the payment, its refunds) carries them in the
// ledger beside minipay's own keys, which name the payment, the app and
// the refund truthfully. With 47 or 50 app keys the refund used to exceed
// the ledger's limit and the payment could never be refunded; with 48–50
// the app's own minipay_session went into the ledger unchecked. The
// minipay_ prefix is minipay's: an app using it is refused with a 400.
func TestMetadataAtTheLimit(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	e.topUp("u", "1000.00", "CNY")
	metadata := func(n int) map[string]string {
		md := map[string]string{}
		for i := range n {
			md[fmt.Sprintf("k%02d", i)] = "v"
		}
		return md
	}
	for _, n := range []int{46, 47, 48, 50} {
		sess := e.session(shop, map[string]any{"amount": "10.00", "currency": "CNY", "option": "goods", "metadata": metadata(n)})
		e.must(http.StatusOK, e.confirm(sess, "u"))
		id := sess.str("id")
		re := e.call("POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": id, "amount": "1.00"})
		if re.status != http.StatusCreated {
			t.Fatalf("refund of a payment with %d metadata keys: %d %s", n, re.status, re.raw)
		}
		for _, tr := range []struct{ id string }{{"pay_" + id}, {"refund_" + re.str("id")}} {
			md := e.transferMetadata(tr.id)
			if md["minipay_session"] != id || md["minipay_app"] != shop.app || md["minipay_option"] != "goods" || md["k00"] != "v" {
				t.Fatalf("%d keys: transfer %s metadata %v", n, tr.id, md)
			}
			if tr.id[:7] == "refund_" && md["minipay_refund"] != re.str("id") {
				t.Fatalf("%d keys: refund transfer without its refund: %v", n, md)
			}
		}
	}
	before := e.ledgerCounts()
	for _, c := range []struct{ path, param string }{{"/v1/checkout/sessions", "metadata"}, {"/v1/refunds", "metadata"}} {
		sess := e.session(shop, map[string]any{"amount": "10.00", "currency": "CNY", "option": "goods"})
		body := map[string]any{"amount": "10.00", "currency": "CNY", "option": "goods",
			"metadata": map[string]string{"minipay_session": "cs_someone_else", "minipay_app": "app_other"}}
		if c.path == "/v1/refunds" {
			e.must(http.StatusOK, e.confirm(sess, "u"))
			body = map[string]any{"checkout_session": sess.str("id"), "metadata": map[string]string{"minipay_refund": "re_forged"}}
		}
		r := e.call("POST", c.path, shop.key, body)
		if r.status != http.StatusBadRequest || r.errCode() != "metadata_invalid" {
			t.Fatalf("%s with minipay_ keys: %d %s", c.path, r.status, r.raw)
		}
	}
	if after := e.ledgerCounts(); after[0] != before[0]+1 {
		t.Fatalf("the refused requests moved money: %v → %v", before, after)
	}
	// The ledger's own API keeps the prefix for minipay too.
	r := e.admin("POST", "/v1/ledger/transfers", map[string]any{"code": "adjustment", "metadata": map[string]string{"minipay_refund": "re_x"},
		"postings": []any{map[string]any{"account": "platform:funding:CNY", "debit": "1.00"}, map[string]any{"account": "wallet:u:CNY", "credit": "1.00"}}})
	if r.status != http.StatusBadRequest || r.errCode() != "metadata_invalid" {
		t.Fatalf("an operator's transfer with minipay_ keys: %d %s", r.status, r.raw)
	}
}

// transferMetadata reads a ledger transfer's metadata as the admin sees it.
func (e *env) transferMetadata(id string) map[string]string {
	e.t.Helper()
	r := e.must(http.StatusOK, e.admin("GET", "/v1/ledger/transfers/"+id, nil))
	var md map[string]string
	raw, _ := json.Marshal(r.body["metadata"])
	if err := json.Unmarshal(raw, &md); err != nil {
		e.t.Fatal(err)
	}
	return md
}
