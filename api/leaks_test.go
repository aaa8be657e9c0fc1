package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/minipay/minipay/internal/idempotency"
)

// TestErrorsLeakNoInternals drives every error an app key, or a mini-app
// through its host, can get in the checkout, refund and wallet flows, and
// checks each answer for the host's user id (which an app must never see:
// it knows the user only as ou_…) and for the ledger's internal names:
// account codes and transfer ids. The host's own answers may name its own
// user, never the ledger's accounts.
func TestErrorsLeakNoInternals(t *testing.T) {
	e := newEnv(t)
	const user = "usr_SECRET_kai_42"
	shop := e.tenant("shop", []string{"goods", "tip"}, []string{"CNY"})
	other := e.tenant("other", []string{"goods"}, []string{"CNY"})
	e.topUp(user, "100.00", "CNY")
	// The ledger's names: account codes (chart) and transfer ids.
	internals := []string{"wallet:" + user, "wallet:usr", "dev:dev_", "platform:", "pay_cs_", "refund_re_", "payout_", "topup_", "postings["}
	var appAnswers, hostAnswers []resp
	app := func(method, path string, body any) resp {
		r := e.call(method, path, shop.key, body)
		appAnswers = append(appAnswers, r)
		return r
	}
	host := func(method, path string, body any) resp {
		r := e.host(method, path, body)
		hostAnswers = append(hostAnswers, r)
		return r
	}
	session := func(body map[string]any) resp { return e.session(shop, body) }
	confirm := func(s resp) resp {
		return host("POST", "/v1/checkout/sessions/"+s.str("id")+"/confirm", map[string]any{"user_id": user, "client_secret": s.str("client_secret")})
	}

	// Confirm: more than the wallet holds, a wrong secret, canceled, paid.
	big := session(map[string]any{"amount": "500.00", "currency": "CNY", "option": "goods"})
	if r := confirm(big); r.status != http.StatusPaymentRequired {
		t.Fatalf("confirm beyond the wallet: %d %s", r.status, r.raw)
	}
	host("POST", "/v1/checkout/sessions/"+big.str("id")+"/confirm", map[string]any{"user_id": user, "client_secret": "cs_nope_secret_x"})
	app("POST", "/v1/checkout/sessions/"+big.str("id")+"/cancel", map[string]any{})
	confirm(big)
	paid := session(map[string]any{"amount": "10.00", "currency": "CNY", "option": "goods"})
	e.must(http.StatusOK, confirm(paid))
	host("POST", "/v1/checkout/sessions/"+paid.str("id")+"/confirm", map[string]any{"user_id": "usr_someone_else", "client_secret": paid.str("client_secret")})

	// Sessions: bad input, another app's, wrong state.
	app("POST", "/v1/checkout/sessions", map[string]any{"amount": "1.001", "currency": "CNY", "option": "goods"})
	app("POST", "/v1/checkout/sessions", map[string]any{"amount": "99999999999999999999", "currency": "CNY", "option": "goods"})
	e.call("GET", "/v1/checkout/sessions/"+paid.str("id"), other.key, nil)
	app("POST", "/v1/checkout/sessions/"+paid.str("id")+"/cancel", map[string]any{})
	app("POST", "/v1/checkout/sessions/"+paid.str("id")+"/capture", map[string]any{})
	held := session(map[string]any{"amount": "5.00", "currency": "CNY", "option": "goods", "capture_method": "manual"})
	e.must(http.StatusOK, confirm(held))
	e.must(http.StatusOK, e.call("POST", "/v1/checkout/sessions/"+held.str("id")+"/void", shop.key, map[string]any{}))
	app("POST", "/v1/checkout/sessions/"+held.str("id")+"/capture", map[string]any{})

	// Refunds: not captured, too much, not refundable, unknown, bad metadata.
	app("POST", "/v1/refunds", map[string]any{"checkout_session": big.str("id")})
	app("POST", "/v1/refunds", map[string]any{"checkout_session": paid.str("id"), "amount": "10.01"})
	app("POST", "/v1/refunds", map[string]any{"checkout_session": "cs_nope"})
	app("POST", "/v1/refunds", map[string]any{"checkout_session": paid.str("id"), "metadata": map[string]string{"": "x"}})
	tip := session(map[string]any{"amount": "1.00", "currency": "CNY", "option": "tip"})
	e.must(http.StatusOK, confirm(tip))
	app("POST", "/v1/refunds", map[string]any{"checkout_session": tip.str("id")})
	app("GET", "/v1/refunds/re_nope", nil)
	// Refunds the ledger refuses. Its transfer id is taken by another
	// transfer (the ledger names the transfer):
	refundID := idempotency.DeriveID("re", shop.app, "refund-taken")
	e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/accounts", map[string]any{"code": "ops:a", "currency": "CNY", "normal_balance": "debit"}))
	e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/accounts", map[string]any{"code": "ops:b", "currency": "CNY", "normal_balance": "credit"}))
	e.must(http.StatusCreated, e.admin("POST", "/v1/ledger/transfers", map[string]any{"id": "refund_" + refundID, "code": "adjustment",
		"postings": []any{map[string]any{"account": "ops:a", "debit": "1.00"}, map[string]any{"account": "ops:b", "credit": "1.00"}}}))
	if r := e.call("POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": paid.str("id"), "amount": "1.00"},
		"Idempotency-Key", "refund-taken"); r.status != http.StatusConflict {
		t.Fatalf("a refund whose transfer id is taken: %d %s", r.status, r.raw)
	} else {
		appAnswers = append(appAnswers, r)
	}
	// The payer's wallet cannot be found (the ledger names the account,
	// and with it the host's user id), on a replica that has not cached it:
	e.exec(`UPDATE ledger_accounts SET code = 'moved:' || code WHERE code LIKE 'wallet:%'`)
	fresh := newEnvSharing(e)
	if r := fresh.call("POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": paid.str("id"), "amount": "1.00"}); r.status < 400 || r.status >= 500 {
		t.Fatalf("a refund to a wallet the ledger cannot find: %d %s", r.status, r.raw)
	} else {
		appAnswers = append(appAnswers, r)
	}
	e.exec(`UPDATE ledger_accounts SET code = substr(code, 7) WHERE code LIKE 'moved:%'`)

	// Wallets (host): unknown user, bad user id, bad amount, too much.
	host("POST", "/v1/wallets/"+user+"/topups", map[string]any{"amount": "92233720368547758.07", "currency": "CNY"})
	host("GET", "/v1/wallets/usr_nobody", nil)
	host("POST", "/v1/wallets/bad%20id/topups", map[string]any{"amount": "1.00", "currency": "CNY"})
	host("POST", "/v1/wallets/"+user+"/topups", map[string]any{"amount": "-1.00", "currency": "CNY"})

	check := func(who string, answers []resp, forbidden []string) {
		t.Helper()
		n := 0
		for _, r := range answers {
			if r.status < 400 {
				continue
			}
			n++
			for _, f := range forbidden {
				if strings.Contains(string(r.raw), f) {
					t.Errorf("%s got %q in: %d %s", who, f, r.status, r.raw)
				}
			}
		}
		if n < len(answers)/2 {
			t.Fatalf("%s: only %d of %d calls failed; the test does not test", who, n, len(answers))
		}
	}
	check("the app", appAnswers, append(internals, user))
	check("the host (and through it the mini-app)", hostAnswers, internals)
}
