package bench

import (
	"context"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestOpenLoopCountsQueueing stalls the one sender for 300 ms at the start
// of a run at 100 operations a second: the 30 or so operations scheduled
// during the stall must carry the wait in their latencies (measured from
// their scheduled times), as a closed loop's would not.
func TestOpenLoopCountsQueueing(t *testing.T) {
	var calls atomic.Int64
	run, err := openLoop(context.Background(), 100, time.Second, 1, 0, func(ctx context.Context, s int, i int64) error {
		if calls.Add(1) == 1 {
			time.Sleep(300 * time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if run.planned != 100 || run.done != 100 {
		t.Fatalf("planned %d, done %d; want 100 of 100", run.planned, run.done)
	}
	slow := 0
	for _, l := range run.lat[0] {
		if l >= 100*time.Millisecond {
			slow++
		}
	}
	if slow < 15 {
		t.Fatalf("%d operations waited 100 ms or more behind a 300 ms stall; want the ones scheduled during it (about 20)", slow)
	}
	if p := run.lat.percentiles(0.99)[0]; p < 250*time.Millisecond {
		t.Fatalf("p99 %s: the stall's queueing was not counted", p)
	}
}

// TestOpenLoopKeepsItsRate offers 200 operations a second for a second to
// senders that answer at once: all are sent, over about a second.
func TestOpenLoopKeepsItsRate(t *testing.T) {
	run, err := openLoop(context.Background(), 200, time.Second, 4, 0, func(ctx context.Context, s int, i int64) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if run.done != 200 || run.elapsed < 900*time.Millisecond || run.elapsed > 3*time.Second {
		t.Fatalf("done %d in %s; want 200 in about 1 s", run.done, run.elapsed)
	}
}

// TestOpenLoopReusesItsRunners: 1,000 operations of 2 ms each at 1,000 a
// second are a couple in flight at a time, so a few goroutines run them
// all, each taking the next when it is done. A goroutine per operation
// pays for a new stack, grown again by copying, every time.
func TestOpenLoopReusesItsRunners(t *testing.T) {
	run, err := openLoop(context.Background(), 1000, time.Second, 4096, 0, func(ctx context.Context, s int, i int64) error {
		time.Sleep(2 * time.Millisecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if run.done != 1000 || run.runners > 100 {
		t.Fatalf("%d operations answered by %d goroutines; want 1,000 by a few", run.done, run.runners)
	}
}

// TestOpenLoopGivesUpWhenLate: once more than 1 % of the schedule is later
// than the limit the rest is not sent, and the point fails.
func TestOpenLoopGivesUpWhenLate(t *testing.T) {
	run, err := openLoop(context.Background(), 500, 2*time.Second, 1, 5*time.Millisecond, func(ctx context.Context, s int, i int64) error {
		time.Sleep(10 * time.Millisecond) // 100/s at most: far behind 500/s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !run.aborted || run.done >= run.planned {
		t.Fatalf("aborted %v, done %d of %d", run.aborted, run.done, run.planned)
	}
	if p := run.point(5 * time.Millisecond); p.Pass || p.P99 < 5 {
		t.Fatalf("point %+v of an aborted run", p)
	}
}

// TestSearchFindsTheEdge searches a system that holds its p99 up to
// 12,345/s: from either side, the best rate found passes and lies within
// 3 % of the edge, in at most the steps allowed.
func TestSearchFindsTheEdge(t *testing.T) {
	const edge = 12345.0
	measure := func(ctx context.Context, rate float64) (point, error) {
		return point{Rate: rate, P99: 10, Pass: rate <= edge}, nil
	}
	for _, start := range []float64{3000, 9000, 30000} {
		best, points, err := search(context.Background(), start, findMaxSteps, measure)
		if err != nil {
			t.Fatal(err)
		}
		if !best.Pass || best.Rate > edge || best.Rate < edge*0.97 || len(points) > findMaxSteps {
			t.Errorf("from %.0f: best %+v after %d points", start, best, len(points))
		}
	}
	best, points, _ := search(context.Background(), 1000, 10, func(ctx context.Context, rate float64) (point, error) {
		return point{Rate: rate, P99: 500}, nil
	})
	if best.Rate != 0 || len(points) != 10 {
		t.Errorf("nothing passes: best %+v after %d points", best, len(points))
	}
}

// TestSearchMeasuresAFailureAgain has the machine stall once, in the
// second rate's measurement, far below the edge: the search must measure
// that rate again and climb on to the edge, while a rate above the edge,
// failing both times, still ends the climb.
func TestSearchMeasuresAFailureAgain(t *testing.T) {
	const edge = 40000.0
	calls := 0
	measure := func(ctx context.Context, rate float64) (point, error) {
		calls++
		stalled := calls == 2
		return point{Rate: rate, P99: 10, Pass: rate <= edge && !stalled}, nil
	}
	best, points, err := search(context.Background(), 17000, 14, measure)
	if err != nil {
		t.Fatal(err)
	}
	if best.Rate > edge || best.Rate < edge*0.97 {
		t.Fatalf("best %+v; want within 3 %% under %.0f despite one stall", best, edge)
	}
	if points[1].Pass || !points[2].Pass || points[1].Rate != points[2].Rate {
		t.Fatalf("the stalled rate was not measured again: %+v", points[:3])
	}
	fails := 0
	for _, p := range points {
		if p.Rate > edge && p.Pass {
			t.Fatalf("a rate above the edge passed: %+v", p)
		}
		if p.Rate > edge {
			fails++
		}
	}
	if fails%2 != 0 {
		t.Fatalf("every rate above the edge should be measured twice: %+v", points)
	}
}

// TestFirstMeasurements reads a search's points as if no failing rate had
// been measured again.
func TestFirstMeasurements(t *testing.T) {
	points := []point{{Rate: 100, Pass: true}, {Rate: 125, Pass: false}, {Rate: 125, Pass: true},
		{Rate: 156, Pass: false}, {Rate: 156, Pass: false}, {Rate: 140, Pass: true}}
	best, again := firstMeasurements(points)
	if best != 140 {
		t.Errorf("best on first measurements = %v, want 140 (125 passed only when measured again)", best)
	}
	if again != 2 {
		t.Errorf("rates measured twice = %d, want 2", again)
	}
}

func TestRoundRate(t *testing.T) {
	for in, want := range map[float64]float64{23456: 23500, 1234: 1230, 87.4: 87, 0.2: 1, 999.6: 1000} {
		if got := roundRate(in); math.Abs(got-want) > 1e-9 {
			t.Errorf("roundRate(%v) = %v, want %v", in, got, want)
		}
	}
}

// TestPlotDrawsEveryPoint renders a plot and checks its parts: one circle
// per point, red for a failure, the limit and the markers' labels.
func TestPlotDrawsEveryPoint(t *testing.T) {
	svg := plot{Title: "t & <x>", Limit: 50, Points: []point{{Rate: 1000, P99: 5, Pass: true}, {Rate: 3000, P99: 900}},
		Markers: []marker{{Rate: 2500, Label: "ceiling", Color: "#24c"}}}.svg()
	for _, want := range []string{"<svg", "t &amp; &lt;x&gt;", "p99 limit 50 ms", "ceiling", `fill="#c22"`, `fill="#2a2"`, "</svg>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("plot lacks %q", want)
		}
	}
	if n := strings.Count(svg, "<circle"); n != 2 {
		t.Errorf("%d circles for 2 points", n)
	}
}

// A measured point says what held its rate: the cores its operations kept
// busy (CPU per operation times what was answered) and the WAL's syncs.
func TestPointMeasured(t *testing.T) {
	pt := point{Rate: 20000, Achieved: 19000}
	pt.measured([]KV{{"cpu_us_per_transfer", 60.0}, {"db_cpu_us_per_transfer", 40.0},
		{"wal_bytes_per_transfer", 1200.0}, {"wal_syncs_per_s", 430.0}}, "transfer")
	if pt.CoresBusy != 1.14 || pt.WALSyncsPS != 430 || len(pt.cpu) != 4 {
		t.Fatalf("measured point %+v, want 1.14 cores busy and 430 syncs/s", pt)
	}
	unmeasured := point{Rate: 100, Achieved: 100}
	unmeasured.measured(nil, "transfer")
	if unmeasured.CoresBusy != 0 || unmeasured.WALSyncsPS != 0 {
		t.Fatalf("a point without figures got some: %+v", unmeasured)
	}
}
