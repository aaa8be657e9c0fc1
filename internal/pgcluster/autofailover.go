package pgcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Formation is a pg_auto_failover formation on this machine: a monitor and
// nodes, each node a PostgreSQL server run by its keeper (pg_autoctl). The
// first node starts as the primary, the others become its synchronous
// secondaries; when the primary fails, the monitor promotes a secondary.
//
// Failure detection is tuned down from pg_auto_failover's defaults so that a
// test sees a failover within seconds (see MonitorSettings and
// KeeperSettings); docs/operations.md says what production should use.
type Formation struct {
	t       testing.TB
	bin     string
	root    string
	env     []string
	monitor *Node
	Nodes   []*Node
}

// Node is one server of a formation and its keeper.
type Node struct {
	f      *Formation
	Name   string
	Dir    string // PGDATA
	Port   int
	keeper *daemon
	log    string
}

// NodeState is what the monitor says of a node.
type NodeState struct {
	Name     string
	Port     int
	Current  string // the state the node reported last
	Assigned string // the state the monitor wants it in
	Healthy  bool
}

// MonitorSettings make the monitor notice a dead node within about three
// seconds and give up waiting for an unreachable primary to demote itself
// after six (defaults: 20 s and 30 s).
var MonitorSettings = []string{
	"pgautofailover.health_check_period = 1000",
	"pgautofailover.health_check_timeout = 1000",
	"pgautofailover.health_check_max_retries = 1",
	"pgautofailover.health_check_retry_delay = 500",
	"pgautofailover.node_considered_unhealthy_timeout = 3000",
	"pgautofailover.primary_demote_timeout = 6000",
}

// KeeperSettings make a primary that can reach neither the monitor nor a
// secondary demote itself after 3 s (default 20 s): it must be shorter than
// the monitor's primary_demote_timeout, or two primaries could take writes.
var KeeperSettings = [][2]string{{"timeout.network_partition_timeout", "3"}}

// AutoFailoverMissing says why pg_auto_failover cannot run here, or "" when
// it can.
func AutoFailoverMissing() string {
	bin, err := binDir()
	if err != nil {
		return err.Error()
	}
	pkg := fmt.Sprintf("apt-get install -y postgresql-%d-auto-failover pg-auto-failover-cli", version(bin))
	if lookPath("pg_autoctl") == "" {
		return "no pg_autoctl (" + pkg + ")"
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(bin), "lib", "pgautofailover.so")); err != nil {
		return "no pgautofailover extension for the PostgreSQL in " + bin + " (" + pkg + ")"
	}
	return ""
}

// NeedAutoFailover skips t with NOT RUN when pg_auto_failover is missing, or
// fails it when MINIPAY_REQUIRE_HA=1.
func NeedAutoFailover(t testing.TB) {
	t.Helper()
	need(t, AutoFailoverMissing())
}

// NewFormation starts a monitor and n nodes (n >= 2) with database db on
// them, conf added to every node's postgresql.auto.conf, and waits until
// the formation has a primary and n-1 secondaries. Everything is stopped
// and removed when t ends.
func NewFormation(t testing.TB, db string, n int, conf ...string) *Formation {
	t.Helper()
	NeedAutoFailover(t)
	bin, err := binDir()
	if err != nil {
		t.Fatalf("pgcluster: %v", err)
	}
	root := newRoot(t, bin)
	f := &Formation{t: t, bin: bin, root: root, env: []string{
		"XDG_CONFIG_HOME=" + filepath.Join(root, "config"),
		"XDG_DATA_HOME=" + filepath.Join(root, "share"),
		"XDG_RUNTIME_DIR=" + filepath.Join(root, "run"),
		"HOME=" + root,
		"PATH=" + bin + ":" + os.Getenv("PATH"),
	}}
	for _, d := range []string{"config", "share", "run"} {
		dir := filepath.Join(root, d)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			chownPostgres(t, dir)
		}
	}
	t.Cleanup(f.teardown)
	f.startMonitor()
	for i := 1; i <= n; i++ {
		f.addNode(db, fmt.Sprintf("node%d", i), conf)
		if i == 1 {
			f.WaitFor(30*time.Second, "a single primary", func(st []NodeState) bool {
				return len(st) == 1 && st[0].Current == "single" && st[0].Assigned == "single"
			})
		}
	}
	f.WaitHealthy(60 * time.Second)
	return f
}

