package leader_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/leader"
	"github.com/minipay/minipay/internal/testdb"
)

const job int64 = 0x6c6561646572 // "leader"

// TestOneAtATime: while one process leads a job, another asking without
// waiting does not run it, one asking with waiting runs it once the leader
// is done, and a waiter whose context ends gives up.
func TestOneAtATime(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	held, release := make(chan struct{}), make(chan struct{})
	var running atomic.Int32
	leaderDone := make(chan error, 1)
	go func() {
		_, err := leader.Run(ctx, db.Pool, job, false, func(context.Context) error {
			running.Add(1)
			close(held)
			<-release
			running.Add(-1)
			return nil
		})
		leaderDone <- err
	}()
	<-held

	ran, err := leader.Run(ctx, db.Pool, job, false, func(context.Context) error {
		t.Error("ran while another process led")
		return nil
	})
	if ran || err != nil {
		t.Fatalf("without waiting: ran %v, %v", ran, err)
	}
	short, cancel := context.WithTimeout(ctx, 3*leader.Poll)
	defer cancel()
	if ran, err := leader.Run(short, db.Pool, job, true, func(context.Context) error { return nil }); ran || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a waiter whose context ended: ran %v, %v", ran, err)
	}

	waited := make(chan error, 1)
	go func() {
		_, err := leader.Run(ctx, db.Pool, job, true, func(context.Context) error {
			if running.Load() != 0 {
				return errors.New("ran beside the leader")
			}
			return errors.New("ran")
		})
		waited <- err
	}()
	time.Sleep(2 * leader.Poll)
	close(release)
	if err := <-leaderDone; err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err == nil || err.Error() != "ran" {
		t.Fatalf("the waiter: %v, want its own result once the leader was done", err)
	}
	// The job is free again, and fn's error comes back as is.
	boom := errors.New("boom")
	if ran, err := leader.Run(ctx, db.Pool, job, false, func(context.Context) error { return boom }); !ran || err != boom {
		t.Fatalf("free job: ran %v, %v", ran, err)
	}
}
