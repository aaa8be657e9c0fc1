package bench

import (
	"context"
	"errors"
	"runtime"
	"strings"
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

// TestReportNamesTheHostsWakeUps: "bench all" writes the probe's result on
// its machine line, where a reader compares runs of different hosts.
func TestReportNamesTheHostsWakeUps(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	out := report(context.Background(), Options{DatabaseURL: "postgres://nobody@127.0.0.1:1/none"}, nil)
	line := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "- Machine: ") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no machine line in\n%s", out)
	}
	if named := strings.Contains(line, "a wake-up round trip across two cores"); named != (set.Count() > 1) {
		t.Fatalf("machine line on %d CPUs: %q", set.Count(), line)
	}
}

// TestReportSaysHowPostgreSQLWasReached: bench all's PostgreSQL line says
// whether the benchmarks connected over TCP or a Unix socket, which moved
// the ledger's best rate by about 15 % on one machine.
func TestReportSaysHowPostgreSQLWasReached(t *testing.T) {
	for url, want := range map[string]string{
		"postgres://nobody@127.0.0.1:1/none":               ", reached over tcp\n",
		"postgres://nobody@/none?host=/nonexistent/socket": ", reached over unix socket\n",
	} {
		out := report(context.Background(), Options{DatabaseURL: url}, nil)
		if !strings.Contains(out, "\n- PostgreSQL: ") || !strings.Contains(out, want) {
			t.Fatalf("%s: the PostgreSQL line does not say %q:\n%s", url, want, out)
		}
	}
}