func (f *Formation) startMonitor() {
	m := &Node{f: f, Name: "monitor", Dir: filepath.Join(f.root, "monitor"), Port: freePort(f.t)}
	m.log = filepath.Join(f.root, "monitor.log")
	f.monitor = m
	f.autoctl(m.log, "create", "monitor", "--pgdata", m.Dir, "--pgport", strconv.Itoa(m.Port),
		"--pgctl", filepath.Join(f.bin, "pg_ctl"), "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl")
	f.autoctl(m.log, "config", "set", "--pgdata", m.Dir, "postgresql.listen_addresses", "127.0.0.1")
	m.appendConf(MonitorSettings...)
	m.keeper = startDaemon(f.t, f.root, m.log, f.env, lookPath("pg_autoctl"), "run", "--pgdata", m.Dir)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := f.State(context.Background()); err == nil {
			return
		} else if time.Now().After(deadline) || m.keeper.exited() {
			f.t.Fatalf("pg_auto_failover monitor did not start: %v\n%s", err, m.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// addNode creates a node, sets the keeper's timeouts and starts its keeper.
// The first node becomes the primary (and gets database db); the next ones
// copy it with pg_basebackup and become secondaries.
func (f *Formation) addNode(db, name string, conf []string) {
	n := &Node{f: f, Name: name, Dir: filepath.Join(f.root, name), Port: freePort(f.t)}
	n.log = filepath.Join(f.root, name+".log")
	f.autoctl(n.log, "create", "postgres", "--pgdata", n.Dir, "--pgport", strconv.Itoa(n.Port),
		"--pgctl", filepath.Join(f.bin, "pg_ctl"), "--listen", "127.0.0.1", "--hostname", "127.0.0.1",
		"--name", name, "--monitor", f.MonitorURL(), "--auth", "trust", "--no-ssl",
		"--username", "postgres", "--dbname", db)
	for _, kv := range KeeperSettings {
		f.autoctl(n.log, "config", "set", "--pgdata", n.Dir, kv[0], kv[1])
	}
	if len(f.Nodes) == 0 {
		n.appendConf(conf...) // secondaries copy it with the data directory
	}
	n.keeper = startDaemon(f.t, f.root, n.log, f.env, lookPath("pg_autoctl"), "run", "--pgdata", n.Dir)
	f.Nodes = append(f.Nodes, n)
}

// MonitorURL is the monitor's connection URL, for keepers and State.
func (f *Formation) MonitorURL() string {
	return fmt.Sprintf("postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover?sslmode=disable", f.monitor.Port)
}

// URL lists every node for database db with target_session_attrs=read-write,
// as `pg_autoctl show uri --formation default` does: a client connects to
// whichever node accepts writes.
func (f *Formation) URL(db string) string {
	hosts := make([]string, len(f.Nodes))
	for i, n := range f.Nodes {
		hosts[i] = fmt.Sprintf("127.0.0.1:%d", n.Port)
	}
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		strings.Join(hosts, ","), db)
}

// State asks the monitor for the state of every node.
func (f *Formation) State(ctx context.Context) ([]NodeState, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, f.MonitorURL())
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT nodename, nodeport, current_group_state::text, assigned_group_state::text, health = 1
		FROM pgautofailover.current_state('default') ORDER BY node_id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (NodeState, error) {
		var s NodeState
		err := r.Scan(&s.Name, &s.Port, &s.Current, &s.Assigned, &s.Healthy)
		return s, err
	})
}

