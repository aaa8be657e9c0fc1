package pgcluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestStandbyPromotion replicates a row to a standby, promotes it and
// writes to it: the package's whole life cycle.
func TestStandbyPromotion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	primary := New(t)
	if err := primary.Exec(ctx, "postgres", `CREATE TABLE t (v int); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	standby := primary.Standby(t)
	primary.Conf("synchronous_standby_names = 'standby'")
	// Synchronous: once the standby is attached, this commit is on it too.
	if err := primary.Exec(ctx, "postgres", `INSERT INTO t VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	primary.Stop("immediate")
	standby.Promote()
	conn, err := pgx.Connect(ctx, standby.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = conn.Exec(ctx, `INSERT INTO t VALUES (3)`)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("promoted standby refuses writes: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("rows on the promoted standby = %d, %v; want 3", n, err)
	}
}

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
