package webhooks

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestEventDataRaw: an object given already encoded is stored as the same
// data as the object itself.
func TestEventDataRaw(t *testing.T) {
	obj := map[string]any{"id": "cs_1", "version": 2, "metadata": map[string]string{"a": "<b>&"}}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	fromObj, err := eventData(Event{Object: obj})
	if err != nil {
		t.Fatal(err)
	}
	fromRaw, err := eventData(Event{Object: json.RawMessage(raw)})
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(fromObj, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(fromRaw, &b); err != nil {
		t.Fatalf("data around a raw object is not JSON: %v: %s", err, fromRaw)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("raw object stored as %s, want %s", fromRaw, fromObj)
	}
}
