package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/minipay/minipay/ledger"
)

// TestConfirmRace confirms one session from many goroutines at once, for
// the same user and for different users: it is paid exactly once.
func TestConfirmRace(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	for _, u := range []string{"a", "b", "c"} {
		e.topUp(u, "1000.00", "CNY")
	}
	for round := 0; round < 5; round++ {
		sess := e.session(shop, map[string]any{"amount": "30.00", "currency": "CNY", "option": "goods"})
		var wg sync.WaitGroup
		results := make([]resp, 24)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = e.confirm(sess, []string{"a", "b", "c"}[i%3])
			}()
		}
		wg.Wait()
		payer := ""
		for _, r := range results {
			switch r.status {
			case 200:
				if payer == "" {
					payer = r.str("customer")
				} else if r.str("customer") != payer {
					t.Fatalf("two payers: %s and %s", payer, r.str("customer"))
				}
			case 409:
				if r.errCode() != "session_not_open" {
					t.Fatalf("loser: %s", r.raw)
				}
			default:
				t.Fatalf("racer: %d %s", r.status, r.raw)
			}
		}
		if payer == "" {
			t.Fatal("nobody paid")
		}
	}
	var total int64 // minor units
	for _, u := range []string{"a", "b", "c"} {
		avail, err := ledger.ParseAmount("CNY", strings.Split(e.wallet(u)["CNY"], "/")[0])
		if err != nil {
			t.Fatal(err)
		}
		total += avail
	}
	if want := int64(3000-5*30) * 100; total != want {
		t.Fatalf("wallets hold %d minor units, want %d: a session was paid twice", total, want)
	}
	if n := e.count(`SELECT count(*) FROM balance_transactions WHERE type = 'payment'`); n != 5 {
		t.Fatalf("%d payments recorded, want 5", n)
	}
	if n := e.count(`SELECT count(*) FROM events WHERE type = 'checkout.session.completed'`); n != 5 {
		t.Fatalf("%d completed events, want 5", n)
	}
	e.mustBalanced()
}

// TestRefundRace fires concurrent refunds that together ask for far more
// than was captured: the total never exceeds it, and the fee shares add up.
func TestRefundRace(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"virtual_goods"}, []string{"CNY"})
	e.topUp("u", "100.00", "CNY")
	sess := e.session(shop, map[string]any{"amount": "25.00", "currency": "CNY", "option": "virtual_goods"})
	e.must(http.StatusOK, e.confirm(sess, "u"))
	var wg sync.WaitGroup
	results := make([]resp, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.call("POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": sess.str("id"), "amount": "3.00"})
		}()
	}
	wg.Wait()
	ok := 0
	for _, r := range results {
		switch {
		case r.status == 201:
			ok++
		case r.status == 400 && r.errCode() == "refund_exceeds_remaining", r.status == 409:
		default:
			t.Fatalf("refund racer: %d %s", r.status, r.raw)
		}
	}
	if ok != 8 { // 8 × 3.00 = 24.00 of 25.00
		t.Fatalf("%d refunds of 3.00 succeeded, want 8", ok)
	}
	// The last 1.00, then nothing more.
	e.must(http.StatusCreated, e.call("POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": sess.str("id")}))
	var refunded, feeRefunded, fee int64
	err := e.db.Pool.QueryRow(context.Background(), `SELECT amount_refunded, fee_refunded, fee FROM payments WHERE id = $1`, sess.str("id")).
		Scan(&refunded, &feeRefunded, &fee)
	if err != nil || refunded != 2500 || feeRefunded != fee || fee != 750 {
		t.Fatalf("refunded %d, fee refunded %d of %d (%v)", refunded, feeRefunded, fee, err)
	}
	if n := e.count(`SELECT coalesce(sum(amount), 0)::int FROM refunds WHERE payment_id = $1`, sess.str("id")); n != 2500 {
		t.Fatalf("refund rows sum to %d", n)
	}
	if w := e.wallet("u"); w["CNY"] != "100.00/0.00" {
		t.Fatalf("wallet after full refund %v", w)
	}
	pending, _ := e.balanceOf(shop)
	if pending["CNY"] != "0.00" {
		t.Fatalf("developer keeps %v after a full refund", pending)
	}
	e.mustBalanced()
}

