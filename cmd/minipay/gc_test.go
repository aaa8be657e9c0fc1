package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestTuneGC checks that minipay sets its collector's target and memory
// limit only where the operator has not chosen them.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	reset := func() {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	}
	check := func(name string, wantPercent int, wantLimit int64) {
		t.Helper()
		if got := debug.SetGCPercent(100); got != wantPercent {
			t.Errorf("%s: GOGC in force %d, want %d", name, got, wantPercent)
		}
		if got := debug.SetMemoryLimit(-1); got != wantLimit {
			t.Errorf("%s: memory limit in force %d, want %d", name, got, wantLimit)
		}
	}

	reset()
	tuneGC(env(nil))
	check("nothing set", gcPercent, memoryLimit)

	reset()
	debug.SetMemoryLimit(1 << 30) // as the runtime does for GOMEMLIMIT=1GiB
	tuneGC(env(map[string]string{"GOMEMLIMIT": "1GiB"}))
	check("GOMEMLIMIT set", gcPercent, 1<<30)

	reset()
	debug.SetGCPercent(150) // as the runtime does for GOGC=150
	tuneGC(env(map[string]string{"GOGC": "150"}))
	check("GOGC set", 150, math.MaxInt64)
}
