package sandbox

import (
	"slices"
	"testing"

	"github.com/minipay/minipay/webhooks"
)

// untriggerable lists the event types no trigger makes yet, each with why.
// A new event type gets an entry in triggers (sandbox.go) or, until then,
// here.
var untriggerable = map[string]string{}

// TestEveryEventTypeTriggerable: minipay trigger can make every event type
// minipay sends, but those listed in untriggerable; and each type has one
// trigger.
func TestEveryEventTypeTriggerable(t *testing.T) {
	var have []string
	for _, tr := range triggers {
		if slices.Contains(have, tr.event) {
			t.Errorf("two triggers for %s", tr.event)
		}
		have = append(have, tr.event)
		if !slices.Contains(webhooks.Types, tr.event) {
			t.Errorf("a trigger for %s, which is not an event type", tr.event)
		}
	}
	for _, typ := range webhooks.Types {
		if !slices.Contains(have, typ) && untriggerable[typ] == "" {
			t.Errorf("no trigger makes %s: add one to triggers in sandbox/sandbox.go (or, with a reason, to untriggerable)", typ)
		}
	}
}
