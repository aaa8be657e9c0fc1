// Package pgcluster runs throwaway PostgreSQL servers for tests that must
// do to a database what no shared server should suffer: restart it in the
// middle of a load, put PgBouncer in front of it, or kill the primary of a
// pg_auto_failover formation.
//
// A cluster lives in a temporary directory, listens on 127.0.0.1 on a free
// port, trusts local connections and is stopped and deleted when the test
// ends. The server binaries come from PG_BINDIR, or pg_config --bindir, or
// the newest /usr/lib/postgresql/*/bin. Run as root, the server runs as the
// postgres user, since PostgreSQL refuses to run as root.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is one running (or stopped) PostgreSQL server.
type Cluster struct {
	t       testing.TB
	bin     string
	Dir     string // data directory
	Port    int
	logFile string
}

// New initializes and starts a cluster configured with the given extra
// postgresql.conf lines. It is stopped and removed when t ends.
func New(t testing.TB, conf ...string) *Cluster {
	t.Helper()
	c := newCluster(t)
	c.run("initdb", "-D", c.Dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	c.configure(conf...)
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
	c.write("pg_hba.conf", hba)
	c.Start()
	return c
}

func newCluster(t testing.TB) *Cluster {
	bin, err := binDir()
	if err != nil {
		t.Fatalf("pgcluster: %v", err)
	}
	root := newRoot(t, bin)
	c := &Cluster{t: t, bin: bin, Dir: filepath.Join(root, "data"), Port: freePort(t), logFile: filepath.Join(root, "log")}
	if err := os.Mkdir(c.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		chownPostgres(t, c.Dir)
	}
	t.Cleanup(func() {
		c.stop("immediate")
		os.RemoveAll(root)
	})
	return c
}

// newRoot makes the temporary directory that holds everything of one
// cluster, formation or pooler, owned by the postgres user when we are root.
func newRoot(t testing.TB, bin string) string {
	reapOrphans(bin)
	root, err := os.MkdirTemp("", "minipay-pg")
	if err != nil {
		t.Fatal(err)
	}
	// Whose cluster this is: a test process killed (by its timeout, say)
	// runs no cleanup, and the next New stops what it left running.
	if err := os.WriteFile(filepath.Join(root, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		chownPostgres(t, root)
	}
	return root
}

// configure appends the settings every test cluster gets, then conf.
func (c *Cluster) configure(conf ...string) {
	lines := append([]string{
		"listen_addresses = '127.0.0.1'",
		"port = " + strconv.Itoa(c.Port),
		"unix_socket_directories = ''",
		"max_connections = 100",
		"wal_level = replica",
		"max_wal_senders = 5",
		"hot_standby = on",
		"fsync = on",
	}, conf...)
	path := filepath.Join(c.Dir, "postgresql.auto.conf")
	old, _ := os.ReadFile(path)
	c.write("postgresql.auto.conf", string(old)+strings.Join(lines, "\n")+"\n")
}

// URL is a connection URL for database db on this cluster.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	c.run("pg_ctl", "-D", c.Dir, "-l", c.logFile, "-w", "-t", "60", "start")
}

// Stop stops the server: mode is "fast" (clean) or "immediate" (as a crash
// would, leaving recovery to the next start).
func (c *Cluster) Stop(mode string) {
	c.t.Helper()
	if err := c.stop(mode); err != nil {
		c.t.Fatalf("pgcluster: stop: %v", err)
	}
}

// Restart stops the server with mode and starts it again.
func (c *Cluster) Restart(mode string) {
	c.t.Helper()
	c.Stop(mode)
	c.Start()
}

// Log returns the server's log so far, for failure messages.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(c.logFile)
	return string(b)
}

// Exec runs sql on database db.
func (c *Cluster) Exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, c.URL(db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func (c *Cluster) stop(mode string) error {
	if _, err := os.Stat(filepath.Join(c.Dir, "postmaster.pid")); err != nil {
		return nil // not running
	}
	_, err := c.exec("pg_ctl", "-D", c.Dir, "-m", mode, "-w", "-t", "60", "stop")
	return err
}

func (c *Cluster) run(name string, args ...string) {
	c.t.Helper()
	if out, err := c.exec(name, args...); err != nil {
		c.t.Fatalf("pgcluster: %s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, c.Log())
	}
}

// exec runs a server binary, as the postgres user when we are root.
func (c *Cluster) exec(name string, args ...string) (string, error) {
	path := filepath.Join(c.bin, name)
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "postgres", "--", path}, args...)
		path = "runuser"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (c *Cluster) write(name, content string) {
	path := filepath.Join(c.Dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		c.t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		chownPostgres(c.t, path)
	}
}

// reapOrphans stops and removes the clusters, formations and poolers of
// test processes that died without cleaning up: it kills the helper
// processes they recorded, then stops every server whose data directory
// is still there.
func reapOrphans(bin string) {
	roots, _ := filepath.Glob(filepath.Join(os.TempDir(), "minipay-pg*"))
	for _, root := range roots {
		b, err := os.ReadFile(filepath.Join(root, "owner"))
		if err != nil {
			continue // not ours, or still being set up
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || alive(pid) {
			continue
		}
		killRecorded(root)
		pids, _ := filepath.Glob(filepath.Join(root, "*", "postmaster.pid"))
		for _, p := range pids {
			c := &Cluster{bin: bin, Dir: filepath.Dir(p)}
			_ = c.stop("immediate")
		}
		os.RemoveAll(root)
	}
}

// alive reports whether a process with this id exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func binDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb) found; set PG_BINDIR")
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func chownPostgres(t testing.TB, paths ...string) {
	uid, gid := postgresIDs(t)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}

// freePort asks the kernel for a port that is free now.
func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