// TestHostileCheckoutInput sends every kind of bad request to the checkout
// routes: each gets its documented 4xx and changes nothing.
func TestHostileCheckoutInput(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods", "tip"}, []string{"CNY", "JPY"})
	other := e.tenant("other", []string{"goods"}, []string{"CNY"})
	e.topUp("u", "100.00", "CNY")
	paid := e.session(shop, map[string]any{"amount": "10.00", "currency": "CNY", "option": "goods"})
	e.must(http.StatusOK, e.confirm(paid, "u"))
	tip := e.session(shop, map[string]any{"amount": "1.00", "currency": "CNY", "option": "tip"})
	e.must(http.StatusOK, e.confirm(tip, "u"))

	bigMeta := map[string]string{}
	for i := 0; i < 51; i++ {
		bigMeta[fmt.Sprintf("k%d", i)] = "v"
	}
	base := func(extra map[string]any) map[string]any {
		b := map[string]any{"amount": "10.00", "currency": "CNY", "option": "goods"}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	type req struct {
		name, method, path, key string
		body                    any
		headers                 []string
		status                  int
		code                    string
	}
	create := "/v1/checkout/sessions"
	cases := []req{
		{"too many decimals", "POST", create, shop.key, base(map[string]any{"amount": "10.001"}), nil, 400, "amount_precision"},
		{"yen decimals", "POST", create, shop.key, base(map[string]any{"amount": "10.5", "currency": "JPY"}), nil, 400, "amount_precision"},
		{"negative", "POST", create, shop.key, base(map[string]any{"amount": "-10.00"}), nil, 400, "amount_invalid"},
		{"zero", "POST", create, shop.key, base(map[string]any{"amount": "0"}), nil, 400, "parameter_invalid"},
		{"huge", "POST", create, shop.key, base(map[string]any{"amount": "99999999999999999999.99"}), nil, 400, "amount_too_large"},
		{"above the option", "POST", create, shop.key, base(map[string]any{"amount": "100000.01"}), nil, 400, "amount_above_maximum"},
		{"below the option", "POST", create, shop.key, base(map[string]any{"amount": "0.001"}), nil, 400, "amount_precision"},
		{"number amount", "POST", create, shop.key, `{"amount": 10, "currency": "CNY", "option": "goods"}`, nil, 400, "invalid_type"},
		{"amount and items", "POST", create, shop.key, base(map[string]any{"line_items": []any{map[string]any{"name": "x", "unit_amount": "1.00", "quantity": 1}}}), nil, 400, "parameter_invalid"},
		{"no amount", "POST", create, shop.key, map[string]any{"currency": "CNY", "option": "goods"}, nil, 400, "parameter_missing"},
		{"unknown option", "POST", create, shop.key, base(map[string]any{"option": "loans"}), nil, 400, "unknown_option"},
		{"option not granted", "POST", create, shop.key, base(map[string]any{"option": "virtual_goods"}), nil, 403, "option_not_enabled"},
		{"currency not granted", "POST", create, shop.key, base(map[string]any{"currency": "USD"}), nil, 403, "currency_not_enabled"},
		{"unknown currency", "POST", create, shop.key, base(map[string]any{"currency": "XXX"}), nil, 400, "unknown_currency"},
		{"metadata keys", "POST", create, shop.key, base(map[string]any{"metadata": bigMeta}), nil, 400, "metadata_invalid"},
		{"metadata value", "POST", create, shop.key, base(map[string]any{"metadata": map[string]string{"k": strings.Repeat("v", 501)}}), nil, 400, "metadata_invalid"},
		{"metadata key length", "POST", create, shop.key, base(map[string]any{"metadata": map[string]string{strings.Repeat("k", 41): "v"}}), nil, 400, "metadata_invalid"},
		{"expires too soon", "POST", create, shop.key, base(map[string]any{"expires_in": 59}), nil, 400, "parameter_invalid"},
		{"expires too late", "POST", create, shop.key, base(map[string]any{"expires_in": 86401}), nil, 400, "parameter_invalid"},
		{"capture method", "POST", create, shop.key, base(map[string]any{"capture_method": "later"}), nil, 400, "parameter_invalid"},
		{"unknown field", "POST", create, shop.key, base(map[string]any{"customer_email": "a@b"}), nil, 400, "unknown_field"},
		{"invalid utf-8", "POST", create, shop.key, "{\"amount\": \"1.00\", \"currency\": \"CNY\", \"option\": \"goods\", \"client_reference_id\": \"\xc3\x28\"}", nil, 400, "invalid_utf8"},
		{"wrong content type", "POST", create, shop.key, `{"amount": "1.00"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"host key creates", "POST", create, e.hostKey, base(nil), nil, 403, "forbidden"},
		{"another app reads", "GET", "/v1/checkout/sessions/" + paid.str("id"), other.key, nil, nil, 404, "session_not_found"},
		{"another app cancels", "POST", "/v1/checkout/sessions/" + paid.str("id") + "/cancel", other.key, nil, nil, 404, "session_not_found"},
		{"another app refunds", "POST", "/v1/refunds", other.key, map[string]any{"checkout_session": paid.str("id")}, nil, 404, "session_not_found"},
		{"refund too much", "POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": paid.str("id"), "amount": "10.01"}, nil, 400, "refund_exceeds_remaining"},
		{"refund decimals", "POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": paid.str("id"), "amount": "1.001"}, nil, 400, "amount_precision"},
		{"refund negative", "POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": paid.str("id"), "amount": "-1.00"}, nil, 400, "amount_invalid"},
		{"refund a tip", "POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": tip.str("id")}, nil, 422, "not_refundable"},
		{"refund unpaid", "POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": e.session(shop, base(nil)).str("id")}, nil, 409, "payment_not_captured"},
		{"wrong client secret", "POST", "/v1/checkout/sessions/" + paid.str("id") + "/confirm", e.hostKey, map[string]any{"user_id": "u", "client_secret": "cs_nope"}, nil, 400, "client_secret_invalid"},
		{"bad user id", "POST", "/v1/checkout/sessions/" + paid.str("id") + "/confirm", e.hostKey, map[string]any{"user_id": "no spaces", "client_secret": "x"}, nil, 400, "user_id_invalid"},
		{"app key confirms", "POST", "/v1/checkout/sessions/" + paid.str("id") + "/confirm", shop.key, map[string]any{"user_id": "u", "client_secret": paid.str("client_secret")}, nil, 403, "forbidden"},
		{"top-up decimals", "POST", "/v1/wallets/u/topups", e.hostKey, map[string]any{"amount": "1.001", "currency": "CNY"}, nil, 400, "amount_precision"},
		{"top-up zero", "POST", "/v1/wallets/u/topups", e.hostKey, map[string]any{"amount": "0.00", "currency": "CNY"}, nil, 400, "amount_not_positive"},
		{"top-up app key", "POST", "/v1/wallets/u/topups", shop.key, map[string]any{"amount": "1.00", "currency": "CNY"}, nil, 403, "forbidden"},
		{"unknown wallet", "GET", "/v1/wallets/nobody", e.hostKey, nil, nil, 404, "wallet_not_found"},
		{"app with unknown option", "POST", "/v1/apps", e.adminKey, map[string]any{"developer": shop.dev, "name": "x", "options": []string{"loans"}, "currencies": []string{"CNY"}}, nil, 400, "unknown_option"},
		{"app of unknown developer", "POST", "/v1/apps", e.adminKey, map[string]any{"developer": "dev_nope", "name": "x", "options": []string{"goods"}, "currencies": []string{"CNY"}}, nil, 404, "developer_not_found"},
	}
	counts := func() string {
		return fmt.Sprint(e.count(`SELECT count(*) FROM checkout_sessions`), e.count(`SELECT count(*) FROM events`),
			e.count(`SELECT count(*) FROM ledger_transfers`), e.count(`SELECT count(*) FROM refunds`), e.count(`SELECT count(*) FROM apps`))
	}
	before := counts()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.call(c.method, c.path, c.key, c.body, c.headers...)
			if r.status != c.status || r.errCode() != c.code {
				t.Fatalf("got %d %s, want %d %s: %s", r.status, r.errCode(), c.status, c.code, r.raw)
			}
		})
	}
	if after := counts(); after != before {
		t.Fatalf("bad requests changed state: %s -> %s", before, after)
	}
	e.mustBalanced()
}

// TestCheckoutIdempotency: the same Idempotency-Key with the same body
// replays; with another body it is 409 naming the differing fields; keys
// belong to their app.
func TestCheckoutIdempotency(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	other := e.tenant("other", []string{"goods"}, []string{"CNY"})
	body := map[string]any{"amount": "5.00", "currency": "CNY", "option": "goods"}
	a := e.must(201, e.call("POST", "/v1/checkout/sessions", shop.key, body, "Idempotency-Key", "order-1"))
	b := e.must(201, e.call("POST", "/v1/checkout/sessions", shop.key, body, "Idempotency-Key", "order-1"))
	if a.str("id") != b.str("id") || b.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay made another session: %s %s", a.str("id"), b.str("id"))
	}
	c := e.call("POST", "/v1/checkout/sessions", shop.key, map[string]any{"amount": "6.00", "currency": "CNY", "option": "goods"}, "Idempotency-Key", "order-1")
	if c.status != 409 || c.errCode() != "idempotency_conflict" || c.errParam() != "amount" {
		t.Fatalf("conflict: %d %s", c.status, c.raw)
	}
	d := e.must(201, e.call("POST", "/v1/checkout/sessions", other.key, body, "Idempotency-Key", "order-1"))
	if d.str("id") == a.str("id") {
		t.Fatal("two apps share an idempotency key")
	}
	if n := e.count(`SELECT count(*) FROM checkout_sessions`); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
	// A refund retried with its key after success does not refund twice.
	e.topUp("u", "10.00", "CNY")
	e.must(200, e.confirm(a, "u"))
	for i := 0; i < 3; i++ {
		e.must(201, e.call("POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": a.str("id"), "amount": "1.00"}, "Idempotency-Key", "refund-1"))
	}
	if w := e.wallet("u"); w["CNY"] != "6.00/0.00" {
		t.Fatalf("wallet %v: a retried refund paid twice", w)
	}
}

func TestKeysAndPseudonyms(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	other := e.tenant("other", []string{"goods"}, []string{"CNY"})
	e.topUp("u", "10.00", "CNY")
	s1 := e.session(shop, map[string]any{"amount": "1.00", "currency": "CNY", "option": "goods"})
	s2 := e.session(other, map[string]any{"amount": "1.00", "currency": "CNY", "option": "goods"})
	c1 := e.must(200, e.confirm(s1, "u")).str("customer")
	c2 := e.must(200, e.confirm(s2, "u")).str("customer")
	if c1 == c2 || !strings.HasPrefix(c1, "ou_") || len(c1) != 29 {
		t.Fatalf("pseudonyms %s %s: must differ per app", c1, c2)
	}
	if again := e.apps.Pseudonym(shop.app, "u"); again != c1 {
		t.Fatalf("pseudonym not stable: %s vs %s", again, c1)
	}

	roll := e.must(200, e.admin("POST", "/v1/apps/"+shop.app+"/keys/roll", nil))
	newKey := roll.str("secret_key")
	for _, k := range []string{shop.key, newKey} {
		if r := e.call("GET", "/v1/checkout/sessions", k, nil); r.status != 200 {
			t.Fatalf("key during the grace period: %d", r.status)
		}
	}
	if _, err := e.db.Pool.Exec(context.Background(), `UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE app_id = $1 AND expires_at IS NOT NULL`, shop.app); err != nil {
		t.Fatal(err)
	}
	e2 := newEnvSharing(e) // a fresh process: no cached keys
	if r := e2.call("GET", "/v1/checkout/sessions", shop.key, nil); r.status != 401 {
		t.Fatalf("old key after the grace period: %d", r.status)
	}
	if r := e2.call("GET", "/v1/checkout/sessions", newKey, nil); r.status != 200 {
		t.Fatalf("new key: %d", r.status)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnvWith(t, 5)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	limited := 0
	for i := 0; i < 30; i++ {
		r := e.call("GET", "/v1/monetization_options", shop.key, nil)
		if r.status == 429 {
			limited++
			if r.header.Get("Retry-After") == "" || r.errCode() != "rate_limited" {
				t.Fatalf("429 without Retry-After: %s", r.raw)
			}
		}
	}
	if limited == 0 {
		t.Fatal("30 requests at a limit of 5/s were all served")
	}
	if r := e.call("GET", "/v1/ledger/trial_balance", e.adminKey, nil); r.status != 200 {
		t.Fatalf("another key is limited too: %d", r.status)
	}
}

// TestConfirmAfterAnotherReplica confirms, on the replica that created a
// session (and remembers it open), sessions that another replica has
// canceled or paid meanwhile: the answers must be what the database says,
// never a second payment and never the ledger's complaint about funds when
// the session is no longer payable.
func TestConfirmAfterAnotherReplica(t *testing.T) {
	e := newEnv(t)
	other := newEnvSharing(e)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	e.topUp("rich", "100.00", "CNY")
	e.topUp("poor", "1.00", "CNY")

	canceled := e.session(shop, map[string]any{"amount": "5.00", "currency": "CNY", "option": "goods"})
	other.must(http.StatusOK, other.call("POST", "/v1/checkout/sessions/"+canceled.str("id")+"/cancel", shop.key, nil))
	if r := e.confirm(canceled, "poor"); r.status != 409 || r.errCode() != "session_canceled" {
		t.Fatalf("confirm of a session canceled elsewhere, without funds: %d %s", r.status, r.raw)
	}
	if r := e.confirm(canceled, "rich"); r.status != 409 || r.errCode() != "session_canceled" {
		t.Fatalf("confirm of a session canceled elsewhere: %d %s", r.status, r.raw)
	}

	paid := e.session(shop, map[string]any{"amount": "5.00", "currency": "CNY", "option": "goods"})
	first := other.must(http.StatusOK, other.confirm(paid, "rich"))
	again := e.must(http.StatusOK, e.confirm(paid, "rich")) // the same user again, on the replica that remembers it open
	if again.str("completed_at") != first.str("completed_at") || again.str("customer") != first.str("customer") {
		t.Fatalf("confirm again answered another payment:\nfirst %s\nagain %s", first.raw, again.raw)
	}
	if r := e.confirm(paid, "poor"); r.status != 409 || r.errCode() != "session_not_open" {
		t.Fatalf("confirm of a session paid elsewhere, by another user: %d %s", r.status, r.raw)
	}
	if n := e.count(`SELECT count(*) FROM ledger_transfers WHERE id = $1`, "pay_"+paid.str("id")); n != 1 {
		t.Fatalf("%d payment transfers", n)
	}
	if n := e.count(`SELECT count(*) FROM events WHERE type = 'checkout.session.completed' AND object_id = $1`, paid.str("id")); n != 1 {
		t.Fatalf("%d completed events", n)
	}
	if w := e.wallet("rich")["CNY"]; w != "95.00/0.00" {
		t.Fatalf("rich's wallet %s, want 95.00 available", w)
	}
}
