package api_test

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// The platform enables an option for an app that already sells: the app
// sells through it at once, and another replica follows within its cache's
// time. An option taken away is refused for new sales, while a payment made
// under it stays refundable. Bad changes are refused and change nothing.
func TestUpdateAppOptions(t *testing.T) {
	e := newEnv(t)
	other := newEnvSharing(e) // a second replica over the same database
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	tip := map[string]any{"amount": "1.00", "currency": "CNY", "option": "tip"}
	goods := map[string]any{"amount": "5.00", "currency": "CNY", "option": "goods"}

	if r := other.call("POST", "/v1/checkout/sessions", shop.key, tip); r.status != http.StatusForbidden || r.errCode() != "option_not_enabled" {
		t.Fatalf("tip before it was enabled: %d %s", r.status, r.raw)
	}
	app := e.must(http.StatusOK, e.admin("PATCH", "/v1/apps/"+shop.app, map[string]any{"options": []string{"goods", "tip"}}))
	if opts := stringList(app.body["options"]); !slices.Equal(opts, []string{"goods", "tip"}) || app.str("name") != "shop app" ||
		!slices.Equal(stringList(app.body["currencies"]), []string{"CNY"}) {
		t.Fatalf("updated app: %s", app.raw)
	}
	e.session(shop, tip) // this replica at once
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := other.call("POST", "/v1/checkout/sessions", shop.key, tip)
		if r.status == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other replica still refuses tip after 15s: %d %s", r.status, r.raw)
		}
		time.Sleep(200 * time.Millisecond)
	}

	e.topUp("u1", "10.00", "CNY")
	paid := e.session(shop, goods)
	e.must(http.StatusOK, e.confirm(paid, "u1"))
	plan := e.must(http.StatusCreated, e.call("POST", "/v1/plans", shop.key, map[string]any{"name": "Box", "amount": "3.00",
		"currency": "CNY", "option": "goods", "interval": "month"}))
	subscribe := func() resp {
		return e.call("POST", "/v1/subscriptions", shop.key, map[string]any{"plan": plan.str("id")})
	}
	sub := e.must(http.StatusCreated, subscribe())

	e.must(http.StatusOK, e.admin("PATCH", "/v1/apps/"+shop.app, map[string]any{"options": []string{"tip"}, "name": "tips only"}))
	if r := e.call("POST", "/v1/checkout/sessions", shop.key, goods); r.status != http.StatusForbidden || r.errCode() != "option_not_enabled" {
		t.Fatalf("goods after it was taken away: %d %s", r.status, r.raw)
	}
	if r := subscribe(); r.status != http.StatusForbidden || r.errCode() != "option_not_enabled" {
		t.Fatalf("a new subscription to a goods plan after goods was taken away: %d %s", r.status, r.raw)
	}
	// What was sold before stays: the payment is refundable, the agreement
	// can still be signed.
	e.must(http.StatusCreated, e.call("POST", "/v1/refunds", shop.key, map[string]any{"checkout_session": paid.str("id"), "amount": "2.00"}))
	e.must(http.StatusOK, e.host("POST", "/v1/subscriptions/"+sub.str("id")+"/sign",
		map[string]any{"user_id": "u1", "client_secret": sub.str("client_secret")}))

	for _, c := range []struct {
		name string
		body map[string]any
		code string
	}{
		{"no options", map[string]any{"options": []string{}}, "parameter_invalid"},
		{"unknown option", map[string]any{"options": []string{"loans"}}, "unknown_option"},
		{"unknown currency", map[string]any{"currencies": []string{"XXX1"}}, ""},
		{"no currencies", map[string]any{"currencies": []string{}}, "parameter_invalid"},
		{"blank name", map[string]any{"name": " "}, "parameter_invalid"},
		{"unknown field", map[string]any{"developer": "dev_other"}, ""},
	} {
		r := e.admin("PATCH", "/v1/apps/"+shop.app, c.body)
		if r.status != http.StatusBadRequest || c.code != "" && r.errCode() != c.code {
			t.Errorf("%s: %d %s, want 400 %s", c.name, r.status, r.raw, c.code)
		}
	}
	if r := e.admin("PATCH", "/v1/apps/app_nope", map[string]any{"name": "x"}); r.status != http.StatusNotFound {
		t.Errorf("unknown app: %d %s", r.status, r.raw)
	}
	if r := e.call("PATCH", "/v1/apps/"+shop.app, shop.key, map[string]any{"options": []string{"goods", "tip"}}); r.status != http.StatusForbidden {
		t.Errorf("the app's own key changed its options: %d %s", r.status, r.raw)
	}
	app = e.must(http.StatusOK, e.admin("GET", "/v1/apps/"+shop.app, nil))
	if !slices.Equal(stringList(app.body["options"]), []string{"tip"}) || app.str("name") != "tips only" ||
		!slices.Equal(stringList(app.body["currencies"]), []string{"CNY"}) {
		t.Fatalf("refused changes changed the app: %s", app.raw)
	}
}

// stringList is a JSON array of strings.
func stringList(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}
