package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// An open loop sends operations at a rate, on a schedule fixed before the
// run, whether or not earlier ones have been answered: requests arrive at a
// super-app's backend that way. Each operation's latency is measured from
// the time the schedule gave it, not from when a sender got round to it, so
// time spent queueing behind a slow system is counted (no coordinated
// omission, as in wrk2 and HdrHistogram's load generators). A closed loop,
// where each client waits for its answer before sending again, slows its
// own offered load when the system slows and so hides exactly that time.

// openRun is what one open-loop measurement saw.
type openRun struct {
	rate    float64       // offered, per second
	planned int64         // operations the schedule held
	done    int64         // operations answered
	elapsed time.Duration // from the first scheduled send to the last answer
	lat     latencies     // from each operation's scheduled time
	// aborted: so many operations were late that the p99 could no longer
	// be under the limit, and the rest of the schedule was not sent.
	aborted bool
	// runners is how many goroutines ran the operations.
	runners int64
}

// point is one rate of a search and what it gave.
type point struct {
	Rate     float64 `json:"rate"`
	Achieved float64 `json:"achieved"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Pass     bool    `json:"pass"`
	// What kept the rate, when the benchmark measures it: the cores its
	// operations kept busy (near the machine's, the CPU) and the WAL's
	// syncs a second (falling while the cores idle, the disk).
	CoresBusy  float64 `json:"cores_busy,omitempty"`
	WALSyncsPS float64 `json:"wal_syncs_per_s,omitempty"`
	// cpu is the CPU an operation took at this rate (perOp's figures),
	// when the benchmark measures it.
	cpu []KV
}

// measured sets pt's figures from perOp's, whose CPU per operation is
// named for unit.
func (pt *point) measured(kvs []KV, unit string) {
	pt.cpu = kvs
	for _, kv := range kvs {
		v, ok := kv.Value.(float64)
		switch {
		case !ok:
		case kv.Key == "cpu_us_per_"+unit:
			pt.CoresBusy = round(v*pt.Achieved/1e6, 2)
		case kv.Key == "wal_syncs_per_s":
			pt.WALSyncsPS = v
		}
	}
}

func (r openRun) point(limit time.Duration) point {
	p := r.lat.percentiles(0.5, 0.99)
	pt := point{Rate: r.rate, P50: round(ms(p[0]), 3), P99: round(ms(p[1]), 3)}
	if r.elapsed > 0 {
		pt.Achieved = round(float64(r.done)/r.elapsed.Seconds(), 1)
	}
	if r.aborted {
		pt.P99 = math.Max(pt.P99, ms(limit)) // at least: more than 1 % were later than the limit
	}
	pt.Pass = !r.aborted && r.done == r.planned && p[1] <= limit
	return pt
}

// openLoopGrace is how long operations still in flight when an open
// loop's schedule ends have to be answered; a system that takes longer has
// failed anyway.
const openLoopGrace = 30 * time.Second

// openLoop offers rate operations per second for d, at most senders of
// them in flight (each op gets the number of its sender's slot and its own
// sequence number). An operation due while every slot is taken waits for
// one, and that wait is part of its latency. When more than 1 % of the
// schedule has been answered later than limit (0: never), the p99 is lost:
// the rest is not sent and the run is marked aborted. The first error
// stops the run.
func openLoop(ctx context.Context, rate float64, d time.Duration, senders int, limit time.Duration,
	op func(ctx context.Context, sender int, i int64) error) (openRun, error) {
	run := openRun{rate: rate, planned: int64(rate * d.Seconds()), lat: make(latencies, senders)}
	if run.planned <= 0 {
		return run, fmt.Errorf("open loop: rate %.1f/s for %s sends nothing", rate, d)
	}
	ctx, cancel := context.WithTimeout(ctx, d+openLoopGrace)
	defer cancel()
	interval := float64(time.Second) / rate
	lateMax := run.planned / 100
	var (
		late, done atomic.Int64
		stop       atomic.Bool
		firstErr   atomic.Value
		wg         sync.WaitGroup
	)
	start := time.Now().Add(time.Millisecond)
	at := func(i int64) time.Time { return start.Add(time.Duration(float64(i) * interval)) }
	// Each operation holds one of the senders' slots (its number: the op's
	// own random source and latency list) until it is answered, and runs
	// in a runner goroutine. Runners are started as operations need them
	// and each takes the next operation when it is done with one, as a
	// server's connection goroutine takes its next request: a fresh
	// goroutine per operation grew its stack by copying in every operation
	// (7 % of the process's CPU at 10,000 transfers/s), and 4,096 senders
	// started up front waited idle, each scanned and shrunk at every
	// garbage collection and grown again for its next operation.
	free := make(chan int, senders)
	for s := 0; s < senders; s++ {
		free <- s
	}
	send := func(s int, i int64) {
		defer wg.Done()
		defer func() { free <- s }()
		err := op(ctx, s, i)
		if err != nil {
			if firstErr.CompareAndSwap(nil, err) {
				stop.Store(true)
			}
			return
		}
		lat := time.Since(at(i))
		run.lat[s] = append(run.lat[s], lat)
		done.Add(1)
		if limit > 0 && lat > limit && late.Add(1) > lateMax {
			stop.Store(true)
		}
	}
	type job struct {
		s int
		i int64
	}
	jobs := make(chan job) // unbuffered: a send succeeds only to an idle runner
	runner := func(j job) {
		for ok := true; ok; j, ok = <-jobs {
			send(j.s, j.i)
		}
	}
	// An operation due while every slot is taken waits for one, and that
	// wait is part of its latency; so do the ones due after it.
	release := func(i int64) {
		select {
		case s := <-free:
			wg.Add(1)
			select {
			case jobs <- job{s, i}:
			default:
				run.runners++
				go runner(job{s, i})
			}
		case <-ctx.Done():
		}
	}
	// The dispatcher releases, every few hundred microseconds, whatever the
	// schedule says is due by then; each operation still carries its own
	// scheduled time, so releasing in small bursts costs no accuracy.
	for i := int64(0); i < run.planned && !stop.Load() && ctx.Err() == nil; {
		if wait := time.Until(at(i)); wait > 0 {
			time.Sleep(wait)
		}
		now := time.Now()
		for ; i < run.planned && !at(i).After(now) && !stop.Load(); i++ {
			release(i)
		}
	}
	wg.Wait()
	close(jobs) // the idle runners return
	run.elapsed = time.Since(start)
	run.done = done.Load()
	run.aborted = stop.Load() && firstErr.Load() == nil && run.done < run.planned
	if err, _ := firstErr.Load().(error); err != nil {
		return run, err
	}
	if err := ctx.Err(); err != nil && run.done < run.planned && !run.aborted {
		return run, fmt.Errorf("open loop at %.0f/s: %d of %d operations unanswered after %s: %w",
			rate, run.planned-run.done, run.planned, d+openLoopGrace, err)
	}
	return run, nil
}

// search finds the highest rate at which measure passes (p99 within its
// limit for the whole measurement), starting from a rate the system is
// known to sustain (its closed-loop throughput). It climbs by quarter
// steps until a rate fails, then halves the gap between the best pass and
// the lowest failure until they are within 3 %, in at most stepsMax
// measurements. Rates are rounded so the plot's points read cleanly.
//
// A rate that fails is measured once more before it counts as failed: one
// stall of the machine (the disk holding a commit's fsync for 100 ms or
// more, near a checkpoint or not) fails whatever rate it falls in, and ended
// the climb at a rate that the next measurement sustained with room to
// spare. A rate above what the system sustains fails both times (its
// queue grows). Both measurements stay in points, the failed one red on
// the plot.
func search(ctx context.Context, start float64, stepsMax int, measure func(ctx context.Context, rate float64) (point, error)) (best point, points []point, err error) {
	lo, hi := 0.0, math.Inf(1)
	rate := roundRate(start)
	for len(points) < stepsMax {
		if ctx.Err() != nil {
			return best, points, ctx.Err()
		}
		p, err := measure(ctx, rate)
		if err != nil {
			return best, points, err
		}
		points = append(points, p)
		if !p.Pass && len(points) < stepsMax {
			if p, err = measure(ctx, rate); err != nil {
				return best, points, err
			}
			points = append(points, p)
		}
		if p.Pass {
			lo = math.Max(lo, rate)
			if rate >= best.Rate {
				best = p
			}
		} else {
			hi = math.Min(hi, rate)
		}
		switch {
		case math.IsInf(hi, 1):
			rate = roundRate(rate * 1.25)
		case lo == 0:
			rate = roundRate(rate * 0.7)
		case hi/lo <= 1.03:
			return best, points, nil
		default:
			rate = roundRate((lo + hi) / 2)
		}
		if rate <= lo || rate >= hi {
			return best, points, nil // rounding left nothing between them
		}
	}
	return best, points, nil
}

// roundRate rounds a rate to three significant figures, enough to tell
// steps of a few per cent apart: 23,456 → 23,500; 1,234 → 1,230.
func roundRate(r float64) float64 {
	if r < 100 {
		return math.Max(1, math.Round(r))
	}
	unit := math.Pow(10, math.Floor(math.Log10(r))-2)
	return math.Round(r/unit) * unit
}
