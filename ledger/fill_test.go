package ledger

import (
	"testing"
	"time"
)

// A worker stops lingering when transfers stop arriving: a closed loop of
// clients, all waiting for this group, sends nothing more, and waiting out
// the linger would only add to their latency.
func TestFillStopsWhenArrivalsStop(t *testing.T) {
	p := &poster{batchMax: 1000, linger: 4 * time.Second} // a gap of 400ms
	queue := make(chan *op, 10)
	for range 5 {
		queue <- &op{}
	}
	start := time.Now()
	batch := p.fill(queue, nil)
	if len(batch) != 5 {
		t.Fatalf("filled %d ops, want the 5 queued", len(batch))
	}
	if took := time.Since(start); took >= 2*time.Second {
		t.Fatalf("fill waited %s after the last arrival: it should stop after a gap of about 400ms, not linger 4s", took)
	}
}

// While transfers keep arriving, a worker keeps filling its group, past
// any one gap, until the group is full (or the linger is over).
func TestFillKeepsFillingWhileArrivalsContinue(t *testing.T) {
	p := &poster{batchMax: 30, linger: 10 * time.Second} // a gap of 1s
	queue := feed(t, 20*time.Millisecond)
	batch := p.fill(queue, nil)
	if len(batch) != 30 {
		t.Fatalf("filled %d ops, want a full group of 30", len(batch))
	}
}

// The linger bounds the wait even when arrivals never pause.
func TestFillEndsAtTheLinger(t *testing.T) {
	p := &poster{batchMax: 1 << 20, linger: 300 * time.Millisecond}
	queue := feed(t, time.Millisecond)
	start := time.Now()
	batch := p.fill(queue, nil)
	if took := time.Since(start); took > 5*time.Second || len(batch) == 0 {
		t.Fatalf("fill took %s for %d ops; it should end at its 300ms linger", took, len(batch))
	}
}

// Without a linger, fill takes what is queued and nothing more; a closed
// queue ends the filling.
func TestFillWithoutLingerAndClosed(t *testing.T) {
	p := &poster{batchMax: 1000, linger: -1}
	queue := make(chan *op, 3)
	queue <- &op{}
	queue <- &op{}
	if batch := p.fill(queue, []*op{{}}); len(batch) != 3 {
		t.Fatalf("filled %d ops, want the first and the 2 queued", len(batch))
	}
	p.linger = time.Hour
	queue <- &op{}
	close(queue)
	if batch := p.fill(queue, nil); len(batch) != 1 {
		t.Fatalf("filled %d ops from a closed queue, want the 1 left in it", len(batch))
	}
}

// feed returns a queue that receives an op every interval until the test
// ends.
func feed(t *testing.T, every time.Duration) chan *op {
	queue := make(chan *op)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case queue <- &op{}:
			case <-stop:
				return
			}
			time.Sleep(every)
		}
	}()
	return queue
}
