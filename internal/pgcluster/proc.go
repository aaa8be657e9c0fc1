package pgcluster

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon is a long-running helper process (pg_autoctl, pgbouncer) started
// by a test. It runs in a process group of its own, as the postgres user
// when the test runs as root, and its pid is recorded in its root's pids
// file so that reapOrphans can end it if the test process dies first.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
}

// startDaemon starts path with args, its output appended to logPath.
func startDaemon(t testing.TB, root, logPath string, env []string, path string, args ...string) *daemon {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		uid, gid := postgresIDs(t)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", filepath.Base(path), err)
	}
	d := &daemon{name: filepath.Base(path), cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	recordPid(root, cmd.Process.Pid)
	return d
}

// stop sends sig to the daemon's process group and waits up to limit for
// the daemon to exit, then kills the group.
func (d *daemon) stop(sig syscall.Signal, limit time.Duration) {
	if d == nil {
		return
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, sig)
	select {
	case <-d.done:
	case <-time.After(limit):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
}

// exited reports whether the daemon has exited.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// recordPid adds pid to root's pids file.
func recordPid(root string, pid int) {
	f, err := os.OpenFile(filepath.Join(root, "pids"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, pid)
}

// killRecorded kills the process groups of the daemons recorded under root
// that are still running, checking each is one of ours before it does.
func killRecorded(root string) {
	b, _ := os.ReadFile(filepath.Join(root, "pids"))
	for _, line := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(line)
		if err != nil || !alive(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if !strings.Contains(string(cmdline), root) {
			continue // the pid was reused by a process that is not ours
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// postgresIDs is the postgres user's uid and gid.
func postgresIDs(t testing.TB) (int, int) {
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("pgcluster: running as root needs a postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// need skips t, saying NOT RUN and why, when missing is not empty, or
// fails it when the environment variable MINIPAY_REQUIRE_HA is 1 (CI, which
// installs the packages).
func need(t testing.TB, missing string) {
	t.Helper()
	if missing == "" {
		return
	}
	if os.Getenv("MINIPAY_REQUIRE_HA") == "1" {
		t.Fatalf("%s, and MINIPAY_REQUIRE_HA=1", missing)
	}
	t.Skipf("NOT RUN: %s", missing)
}

// lookPath finds a program on PATH or in the given directories.
func lookPath(name string, dirs ...string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}
