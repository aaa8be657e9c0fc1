package settlement

import (
	"context"
	"testing"
	"time"
)

// TestFinishingOutlivesItsParent: a scheduled run's context does not end
// with the scheduler's (serve shutting down) but grace later, or when the
// run is done.
func TestFinishingOutlivesItsParent(t *testing.T) {
	parent, stop := context.WithCancel(context.Background())
	run, cancel := finishing(parent, time.Hour)
	stop()
	time.Sleep(20 * time.Millisecond) // let the parent's AfterFunc run
	if run.Err() != nil {
		t.Fatalf("the run's context ended with its parent: %v", run.Err())
	}
	cancel()
	if run.Err() == nil {
		t.Fatal("the run's context outlived its cancel")
	}

	parent, stop = context.WithCancel(context.Background())
	run, cancel = finishing(parent, time.Millisecond)
	defer cancel()
	stop()
	select {
	case <-run.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the run's context outlived its grace")
	}
}
