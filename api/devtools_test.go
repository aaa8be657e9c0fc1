package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/minipay/minipay/sandbox"
)

// TestTriggerEveryType: in a sandbox, each triggerable event type makes
// real objects and a real event of that type, visible in the app's event
// log and not in another app's.
func TestTriggerEveryType(t *testing.T) {
	e := newSandboxEnv(t)
	a := e.tenant("trigger", []string{"goods", "virtual_goods", "tip"}, []string{"CNY"})
	other := e.tenant("bystander", []string{"goods"}, []string{"CNY"})
	for _, tt := range sandbox.Types() {
		typ := tt[0]
		t.Run(typ, func(t *testing.T) {
			r := e.must(http.StatusOK, e.call("POST", "/v1/test_helpers/trigger", a.key, map[string]string{"event_type": typ}))
			var out sandbox.Result
			if err := json.Unmarshal(r.raw, &out); err != nil || out.EventType != typ || len(out.Objects) == 0 {
				t.Fatalf("trigger answered %s", r.raw)
			}
			events := e.must(http.StatusOK, e.call("GET", "/v1/events?type="+typ+"&limit=1", a.key, nil))
			data, _ := events.body["data"].([]any)
			if len(data) != 1 {
				t.Fatalf("no %s event after the trigger: %s", typ, events.raw)
			}
			obj := data[0].(map[string]any)["data"].(map[string]any)["object"].(map[string]any)
			if !madeBy(out, obj["id"].(string)) {
				t.Fatalf("the %s event is about %v, not an object the trigger made (%v)", typ, obj["id"], out.Objects)
			}
			if theirs := e.must(http.StatusOK, e.call("GET", "/v1/events?type="+typ, other.key, nil)); len(theirs.body["data"].([]any)) != 0 {
				t.Fatalf("another app sees the trigger's %s event", typ)
			}
		})
	}
}

func madeBy(r sandbox.Result, objectID string) bool {
	for _, o := range r.Objects {
		if o.ID == objectID {
			return true
		}
	}
	return false
}

// TestTriggerOutsideSandbox: without MINIPAY_SANDBOX every trigger is
// refused and nothing is made.
func TestTriggerOutsideSandbox(t *testing.T) {
	e := newEnv(t)
	a := e.tenant("prod", []string{"goods"}, []string{"CNY"})
	before := e.ledgerCounts()
	r := e.must(http.StatusForbidden, e.call("POST", "/v1/test_helpers/trigger", a.key, map[string]string{"event_type": "checkout.session.completed"}))
	if r.errCode() != "sandbox_only" {
		t.Fatalf("outside a sandbox: %s", r.raw)
	}
	if e.ledgerCounts() != before {
		t.Fatal("a refused trigger moved money")
	}
	sessions := e.must(http.StatusOK, e.call("GET", "/v1/checkout/sessions", a.key, nil))
	if len(sessions.body["data"].([]any)) != 0 {
		t.Fatal("a refused trigger created a session")
	}
	e.must(http.StatusForbidden, e.call("POST", "/v1/test_helpers/trigger", e.hostKey, map[string]string{"event_type": "checkout.session.completed"}))
}

func TestTriggerUnknownType(t *testing.T) {
	e := newSandboxEnv(t)
	a := e.tenant("typo", []string{"goods"}, []string{"CNY"})
	r := e.must(http.StatusBadRequest, e.call("POST", "/v1/test_helpers/trigger", a.key, map[string]string{"event_type": "checkout.session.complete"}))
	if r.errCode() != "event_type_not_triggerable" || r.errParam() != "event_type" {
		t.Fatalf("a misspelt type: %s", r.raw)
	}
}

// TestCurrentApp: an app key reads its own app; other keys may not.
func TestCurrentApp(t *testing.T) {
	e := newEnv(t)
	a := e.tenant("me", []string{"goods"}, []string{"CNY"})
	r := e.must(http.StatusOK, e.call("GET", "/v1/app", a.key, nil))
	if r.str("id") != a.app || r.str("developer") != a.dev || r.str("secret_key") != "" {
		t.Fatalf("GET /v1/app: %s", r.raw)
	}
	e.must(http.StatusForbidden, e.call("GET", "/v1/app", e.adminKey, nil))
}
