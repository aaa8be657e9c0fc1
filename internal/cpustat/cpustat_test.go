package cpustat

import (
	"os"
	"testing"
	"time"
)

// TestBusyLoopIsCounted spins until this process has used 200 ms of CPU by
// Self's count (however long a busy machine makes that take): /proc must
// have counted about as much.
func TestBusyLoopIsCounted(t *testing.T) {
	self0, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	proc0, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		self, err := Self()
		if err != nil {
			t.Fatal(err)
		}
		if self-self0 >= 200*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Self grew by %s in 30 s of a busy loop", self-self0)
		}
		for start := time.Now(); time.Since(start) < 10*time.Millisecond; {
		}
	}
	proc1, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := proc1 - proc0; d < 150*time.Millisecond || d > 2*time.Second {
		t.Fatalf("/proc counted %s while Self counted at least 200 ms", d)
	}
	if name, err := Name(os.Getpid()); err != nil || name == "" {
		t.Fatalf("Name of this process: %q, %v", name, err)
	}
	if _, err := Process(-1); err == nil {
		t.Fatal("Process(-1) read something")
	}
}
