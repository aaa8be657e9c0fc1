package bench

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWakeRoundTrip times the host's wake-ups (on two CPUs or more; on one
// it must say so) and leaves no thread of the caller pinned: after it, a
// thread locked by the test may still run on every CPU it could before.
func TestWakeRoundTrip(t *testing.T) {
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	rt, err := wakeRoundTrip(500)
	if errors.Is(err, errOneCPU) && before.Count() < 2 {
		return // nothing to time on one CPU, and nothing was started
	}
	if err != nil {
		t.Fatal(err)
	}
	if rt <= 0 || rt > time.Second {
		t.Fatalf("round trip %v", rt)
	}
	t.Logf("wake-up round trip across two CPUs: %v", rt)
	for range 8 { // the probe's threads ended; none was handed back narrowed
		done := make(chan unix.CPUSet)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var now unix.CPUSet
			_ = unix.SchedGetaffinity(0, &now)
			done <- now
		}()
		if now := <-done; now.Count() != before.Count() {
			t.Fatalf("a thread runs on %d CPUs after the probe, %d before", now.Count(), before.Count())
		}
	}
}
