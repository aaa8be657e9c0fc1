package pgcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Citus is a Citus cluster: a coordinator and its workers, each a Cluster
// of its own on a loopback port, all with the citus extension preloaded.
// Databases made with CreateDatabase have the extension on every node and
// the workers registered with the coordinator, so a client connected to
// the coordinator sees one database.
type Citus struct {
	t           testing.TB
	Coordinator *Cluster
	mu          sync.Mutex
	Workers     []*Cluster
	conf        []string
	dbs         []string // made by CreateDatabase, to repeat on workers added later
}

// CitusMissing says why Citus cannot run here, or "" when it can.
func CitusMissing() string {
	bin, err := binDir()
	if err != nil {
		return err.Error()
	}
	lib := filepath.Join(filepath.Dir(bin), "lib", "citus.so")
	if _, err := os.Stat(lib); err != nil {
		return "no Citus extension at " + lib + " (build Citus 13.2.2 for this PostgreSQL, see docs/scaling.md)"
	}
	return ""
}

// NeedCitus skips t with NOT RUN when Citus is missing, or fails it when
// MINIPAY_REQUIRE_CITUS=1 (CI, which builds it).
func NeedCitus(t testing.TB) {
	t.Helper()
	if missing := CitusMissing(); missing != "" {
		if os.Getenv("MINIPAY_REQUIRE_CITUS") == "1" {
			t.Fatalf("%s, and MINIPAY_REQUIRE_CITUS=1", missing)
		}
		t.Skipf("NOT RUN: %s", missing)
	}
}

// citusConf is what every node of a test cluster runs with, before the
// caller's settings. wal_level = logical lets the shard rebalancer move
// shards by logical replication while they take writes. No test crashes a
// node of these clusters, so they need not survive one: fsync is off,
// which makes each test's database (created on every node) cheap.
var citusConf = []string{
	"fsync = off",
	"shared_preload_libraries = 'citus'",
	"wal_level = logical",
	"max_replication_slots = 20",
	"max_wal_senders = 20",
	"max_worker_processes = 32",
	"max_connections = 300",
	// Few shards per table: the test tables are small, and DDL and moves
	// cost per shard.
	"citus.shard_count = 4",
	// The cluster lives on one machine and one loopback interface.
	"citus.node_conninfo = 'sslmode=disable'",
}

// NewCitus starts a coordinator and the given number of workers, with the
// extra postgresql.conf lines conf on every node, and stops and removes
// them all when t ends. It skips t (NOT RUN) when Citus is missing.
func NewCitus(t testing.TB, workers int, conf ...string) *Citus {
	t.Helper()
	NeedCitus(t)
	c := &Citus{t: t, conf: append(append([]string{}, citusConf...), conf...)}
	c.Coordinator = New(t, c.conf...)
	for i := 0; i < workers; i++ {
		c.Workers = append(c.Workers, New(t, c.conf...))
	}
	return c
}

// URL is a connection URL for database db through the coordinator.
func (c *Citus) URL(db string) string { return c.Coordinator.URL(db) }

// CreateDatabase creates database db on every node, creates the citus
// extension in it, and registers the coordinator and the workers with the
// coordinator's copy.
func (c *Citus) CreateDatabase(ctx context.Context, db string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ident := pgx.Identifier{db}.Sanitize()
	nodes := append([]*Cluster{c.Coordinator}, c.Workers...)
	for _, n := range nodes {
		if err := n.Exec(ctx, "postgres", "CREATE DATABASE "+ident); err != nil {
			return fmt.Errorf("create database %s on port %d: %w", db, n.Port, err)
		}
		if err := n.Exec(ctx, db, "CREATE EXTENSION citus"); err != nil {
			return fmt.Errorf("create extension citus in %s on port %d: %w", db, n.Port, err)
		}
	}
	// The coordinator names itself so that workers (and the rebalancer)
	// can reach it; groupid 0 keeps it a coordinator that holds no shards.
	sql := fmt.Sprintf(`SELECT citus_set_coordinator_host('127.0.0.1', %d)`, c.Coordinator.Port)
	if err := c.Coordinator.Exec(ctx, db, sql); err != nil {
		return fmt.Errorf("set coordinator host: %w", err)
	}
	for _, w := range c.Workers {
		if err := c.addNode(ctx, db, w); err != nil {
			return err
		}
	}
	c.dbs = append(c.dbs, db)
	return nil
}

// DropDatabase drops db on every node (a test's own database, at its end).
func (c *Citus) DropDatabase(ctx context.Context, db string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ident := pgx.Identifier{db}.Sanitize()
	var errs []string
	for _, n := range append([]*Cluster{c.Coordinator}, c.Workers...) {
		if _, err := os.Stat(filepath.Join(n.Dir, "postmaster.pid")); err != nil {
			continue // stopped and removed already (a worker added by the test)
		}
		if err := n.Exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for i, d := range c.dbs {
		if d == db {
			c.dbs = append(c.dbs[:i], c.dbs[i+1:]...)
			break
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("drop %s: %s", db, strings.Join(errs, "; "))
	}
	return nil
}

func (c *Citus) addNode(ctx context.Context, db string, w *Cluster) error {
	sql := fmt.Sprintf(`SELECT citus_add_node('127.0.0.1', %d)`, w.Port)
	if err := c.Coordinator.Exec(ctx, db, sql); err != nil {
		return fmt.Errorf("add worker on port %d to %s: %w", w.Port, db, err)
	}
	return nil
}

// AddWorker starts one more worker and adds it to every database made by
// CreateDatabase. It holds no shards until they are moved to it (by
// citus_rebalance_start, say).
func (c *Citus) AddWorker(ctx context.Context) (*Cluster, error) {
	c.t.Helper()
	w := New(c.t, c.conf...)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, db := range c.dbs {
		ident := pgx.Identifier{db}.Sanitize()
		if err := w.Exec(ctx, "postgres", "CREATE DATABASE "+ident); err != nil {
			return nil, fmt.Errorf("create database %s on the new worker: %w", db, err)
		}
		if err := w.Exec(ctx, db, "CREATE EXTENSION citus"); err != nil {
			return nil, fmt.Errorf("create extension citus on the new worker: %w", err)
		}
		if err := c.addNode(ctx, db, w); err != nil {
			return nil, err
		}
	}
	c.Workers = append(c.Workers, w)
	return w, nil
}

// Logs returns every node's server log, for failure messages.
func (c *Citus) Logs() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- coordinator (port %d)\n%s", c.Coordinator.Port, c.Coordinator.Log())
	for i, w := range c.Workers {
		fmt.Fprintf(&b, "--- worker %d (port %d)\n%s", i+1, w.Port, w.Log())
	}
	return b.String()
}

// WaitRebalance waits until the background rebalance job started by
// citus_rebalance_start on db is finished, and returns its final state.
func (c *Citus) WaitRebalance(ctx context.Context, db string, limit time.Duration) (string, error) {
	conn, err := pgx.Connect(ctx, c.URL(db))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(limit)
	for {
		var state string
		err := conn.QueryRow(ctx, `SELECT state::text FROM pg_dist_background_job ORDER BY job_id DESC LIMIT 1`).Scan(&state)
		if err != nil {
			return "", fmt.Errorf("rebalance job state: %w", err)
		}
		switch state {
		case "finished", "cancelled", "failed":
			return state, nil
		}
		if time.Now().After(deadline) {
			return state, fmt.Errorf("rebalance still %s after %v", state, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
