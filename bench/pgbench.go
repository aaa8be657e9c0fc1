package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// script is one pgbench script with its weight.
type script struct {
	name   string
	body   string
	weight int
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench runs scripts against dbURL with the given clients for d and
// returns the transactions per second it reports.
func pgbench(ctx context.Context, dbURL string, clients int, d time.Duration, scripts ...script) (float64, error) {
	return pgbenchArgs(ctx, dbURL, clients, d, nil, scripts...)
}

// pgbenchArgs is pgbench with further arguments, such as -D variables.
func pgbenchArgs(ctx context.Context, dbURL string, clients int, d time.Duration, extra []string, scripts ...script) (float64, error) {
	dir, err := os.MkdirTemp("", "minipay-pgbench")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	jobs := min(clients, 4)
	args := []string{"-n", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(jobs), "-T", strconv.Itoa(int(d.Seconds()))}
	args = append(args, extra...)
	for _, s := range scripts {
		path := filepath.Join(dir, s.name+".sql")
		if err := os.WriteFile(path, []byte(s.body), 0o600); err != nil {
			return 0, err
		}
		args = append(args, "-f", fmt.Sprintf("%s@%d", path, s.weight))
	}
	args = append(args, dbURL)
	cmd := exec.CommandContext(ctx, "pgbench", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("pgbench: %w\n%s", err, out.String())
	}
	m := tpsLine.FindSubmatch(out.Bytes())
	if m == nil {
		return 0, fmt.Errorf("pgbench printed no tps:\n%s", out.String())
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// commitRate measures the bare durable commit rate: one two-row insert per
// transaction.
func commitRate(ctx context.Context, dbURL string, clients int, d time.Duration) (float64, error) {
	return pgbench(ctx, dbURL, clients, d, script{name: "commit", weight: 1,
		body: "INSERT INTO bench_commit VALUES (1, 2), (3, 4);\n"})
}

// checkConnections makes sure pgbench can open as many connections as the
// run has clients, before anything is measured: the yardstick must run with
// the same client count.
func checkConnections(ctx context.Context, o Options) error {
	if o.NoBaseline {
		return nil
	}
	cfg, err := pgx.ParseConfig(o.DatabaseURL)
	if err != nil {
		return fmt.Errorf("parse database url: %w", err)
	}
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	var max, used int
	err = conn.QueryRow(ctx, `SELECT current_setting('max_connections')::int, (SELECT count(*) FROM pg_stat_activity)`).Scan(&max, &used)
	if err != nil {
		return fmt.Errorf("read max_connections: %w", err)
	}
	if free := max - used - 5; o.Clients > free {
		return fmt.Errorf("pgbench needs %d connections for the yardstick but PostgreSQL allows %d more "+
			"(max_connections %d); lower --clients, run with --no-baseline, or raise max_connections "+
			"(ALTER SYSTEM SET max_connections = %d, then restart PostgreSQL)", o.Clients, free, max, o.Clients+50)
	}
	return nil
}
