package main

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC checks that minipay raises GOGC only when the operator has not
// chosen one.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	unset := func(string) string { return "" }
	if got := tuneGC(unset); got != gcPercent {
		t.Fatalf("GOGC unset: %d, want %d", got, gcPercent)
	}
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Fatalf("the runtime's GOGC is %d, want %d", got, gcPercent)
	}
	debug.SetGCPercent(150) // as the runtime does for GOGC=150
	set := func(k string) string {
		if k == "GOGC" {
			return "150"
		}
		return ""
	}
	if got := tuneGC(set); got != 150 {
		t.Fatalf("GOGC=150: %d, want 150 left alone", got)
	}
	if got := debug.SetGCPercent(100); got != 150 {
		t.Fatalf("the runtime's GOGC is %d after GOGC=150, want 150", got)
	}
}
