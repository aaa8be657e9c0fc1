package bench

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The p99 limits that --find-max holds each benchmark to, from the issues'
// targets, and how many rates one search measures at most.
const (
	ledgerP99Limit   = 50 * time.Millisecond
	checkoutP99Limit = 100 * time.Millisecond
	findMaxSteps     = 14
)

// openLoad runs a benchmark's workload open-loop at rate for d (see
// openLoop; limit may end an overloaded run early). tag keeps the ids of
// one run apart from another's.
type openLoad func(ctx context.Context, tag string, rate float64, d time.Duration, limit time.Duration) (openRun, error)

// atRate is --rate: a warm-up at the rate, then one measured run, which
// becomes the result's throughput (what was answered per second) and
// latencies (from the scheduled send times).
func atRate(ctx context.Context, o Options, res *Result, load openLoad, limit time.Duration, cpu *cpuMeter) error {
	warm := min(2*time.Second, o.Duration/5)
	if _, err := load(ctx, "ow", o.Rate, warm, 0); err != nil {
		return fmt.Errorf("warm-up at %.0f/s: %w", o.Rate, err)
	}
	stopProfile, err := profile(o.CPUProfile)
	if err != nil {
		return err
	}
	before := cpu.sample(ctx)
	run, err := load(ctx, "or", o.Rate, o.Duration, 0)
	after := cpu.sample(ctx)
	stopProfile()
	if err != nil {
		return err
	}
	res.Extra = append(res.Extra, perOp(before, after, run.done, strings.TrimSuffix(res.Unit, "s"))...)
	pt := run.point(limit)
	res.Throughput = pt.Achieved
	p := run.lat.percentiles(0.5, 0.99)
	res.P50, res.P99 = p[0], p[1]
	res.Extra = append(res.Extra, KV{"offered_rate", o.Rate}, KV{"p99_limit_ms", ms(limit)}, KV{"within_limit", pt.Pass})
	res.Notes = append(res.Notes, "open loop: latency is measured from each operation's scheduled send time")
	return nil
}

// maxRate is what a search found.
type maxRate struct {
	best   point
	points []point
	closed float64 // the closed-loop throughput it started from
}

// findHooks are what a benchmark adds to each measurement of a search.
type findHooks struct {
	before func()      // before each rate's measurement
	after  func(point) // after it, with what it gave
	// cpu, if set, measures the CPU each operation took at every rate,
	// and the WAL it wrote (see cpuMeter).
	cpu *cpuMeter
}

