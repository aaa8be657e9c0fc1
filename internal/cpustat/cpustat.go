// Package cpustat reads how much CPU time processes have used, for
// benchmarks that compare builds on a machine others share: CPU spent on
// each operation moves much less with their load than throughput does.
// Linux only (/proc); elsewhere every read fails.
package cpustat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of /proc/<pid>/stat's times: 100 per second on Linux.
const userHZ = 100

// Process returns the user and system time used so far by the process pid.
func Process(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("cpustat: %w", err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 0 here, utime 11 and stime 12.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("cpustat: /proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cpustat: /proc/%d/stat: unexpected format", pid)
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// Self returns the user and system time used so far by this process.
func Self() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("cpustat: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// Name returns the command name of the process pid, to make sure a pid
// named by a server (such as a PostgreSQL backend's) is that server's on
// this machine and not another process that happens to have the number.
func Name(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "", fmt.Errorf("cpustat: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
