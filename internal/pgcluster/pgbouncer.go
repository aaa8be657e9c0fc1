package pgcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bouncer is a PgBouncer in transaction pooling mode in front of one
// cluster: clients connect to it as to the server, and their transactions
// share at most PoolSize server connections.
type Bouncer struct {
	t        testing.TB
	Port     int
	PoolSize int
	dir      string
	d        *daemon
}

// PgBouncerMissing says why PgBouncer cannot run here, or "" when it can.
func PgBouncerMissing() string {
	if pgbouncerPath() == "" {
		return "no pgbouncer (apt-get install -y pgbouncer)"
	}
	return ""
}

// NeedPgBouncer skips t with NOT RUN when PgBouncer is missing, or fails it
// when MINIPAY_REQUIRE_HA=1.
func NeedPgBouncer(t testing.TB) {
	t.Helper()
	need(t, PgBouncerMissing())
}

func pgbouncerPath() string { return lookPath("pgbouncer", "/usr/sbin", "/usr/local/sbin") }

// PgBouncer starts a PgBouncer in front of c, pooling every database of c in
// transaction mode over at most poolSize server connections, and stops it
// when t ends. It is the configuration docs/operations.md recommends; only
// the addresses and the pool size differ.
func (c *Cluster) PgBouncer(t testing.TB, poolSize int) *Bouncer {
	t.Helper()
	return NewBouncer(t, c.Port, poolSize)
}

// NewBouncer starts a PgBouncer like Cluster.PgBouncer in front of the
// server on 127.0.0.1:serverPort, which trusts the postgres user.
func NewBouncer(t testing.TB, serverPort, poolSize int) *Bouncer {
	t.Helper()
	NeedPgBouncer(t)
	bin, err := binDir()
	if err != nil {
		t.Fatalf("pgcluster: %v", err)
	}
	root := newRoot(t, bin)
	b := &Bouncer{t: t, Port: freePort(t), PoolSize: poolSize, dir: root}
	ini := filepath.Join(root, "pgbouncer.ini")
	users := filepath.Join(root, "users.txt")
	b.write(users, `"postgres" ""`+"\n")
	b.write(ini, BouncerConfig(serverPort, b.Port, poolSize, users, root))
	b.d = startDaemon(t, root, filepath.Join(root, "pgbouncer.log"), nil, pgbouncerPath(), ini)
	t.Cleanup(func() {
		b.d.stop(syscall.SIGINT, 10*time.Second) // SIGINT: close connections and exit now
		os.RemoveAll(root)
	})
	b.waitReady()
	return b
}

// BouncerConfig is the pgbouncer.ini of a PgBouncer on listenPort in front
// of the server on serverPort, both on 127.0.0.1, with its users file and
// a directory for its pid file. It logs to stderr.
func BouncerConfig(serverPort, listenPort, poolSize int, usersFile, dir string) string {
	lines := []string{
		"[databases]",
		fmt.Sprintf("* = host=127.0.0.1 port=%d", serverPort),
		"[pgbouncer]",
		"listen_addr = 127.0.0.1",
		"listen_port = " + strconv.Itoa(listenPort),
		"unix_socket_dir =",
		"auth_type = trust",
		"auth_file = " + usersFile,
		"admin_users = postgres",
		// Transaction pooling: a server connection belongs to a client for
		// one transaction only.
		"pool_mode = transaction",
		"default_pool_size = " + strconv.Itoa(poolSize),
		"max_db_connections = " + strconv.Itoa(poolSize),
		"max_client_conn = 1000",
		// After a failed login to the server (it is restarting), try again
		// within a second rather than the default 15 s.
		"server_login_retry = 1",
		// A client waits this long for a server connection before an error.
		"query_wait_timeout = 30",
		"pidfile = " + filepath.Join(dir, "pgbouncer.pid"),
	}
	return strings.Join(lines, "\n") + "\n"
}

// URL is a connection URL for database db through the pooler, with the
// statement mode a transaction pooler needs.
func (b *Bouncer) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable&default_query_exec_mode=cache_describe", b.Port, db)
}

// ServerConnections returns how many server connections the pooler has open
// to database db, from its SHOW POOLS (active, idle, used, tested, login).
func (b *Bouncer) ServerConnections(ctx context.Context, db string) (int, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/pgbouncer?sslmode=disable", b.Port))
	if err != nil {
		return 0, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol // the admin console speaks nothing else
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SHOW POOLS")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	total := 0
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return 0, err
		}
		fields := rows.FieldDescriptions()
		row := map[string]any{}
		for i, f := range fields {
			row[f.Name] = vals[i]
		}
		if row["database"] != db {
			continue
		}
		for _, k := range []string{"sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"} {
			total += toInt(row[k])
		}
	}
	return total, rows.Err()
}

// Log returns the pooler's log so far.
func (b *Bouncer) Log() string {
	out, _ := os.ReadFile(filepath.Join(b.dir, "pgbouncer.log"))
	return string(out)
}

func (b *Bouncer) waitReady() {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := b.ServerConnections(ctx, "postgres")
		cancel()
		if err == nil {
			return
		}
		if b.d.exited() || time.Now().After(deadline) {
			b.t.Fatalf("pgbouncer did not start: %v\n%s", err, b.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *Bouncer) write(path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		b.t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		chownPostgres(b.t, path)
	}
}

func toInt(v any) int {
	switch n := v.(type) {
	case int64:
		return int(n)
	case int32:
		return int(n)
	case string:
		i, _ := strconv.Atoi(n)
		return i
	}
	return 0
}