// Primary returns the node the monitor has as primary (or wait_primary,
// a primary without a secondary to replicate to), if any.
func (f *Formation) Primary(ctx context.Context) (*Node, error) {
	st, err := f.State(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range st {
		if s.Current == s.Assigned && (s.Current == "primary" || s.Current == "wait_primary") {
			return f.node(s.Name), nil
		}
	}
	return nil, fmt.Errorf("no primary: %+v", st)
}

// TakesWrites says whether the node's server accepts connections and is
// not in recovery: a primary, restarted or not.
func (n *Node) TakesWrites(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", n.Port))
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	var primary bool
	err = conn.QueryRow(ctx, "SELECT NOT pg_is_in_recovery()").Scan(&primary)
	return err == nil && primary
}

// WaitFor polls the monitor until ok holds for the nodes' states, or fails
// t after limit.
func (f *Formation) WaitFor(limit time.Duration, what string, ok func([]NodeState) bool) []NodeState {
	f.t.Helper()
	deadline := time.Now().Add(limit)
	var (
		st  []NodeState
		err error
	)
	for time.Now().Before(deadline) {
		if st, err = f.State(context.Background()); err == nil && ok(st) {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("pg_auto_failover: no %s within %v: %+v %v\n%s", what, limit, st, err, f.Logs())
	return nil
}

// WaitHealthy waits until one node is primary and every other one a
// secondary, all healthy.
func (f *Formation) WaitHealthy(limit time.Duration) {
	f.t.Helper()
	f.WaitFor(limit, "primary with healthy secondaries", func(st []NodeState) bool {
		primaries := 0
		for _, s := range st {
			if s.Current != s.Assigned || !s.Healthy {
				return false
			}
			switch s.Current {
			case "primary":
				primaries++
			case "secondary":
			default:
				return false
			}
		}
		return len(st) == len(f.Nodes) && primaries == 1
	})
}

// KillPostgres kills the node's PostgreSQL server and all its processes with
// SIGKILL, as a crash would; its keeper lives on (and may start the server
// again before the monitor notices). It returns when every killed process
// has exited.
func (n *Node) KillPostgres() time.Time {
	pids := n.freezeServer()
	at := time.Now()
	killAll(pids)
	waitGone(pids, 10*time.Second)
	return at
}

// KillNode kills the whole node with SIGKILL: its keeper and its server, as
// if the machine had died. It returns when every killed process has exited.
func (n *Node) KillNode() time.Time {
	pids := n.freezeServer()
	at := time.Now()
	_ = syscall.Kill(-n.keeper.cmd.Process.Pid, syscall.SIGKILL)
	killAll(pids)
	<-n.keeper.done
	waitGone(pids, 10*time.Second)
	return at
}

// freezeServer stops the node's postmaster with SIGSTOP and returns its pid
// and its children's. The postmaster alone forks, so once it is stopped the
// list is complete: a backend forked between a listing and a kill would
// outlive the kill, attached to the old shared memory until it noticed, and
// a start in that time would refuse to run while the segment is "still in
// use".
func (n *Node) freezeServer() []int {
	pm := n.postmaster()
	if pm == 0 {
		return nil
	}
	_ = syscall.Kill(pm, syscall.SIGSTOP)
	// The signal is delivered on the way back to user space: a fork under
	// way finishes first. List the children only once it has stopped.
	waitState(pm, time.Now().Add(time.Second), "T")
	return append([]int{pm}, children(pm)...)
}

func killAll(pids []int) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Log returns the node's keeper and server log so far.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.log)
	return string(b)
}

// Logs returns the tail of every keeper's log, for failure messages.
func (f *Formation) Logs() string {
	var b strings.Builder
	for _, n := range append([]*Node{f.monitor}, f.Nodes...) {
		l := n.Log()
		if len(l) > 3000 {
			l = "…" + l[len(l)-3000:]
		}
		fmt.Fprintf(&b, "---- %s\n%s\n", n.Name, l)
		if ps := n.processes(); ps != "" {
			fmt.Fprintf(&b, "---- processes in %s's data directory\n%s", n.Name, ps)
		}
	}
	return b.String()
}

// processes lists, one a line, the processes whose working directory is
// the node's data directory (every PostgreSQL process chdirs there): pid,
// parent, state and command line. A server that cannot start again after a
// kill because its old shared memory is "still in use" has one of these
// left over, and the list says which.
func (n *Node) processes() string {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var b strings.Builder
	for _, p := range stats {
		dir := filepath.Dir(p)
		if cwd, err := os.Readlink(filepath.Join(dir, "cwd")); err != nil || cwd != n.Dir {
			continue
		}
		state, ppid, ok := procStat(p)
		if !ok {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		fmt.Fprintf(&b, "pid %s ppid %d state %s: %s\n", filepath.Base(dir), ppid, state,
			strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")))
	}
	return b.String()
}

func (f *Formation) node(name string) *Node {
	for _, n := range f.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// postmaster returns the pid of the node's running postmaster, or 0.
func (n *Node) postmaster() int {
	b, err := os.ReadFile(filepath.Join(n.Dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pm, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || !alive(pm) {
		return 0
	}
	return pm
}

// waitGone waits up to limit until none of pids is running. A zombie counts
// as gone: it holds no memory, and an orphan's may never be reaped where the
// machine's init does not reap.
func waitGone(pids []int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for _, pid := range pids {
		waitState(pid, deadline, "Z")
	}
}

// waitState polls process pid until it is in state (a letter of
// /proc/PID/stat) or gone, or until deadline.
func waitState(pid int, deadline time.Time, state string) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	for time.Now().Before(deadline) {
		if st, _, ok := procStat(path); !ok || st == state {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		if _, ppid, ok := procStat(p); ok && ppid == pid {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			out = append(out, child)
		}
	}
	return out
}

// procStat reads a process's state and parent from its /proc/PID/stat.
func procStat(path string) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(fields[1])
	return fields[0], ppid, err == nil
}

func (n *Node) appendConf(lines ...string) {
	if len(lines) == 0 {
		return
	}
	path := filepath.Join(n.Dir, "postgresql.auto.conf")
	old, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(old, []byte(strings.Join(lines, "\n")+"\n")...), 0o600); err != nil {
		n.f.t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		chownPostgres(n.f.t, path)
	}
}

// autoctl runs pg_autoctl to completion, its output appended to logPath.
func (f *Formation) autoctl(logPath string, args ...string) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, lookPath("pg_autoctl"), args...)
	cmd.Env = append(os.Environ(), f.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if os.Geteuid() == 0 {
		uid, gid := postgresIDs(f.t)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	err := cmd.Run()
	appendFile(logPath, out.Bytes())
	if err != nil {
		f.t.Fatalf("pg_autoctl %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
}

// teardown stops every keeper (which stops its server), then whatever a
// killed node left: its server's leftover shared memory segment.
func (f *Formation) teardown() {
	nodes := append(append([]*Node{}, f.Nodes...), f.monitor)
	for _, n := range nodes {
		if n != nil && n.keeper != nil {
			go n.keeper.stop(syscall.SIGTERM, 20*time.Second)
		}
	}
	for _, n := range nodes {
		if n != nil && n.keeper != nil {
			n.keeper.stop(syscall.SIGTERM, 20*time.Second)
		}
	}
	for _, n := range nodes {
		if n != nil {
			removeShm(n.Dir)
		}
	}
	os.RemoveAll(f.root)
}

// removeShm removes the System V shared memory segment of a server that was
// killed and never restarted (its next start would have), as recorded on
// line 7 of its postmaster.pid ("key id").
func removeShm(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return
	}
	lines := strings.Split(string(b), "\n")
	if pm, _ := strconv.Atoi(strings.TrimSpace(lines[0])); pm == 0 || alive(pm) || len(lines) < 7 {
		return
	}
	fields := strings.Fields(lines[6])
	if len(fields) != 2 {
		return
	}
	id, err := strconv.Atoi(fields[1])
	if err != nil {
		return
	}
	const ipcRmid = 0
	_, _, _ = syscall.Syscall(syscall.SYS_SHMCTL, uintptr(id), ipcRmid, 0)
}

func appendFile(path string, b []byte) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(b)
}
