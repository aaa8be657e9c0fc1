package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// order is the order "bench all" runs the benchmarks in: cheapest setup
// first, so a broken database fails fast.
var order = []string{"ledger", "checkout", "webhooks", "settlement"}

// Markers delimit the part of the report that "bench all" rewrites; the
// prose around them is kept.
const (
	beginMarker = "<!-- bench all: begin (generated) -->"
	endMarker   = "<!-- bench all: end -->"
)

// runAll runs every benchmark with the same options and writes their results
// between the markers of the report at out (created when missing).
func runAll(ctx context.Context, o Options, out string) error {
	var results []*Result
	for _, kind := range order {
		fn, ok := kinds[kind]
		if !ok {
			continue
		}
		fmt.Fprintf(o.Stderr, "bench all: %s…\n", kind)
		res, err := fn(ctx, o)
		if err != nil {
			return fmt.Errorf("bench %s: %w", kind, err)
		}
		fmt.Fprint(o.Stdout, res.text())
		results = append(results, res)
	}
	section := report(ctx, o, results)
	if err := splice(out, section); err != nil {
		return err
	}
	fmt.Fprintf(o.Stdout, "bench all: wrote %s\n", out)
	return nil
}

// report renders the results as Markdown: the machine, then one table row
// per benchmark, then each benchmark's further figures.
func report(ctx context.Context, o Options, results []*Result) string {
	var b strings.Builder
	fmt.Fprintln(&b, beginMarker)
	fmt.Fprintf(&b, "### Run of %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	st := measureSetup(o.DatabaseURL) // see docs/operations.md, "The host"
	fmt.Fprintf(&b, "- Machine: %s, %d CPUs, %s RAM, %s/%s", cpuModel(), runtime.NumCPU(), memTotal(), runtime.GOOS, runtime.GOARCH)
	if st.wake > 0 {
		fmt.Fprintf(&b, "; a wake-up round trip across two cores %.1f µs", st.wakeUS())
	}
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, "- PostgreSQL: %s", serverVersion(ctx, o.DatabaseURL))
	if st.conn != "" {
		fmt.Fprintf(&b, ", reached over %s", st.conn)
	}
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, "- Go: %s; each measurement %s after a warm-up\n\n", runtime.Version(), o.Duration)
	fmt.Fprintln(&b, "| benchmark | clients | throughput | p50 | p99 | pgbench yardstick | ratio |")
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		base, ratio := "—", "—"
		if r.BaselineTPS > 0 {
			base = fmt.Sprintf("%.0f/s", r.BaselineTPS)
			ratio = fmt.Sprintf("%.1fx", r.ratio())
		}
		p50, p99 := "—", "—"
		if r.P99 > 0 {
			p50, p99 = fmt.Sprintf("%.2f ms", ms(r.P50)), fmt.Sprintf("%.2f ms", ms(r.P99))
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f %s/s | %s | %s | %s | %s |\n",
			r.Kind, r.Clients, r.Throughput, r.Unit, p50, p99, base, ratio)
	}
	for _, r := range results {
		if len(r.Extra) == 0 && len(r.Notes) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n**%s**\n\n", r.Kind)
		for _, kv := range r.Extra {
			fmt.Fprintf(&b, "- %s: %v\n", kv.Key, kv.Value)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	fmt.Fprintln(&b, endMarker)
	return b.String()
}

// splice replaces the generated section of the file at path, or appends one.
func splice(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if len(old) == 0 {
		old = []byte("# Benchmarks\n\n")
	}
	i := bytes.Index(old, []byte(beginMarker))
	j := bytes.Index(old, []byte(endMarker))
	var next []byte
	if i >= 0 && j > i {
		next = append(append(append([]byte{}, old[:i]...), section...), old[j+len(endMarker)+1:]...)
	} else {
		next = append(append(old, '\n'), section...)
	}
	if err := os.WriteFile(path, next, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	out, err := exec.Command("awk", "/MemTotal/ {printf \"%.0f GiB\", $2/1048576}", "/proc/meminfo").Output()
	if err != nil || len(out) == 0 {
		return "unknown"
	}
	return string(out)
}

func serverVersion(ctx context.Context, url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "unknown"
	}
	cfg.Database = "postgres" // the named database may not exist yet
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "unknown"
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version')`).Scan(&v); err != nil {
		return "unknown"
	}
	var fsync, sc string
	_ = conn.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).Scan(&fsync, &sc)
	return fmt.Sprintf("%s (fsync %s, synchronous_commit %s)", v, fsync, sc)
}
