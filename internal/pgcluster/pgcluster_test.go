package pgcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestRestart keeps committed data across an immediate (crash) stop.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	c := New(t)
	if err := c.Exec(ctx, "postgres", `CREATE TABLE t (v int); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	c.Restart("immediate")
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows after crash restart = %d, %v; want 1", n, err)
	}
}

// TestReapOrphans stops the cluster of a test process that died without
// cleaning up, and leaves a live one's alone.
func TestReapOrphans(t *testing.T) {
	live := New(t)
	orphan := New(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	owner := filepath.Join(filepath.Dir(orphan.Dir), "owner")
	if err := os.WriteFile(owner, []byte(strconv.Itoa(dead.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := binDir()
	if err != nil {
		t.Fatal(err)
	}
	reapOrphans(bin)
	if _, err := os.Stat(orphan.Dir); !os.IsNotExist(err) {
		t.Fatalf("the orphan's cluster is still there: %v", err)
	}
	if err := live.Exec(ctxT(t), "postgres", `SELECT 1`); err != nil {
		t.Fatalf("the live cluster was stopped: %v", err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestFormation runs pg_auto_failover's life cycle: a primary and a
// synchronous secondary under a monitor; a row committed on the primary
// survives the primary's death, and the monitor promotes the secondary,
// which then takes writes through the multi-host URL.
func TestFormation(t *testing.T) {
	NeedAutoFailover(t)
	ctx := ctxT(t)
	start := time.Now()
	f := NewFormation(t, "app", 2, "fsync = off")
	t.Logf("formation up in %v", time.Since(start).Round(100*time.Millisecond))
	conn, err := pgx.Connect(ctx, f.URL("app"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE t (v int); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	old, err := f.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	killed := old.KillNode()
	f.WaitFor(time.Minute, "promoted secondary", func(st []NodeState) bool {
		for _, s := range st {
			if s.Name != old.Name && s.Current == "wait_primary" && s.Assigned == "wait_primary" {
				return true
			}
		}
		return false
	})
	t.Logf("secondary promoted %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	conn, err = pgx.Connect(ctx, f.URL("app"))
	if err != nil {
		t.Fatalf("connect after the failover: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if _, err := conn.Exec(ctx, `INSERT INTO t VALUES (2)`); err != nil {
		t.Fatalf("write to the promoted node: %v", err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows on the promoted node = %d, %v; want 2", n, err)
	}
}

// TestCitus builds a coordinator with two workers, spreads a table over
// them, then adds a third worker and moves shards onto it with the
// rebalancer while keeping every row.
func TestCitus(t *testing.T) {
	ctx := ctxT(t)
	start := time.Now()
	c := NewCitus(t, 2)
	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatalf("%v\n%s", err, c.Logs())
	}
	t.Logf("cluster up in %v", time.Since(start).Round(100*time.Millisecond))
	conn, err := pgx.Connect(ctx, c.URL("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		`CREATE TABLE t (k int PRIMARY KEY, v text)`,
		`SELECT create_distributed_table('t', 'k')`,
		`INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var nodes int
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 't'::regclass`).Scan(&nodes); err != nil || nodes != 2 {
		t.Fatalf("shards on %d nodes, %v; want 2", nodes, err)
	}
	w, err := c.AddWorker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT citus_rebalance_start(shard_transfer_mode => 'force_logical')`); err != nil {
		t.Fatal(err)
	}
	if state, err := c.WaitRebalance(ctx, "app", time.Minute); err != nil || state != "finished" {
		t.Fatalf("rebalance %s, %v\n%s", state, err, c.Logs())
	}
	var onNew, rows int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM citus_shards WHERE table_name = 't'::regclass AND nodeport = $1`, w.Port).Scan(&onNew); err != nil || onNew == 0 {
		t.Fatalf("shards on the new worker = %d, %v", onNew, err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&rows); err != nil || rows != 1000 {
		t.Fatalf("rows after the rebalance = %d, %v; want 1000", rows, err)
	}
}

// TestProcessesInTheDataDirectory: a failed formation's logs list the
// processes left running in a node's data directory, such as a server's
// child that outlived a kill and holds its shared memory.
func TestProcessesInTheDataDirectory(t *testing.T) {
	n := &Node{Dir: t.TempDir()}
	if ps := n.processes(); ps != "" {
		t.Fatalf("an empty directory has processes:\n%s", ps)
	}
	sleeper := exec.Command("sleep", "60")
	sleeper.Dir = n.Dir
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
	}()
	want := fmt.Sprintf("pid %d ppid %d state ", sleeper.Process.Pid, os.Getpid())
	if ps := n.processes(); !strings.Contains(ps, want) || !strings.Contains(ps, ": sleep 60\n") {
		t.Fatalf("processes() = %q; want a line with %q and the command", ps, want)
	}
}

// TestKillPostgresLeavesNoChild: a kill of a server that forks all the
// time (as a postmaster does while clients connect) leaves none of its
// children running, not even one forked while the kill listed them.
func TestKillPostgresLeavesNoChild(t *testing.T) {
	n := &Node{Dir: t.TempDir()}
	pm := exec.Command("sh", "-c", "while :; do sleep 60 & sleep 0.001; done")
	pm.Dir = n.Dir // every child's working directory, as a server's is its data directory
	if err := pm.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = pm.Process.Kill()
		_ = pm.Wait()
	}()
	if err := os.WriteFile(filepath.Join(n.Dir, "postmaster.pid"), []byte(fmt.Sprintf("%d\n", pm.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(children(pm.Process.Pid)) < 20; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the stand-in postmaster has %d children after 10 s, want 20", len(children(pm.Process.Pid)))
		}
	}
	n.KillPostgres()
	var alive []string
	for _, line := range strings.Split(strings.TrimSpace(n.processes()), "\n") {
		if line != "" && !strings.Contains(line, " state Z: ") {
			alive = append(alive, line)
		}
	}
	if len(alive) > 0 {
		t.Fatalf("%d processes outlived the kill:\n%s", len(alive), strings.Join(alive, "\n"))
	}
}
