package main

import "runtime/debug"

// gcPercent is minipay's GOGC when the environment does not set one.
//
// minipay's live heap is small and bounded (its caches are), while a busy
// server allocates quickly: at Go's default of 100 the collector ran several
// times a second and took about a tenth of serve's CPU under load, and each
// cycle shrank the stacks of idle connection goroutines, which the next
// request grew again. At 400 the heap may grow to five times what is live
// before a collection instead of twice: serve's peak RSS at 2,400
// checkouts/s went from 65 MB to 164 MB and its CPU per checkout down by
// about 10 % (docs/operations.md).
const gcPercent = 400

// tuneGC applies gcPercent unless GOGC is set, which the runtime has then
// applied already; it returns the percent in force.
func tuneGC(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		old := debug.SetGCPercent(100)
		debug.SetGCPercent(old)
		return old
	}
	debug.SetGCPercent(gcPercent)
	return gcPercent
}
