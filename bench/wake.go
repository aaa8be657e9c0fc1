package bench

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// errOneCPU: a wake-up across cores cannot be timed on one CPU.
var errOneCPU = errors.New("fewer than two CPUs to run on")

// wakeRounds is how many round trips the probe times: about a tenth of a
// second on a host whose idle vCPUs halt.
const wakeRounds = 1000

// wakeRoundTrip times what the host charges for waking a thread on
// another core, as perf bench sched pipe does: two threads, each pinned to
// one of the first two CPUs this process may use, pass a byte back and
// forth through a pair of pipes, blocking in read between turns. It
// returns the median of rounds round trips. A few microseconds is a
// machine whose idle cores wake quickly; tens of microseconds, one whose
// idle vCPUs halt and are woken through the hypervisor, where every group
// the ledger writes pays that several times over (docs/operations.md).
func wakeRoundTrip(rounds int) (time.Duration, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, fmt.Errorf("wake-up probe: %w", err)
	}
	var cpus []int
	for c := 0; c < 1024 && len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) < 2 {
		return 0, fmt.Errorf("wake-up probe: %w", errOneCPU)
	}
	var ping, pong [2]int // read end, write end
	if err := syscall.Pipe(ping[:]); err != nil {
		return 0, fmt.Errorf("wake-up probe: %w", err)
	}
	if err := syscall.Pipe(pong[:]); err != nil {
		syscall.Close(ping[0])
		syscall.Close(ping[1])
		return 0, fmt.Errorf("wake-up probe: %w", err)
	}
	// Each side closes its ends when it stops, which ends the other side's
	// read: neither waits forever for a partner that failed.
	const warm = 100
	echoed := side(cpus[1], func() error {
		b := []byte{0}
		for {
			if n, err := syscall.Read(ping[0], b); n == 0 || err != nil {
				return err // n == 0: the other side is done
			}
			if _, err := syscall.Write(pong[1], b); err != nil {
				return err
			}
		}
	}, ping[0], pong[1])
	trips := make([]time.Duration, 0, rounds)
	measured := side(cpus[0], func() error {
		b := []byte{0}
		for i := range warm + rounds {
			start := time.Now()
			if _, err := syscall.Write(ping[1], b); err != nil {
				return err
			}
			if n, err := syscall.Read(pong[0], b); err != nil {
				return err
			} else if n == 0 {
				return errors.New("the echoing thread stopped")
			}
			if i >= warm {
				trips = append(trips, time.Since(start))
			}
		}
		return nil
	}, ping[1], pong[0])
	if err := errors.Join(<-measured, <-echoed); err != nil {
		return 0, fmt.Errorf("wake-up probe: %w", err)
	}
	slices.Sort(trips)
	return trips[len(trips)/2], nil
}

// side runs f on a thread of its own pinned to cpu, then closes fds, and
// reports f's error. The thread stays locked to its goroutine, so the
// goroutine's end ends it and no other goroutine inherits its narrowed
// affinity.
func side(cpu int, f func() error, fds ...int) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			for _, fd := range fds {
				syscall.Close(fd)
			}
		}()
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	return done
}
