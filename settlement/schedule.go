package settlement

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Schedule says when settlement runs: daily at a time of day in a time
// zone, or every fixed interval. The zero Schedule is off.
type Schedule struct {
	every     time.Duration // > 0: cutoffs at multiples of every
	daily     bool
	hour, min int
	loc       *time.Location
}

// ParseSchedule parses a schedule: "daily" (00:00), "daily@HH:MM",
// "every <Go duration>" (such as "every 1h"; cutoffs fall on multiples of
// the duration since the Unix epoch, so every replica computes the same
// ones) or "off". Daily cutoffs are in loc.
func ParseSchedule(spec string, loc *time.Location) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "off":
		return Schedule{}, nil
	case spec == "" || spec == "daily":
		return Schedule{daily: true, loc: loc}, nil
	case strings.HasPrefix(spec, "daily@"):
		var h, m int
		if _, err := fmt.Sscanf(spec, "daily@%d:%d", &h, &m); err != nil || h < 0 || h > 23 || m < 0 || m > 59 ||
			len(spec) != len("daily@HH:MM") {
			return Schedule{}, fmt.Errorf("%w: %q", ErrScheduleInvalid, spec)
		}
		return Schedule{daily: true, hour: h, min: m, loc: loc}, nil
	case strings.HasPrefix(spec, "every "):
		d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(spec, "every ")))
		if err != nil || d < time.Second {
			return Schedule{}, fmt.Errorf("%w: %q (at least every 1s)", ErrScheduleInvalid, spec)
		}
		return Schedule{every: d}, nil
	}
	return Schedule{}, fmt.Errorf("%w: %q", ErrScheduleInvalid, spec)
}

// Off reports whether the schedule never runs.
func (sc Schedule) Off() bool { return !sc.daily && sc.every == 0 }

// String renders the schedule as ParseSchedule reads it.
func (sc Schedule) String() string {
	switch {
	case sc.daily:
		return fmt.Sprintf("daily@%02d:%02d %s", sc.hour, sc.min, sc.loc)
	case sc.every > 0:
		return "every " + sc.every.String()
	}
	return "off"
}

// Last returns the latest cutoff at or before now.
func (sc Schedule) Last(now time.Time) time.Time {
	if sc.every > 0 {
		return time.UnixMicro(0).Add(now.Sub(time.UnixMicro(0)).Truncate(sc.every)).UTC()
	}
	local := now.In(sc.loc)
	c := time.Date(local.Year(), local.Month(), local.Day(), sc.hour, sc.min, 0, 0, sc.loc)
	if c.After(now) {
		c = time.Date(local.Year(), local.Month(), local.Day()-1, sc.hour, sc.min, 0, 0, sc.loc)
	}
	return c
}

// RunScheduler settles at every cutoff of sc until ctx ends. Every replica
// may run it: the run of a cutoff is created once (its cutoff is unique)
// and advanced by whichever process holds the runs' lock; the others look
// again every tick and finish what a crashed process left.
func (s *Service) RunScheduler(ctx context.Context, sc Schedule, tick time.Duration) {
	if sc.Off() {
		return
	}
	log := s.opts.Log.With("schedule", sc.String())
	log.Info("settlement scheduler started")
	t := time.NewTicker(tick)
	defer t.Stop()
	var last time.Time
	for ctx.Err() == nil {
		// A run begun is finished when ctx ends (serve shutting down), for
		// up to runGrace more: the next process would resume it, but a clean
		// stop should not leave one behind.
		runCtx, cancel := finishing(ctx, runGrace)
		cutoff := sc.Last(time.Now())
		var err error
		if !cutoff.Equal(last) {
			if _, _, err = s.Settle(runCtx, cutoff, false); err == nil {
				last = cutoff
			}
		} else {
			err = s.Resume(runCtx, false) // a run another process left unfinished
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Error("settlement run", "cutoff", cutoff, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runGrace is how long a scheduled run may go on after its scheduler was
// told to stop; serve's shutdown allows as much for its requests.
const runGrace = 25 * time.Second

// finishing returns a context that ends grace after ctx does (or when
// cancel is called), so that work begun under ctx can finish.
func finishing(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return run, func() { stop(); cancel() }
}