// findMax searches for the highest rate whose p99 stays within limit,
// starting at the closed-loop throughput already in res, and makes the
// best rate the result's throughput and latencies; the closed-loop figures
// move to closed_loop_tps and closed_loop_p99_ms.
//
// Every rate is first offered unmeasured for a warm-up, as --rate does: the
// backlog an overloaded rate leaves (a checkpoint it started, queues still
// draining) then falls on the warm-up rather than on the first second of
// the next rate, which it used to fail on its own.
func findMax(ctx context.Context, o Options, res *Result, load openLoad, limit time.Duration, hooks findHooks) (maxRate, error) {
	m := maxRate{closed: res.Throughput}
	step := 0
	warm := min(2*time.Second, o.Duration/5)
	unit := strings.TrimSuffix(res.Unit, "s")
	measure := func(ctx context.Context, rate float64) (point, error) {
		step++
		if _, err := load(ctx, fmt.Sprintf("w%d", step), rate, warm, 0); err != nil {
			return point{}, fmt.Errorf("find-max: warm-up at %.0f/s: %w", rate, err)
		}
		if hooks.before != nil {
			hooks.before()
		}
		var before cpuSample
		if hooks.cpu != nil {
			before = hooks.cpu.sample(ctx)
		}
		run, err := load(ctx, fmt.Sprintf("s%d", step), rate, o.Duration, limit)
		if err != nil {
			return point{}, fmt.Errorf("find-max at %.0f/s: %w", rate, err)
		}
		pt := run.point(limit)
		if hooks.cpu != nil {
			pt.measured(perOp(before, hooks.cpu.sample(ctx), run.done, unit), unit)
		}
		verdict := "pass"
		if !pt.Pass {
			verdict = "fail"
		}
		if pt.CoresBusy > 0 {
			verdict += fmt.Sprintf(" (%.2f cores busy, %.0f WAL syncs/s)", pt.CoresBusy, pt.WALSyncsPS)
		}
		fmt.Fprintf(o.Stderr, "find-max: %s: offered %.0f/s, answered %.0f/s, p50 %.2f ms, p99 %.2f ms: %s\n",
			res.Kind, rate, pt.Achieved, pt.P50, pt.P99, verdict)
		if hooks.after != nil {
			hooks.after(pt)
		}
		time.Sleep(500 * time.Millisecond) // let the database settle after an overloaded run
		return pt, nil
	}
	var err error
	steps := o.Steps
	if steps <= 0 {
		steps = findMaxSteps
	}
	m.best, m.points, err = search(ctx, m.closed, steps, measure)
	if err != nil {
		return m, err
	}
	closedP99 := res.P99
	firstBest, again := firstMeasurements(m.points)
	res.Throughput = m.best.Rate
	res.P50 = time.Duration(m.best.P50 * float64(time.Millisecond))
	res.P99 = time.Duration(m.best.P99 * float64(time.Millisecond))
	res.Extra = append(res.Extra,
		KV{"max_rate", m.best.Rate},
		KV{"p99_ms_at_max", m.best.P99},
		KV{"p99_limit_ms", ms(limit)},
		KV{"closed_loop_tps", round(m.closed, 1)},
		KV{"closed_loop_p99_ms", round(ms(closedP99), 3)},
		KV{"max_rate_vs_closed_loop", round(m.best.Rate/m.closed, 2)},
		KV{"max_rate_first_measurements", firstBest},
		KV{"rates_measured_twice", again},
		KV{"senders", o.Senders})
	for _, kv := range m.best.cpu {
		res.Extra = append(res.Extra, KV{kv.Key + "_at_max", kv.Value})
	}
	if m.best.CoresBusy > 0 {
		// How much of the machine the best rate kept busy: near the
		// number of cores, the rate is bound by CPU, not by waiting.
		res.Extra = append(res.Extra, KV{"cores_busy_at_max", m.best.CoresBusy})
	}
	res.Extra = append(res.Extra, KV{"points", m.points})
	res.Notes = append(res.Notes, fmt.Sprintf("open loop: throughput is max_rate, the highest offered rate whose p99 "+
		"(measured from each operation's scheduled send time, over all %s of the run) stayed within %s; "+
		"ratio is max_rate over the yardstick", o.Duration, limit))
	return m, nil
}

// plotFindMax draws the search's points, the limit and the markers at
// o.Plot, and records the file in res.
func plotFindMax(o Options, res *Result, m maxRate, limit time.Duration, markers ...marker) error {
	markers = append([]marker{{Rate: m.closed, Label: fmt.Sprintf("closed loop, %d clients: %s/s", o.Clients, thousands(m.closed)), Color: "#777"}}, markers...)
	if m.best.Rate > 0 {
		markers = append(markers, marker{Rate: m.best.Rate, Label: "max rate: " + thousands(m.best.Rate) + "/s", Color: "#2a2"})
	}
	p := plot{
		Title:   fmt.Sprintf("minipay bench %s: p99 against offered rate (%s per rate, %s)", res.Kind, o.Duration, time.Now().UTC().Format("2006-01-02")),
		Points:  m.points,
		Limit:   ms(limit),
		Markers: markers,
	}
	if err := p.write(o.Plot); err != nil {
		return err
	}
	res.Extra = append(res.Extra, KV{"plot", o.Plot})
	return nil
}

// firstMeasurements reads points as the search would have without
// measuring a failing rate again (see search): the highest rate whose
// first measurement passed, and how many rates were measured twice.
func firstMeasurements(points []point) (best float64, again int) {
	seen := make(map[float64]bool, len(points))
	for _, p := range points {
		switch {
		case seen[p.Rate]:
			again++
		case p.Pass:
			best = max(best, p.Rate)
		}
		seen[p.Rate] = true
	}
	return best, again
}
