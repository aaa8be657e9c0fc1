package main

import "runtime/debug"

// minipay's garbage collector settings when the environment sets no GOGC.
//
// minipay's live heap is small and bounded (its caches are), while a busy
// server allocates quickly: at Go's default GOGC=100 the collector ran
// several times a second and took about a tenth of serve's CPU under load,
// and each cycle shrank the stacks of idle connection goroutines, which the
// next request grew again. At 400 the heap may grow to five times what is
// live before a collection instead of twice; the memory limit caps what
// that costs when much is live at once (the renewer's batches in flight),
// by collecting more often near it. docs/operations.md has the figures.
const (
	gcPercent   = 400
	memoryLimit = 256 << 20 // bytes, a soft limit (GOMEMLIMIT)
)

// tuneGC applies gcPercent, and memoryLimit unless GOMEMLIMIT is set, when
// GOGC is unset. An operator's GOGC leaves both as the runtime set them.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}
