// Package bench is "minipay bench": repeatable measurements of minipay's
// throughput and latency, each printed beside a pgbench yardstick run on the
// same database with the same number of clients.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/minipay/minipay/citus"
	"github.com/minipay/minipay/internal/pgdb"
)

// Options are the flags every benchmark takes.
type Options struct {
	Duration    time.Duration
	Clients     int
	JSON        bool
	DatabaseURL string
	CPUProfile  string
	MemProfile  string // renewals: the live heap when the measured run ends
	Keep        bool   // keep the benchmark database afterwards
	NoBaseline  bool
	Workers     int           // ledger poster workers (0: the ledger's default)
	Linger      time.Duration // ledger poster linger (0: the ledger's default)
	Payments    int           // settlement: payments to seed (0: the benchmark's default)
	// Subscriptions is how many due subscriptions renewals seeds (0: the
	// benchmark's default).
	Subscriptions int
	// AnchorSpread is how long before the last of them the renewals'
	// subscriptions were signed, evenly (0: all at one instant).
	AnchorSpread time.Duration
	PoolerURL    string // checkout-pooled: a transaction pooler in front of DatabaseURL's server
	// Open loop (ledger and checkout): Rate offers that many operations per
	// second on a fixed schedule instead of running closed-loop clients;
	// FindMax searches for the highest rate whose p99 stays within the
	// benchmark's limit, sent by Senders goroutines (0: the benchmark's
	// default), and draws p99 against rate at Plot.
	Rate    float64
	FindMax bool
	Senders int
	Plot    string
	Steps   int // find-max: rates measured at most (0: findMaxSteps)
	Stdout  io.Writer
	Stderr  io.Writer
	Getenv  func(string) string
}

// kinds maps a benchmark name to its function.
var kinds = map[string]func(context.Context, Options) (*Result, error){
	"ledger":   benchLedger,
	"checkout": benchCheckout,
	// (webhooks bench)
	"webhooks": benchWebhooks,
	// (settlement bench)
	"settlement": benchSettlement,
	// (pooled checkout bench)
	"checkout-pooled": benchCheckoutPooled,
	"renewals":        benchRenewals,
}

// Command registers the flags of "minipay bench" on fs and returns what
// runs the benchmark its first argument names, once the flags are parsed.
func Command(fs *flag.FlagSet, getenv func(string) string, stdout, stderr io.Writer) func(ctx context.Context, args []string) error {
	o := Options{Stdout: stdout, Stderr: stderr, Getenv: getenv}
	defURL := getenv("DATABASE_URL")
	if defURL == "" {
		defURL = pgdb.DefaultURL
	}
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to run each measurement")
	fs.IntVar(&o.Clients, "clients", 0, "concurrent clients (default depends on the benchmark)")
	fs.BoolVar(&o.JSON, "json", false, "print one line of JSON")
	fs.StringVar(&o.DatabaseURL, "database-url", defURL, "PostgreSQL server (DATABASE_URL); a fresh database is created on it (on every node, when the URL names a Citus database)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured run to this file")
	fs.StringVar(&o.MemProfile, "memprofile", "", "renewals only: write a heap profile taken when the measured run ends to this file")
	fs.BoolVar(&o.Keep, "keep", false, "keep the benchmark database")
	fs.BoolVar(&o.NoBaseline, "no-baseline", false, "skip the pgbench yardsticks")
	fs.IntVar(&o.Workers, "workers", 0, "ledger poster workers (default: the ledger's)")
	fs.DurationVar(&o.Linger, "linger", 0, "ledger poster linger (default: the ledger's)")
	fs.IntVar(&o.Payments, "payments", 0, "settlement only: payments to seed (default 1,000,000)")
	fs.IntVar(&o.Subscriptions, "subscriptions", 0, "renewals only: due subscriptions to seed (default 1,000,000)")
	fs.DurationVar(&o.AnchorSpread, "anchor-spread", time.Hour, "renewals only: the subscriptions were signed one after another over this long, a month before they fall due (0: all at one instant)")
	fs.StringVar(&o.PoolerURL, "pooler-url", "", "checkout-pooled only: PgBouncer (pool_mode = transaction) in front of --database-url's server")
	fs.Float64Var(&o.Rate, "rate", 0, "ledger, checkout: offer this many operations per second on a fixed schedule (open loop)")
	fs.BoolVar(&o.FindMax, "find-max", false, "ledger, checkout: find the highest open-loop rate whose p99 stays within the limit (ledger 50 ms, checkout 100 ms)")
	fs.IntVar(&o.Senders, "senders", 0, "open loop: operations in flight at most (default: ledger 4096, checkout 256)")
	fs.IntVar(&o.Steps, "steps", findMaxSteps, "find-max: rates to measure at most")
	fs.StringVar(&o.Plot, "plot", "", "find-max: write the p99-against-rate plot (SVG) here (default docs/img/bench-KIND-p99.svg)")
	out := fs.String("out", "docs/benchmarks.md", `"bench all" only: the report whose generated section to rewrite`)
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("bench: name one benchmark: %s, or all", strings.Join(names(), ", "))
		}
		kind := args[0]
		if o.Rate < 0 || o.Rate > 0 && o.FindMax {
			return errors.New("bench: --rate must be positive, and --find-max searches for the rate itself")
		}
		if o.FindMax && o.Plot == "" {
			o.Plot = filepath.Join("docs", "img", "bench-"+kind+"-p99.svg")
		}
		if kind == "all" {
			return runAll(ctx, o, *out)
		}
		fn, ok := kinds[kind]
		if !ok {
			return fmt.Errorf("bench: unknown benchmark %q (have %s, or all)", kind, strings.Join(names(), ", "))
		}
		res, err := fn(ctx, o)
		if err != nil {
			return fmt.Errorf("bench %s: %w", kind, err)
		}
		res.Extra = append(res.Extra, measureSetup(o.DatabaseURL).kvs()...)
		if o.JSON {
			_, err = fmt.Fprintln(stdout, res.jsonLine())
			return err
		}
		_, err = fmt.Fprint(stdout, res.text())
		return err
	}
}

func names() []string {
	var out []string
	for k := range kinds {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Result is what a benchmark measured.
type Result struct {
	Kind        string
	Unit        string // what throughput counts, e.g. "transfers"
	Clients     int
	Duration    time.Duration
	Throughput  float64 // per second
	P50, P99    time.Duration
	BaselineTPS float64 // 0 when no baseline was measured
	Extra       []KV    // further figures, in print order
	Notes       []string
}

// KV is one extra figure.
type KV struct {
	Key   string
	Value any
}

func (r *Result) ratio() float64 {
	if r.BaselineTPS == 0 {
		return 0
	}
	return r.Throughput / r.BaselineTPS
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *Result) jsonLine() string {
	var b bytes.Buffer
	b.WriteByte('{')
	write := func(k string, v any) {
		if b.Len() > 1 {
			b.WriteString(", ")
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(v)
		b.Write(kb)
		b.WriteString(": ")
		b.Write(vb)
	}
	write("throughput", round(r.Throughput, 1))
	write("p50_ms", round(ms(r.P50), 3))
	write("p99_ms", round(ms(r.P99), 3))
	if r.BaselineTPS > 0 {
		write("baseline_tps", round(r.BaselineTPS, 1))
		write("ratio", round(r.ratio(), 2))
	}
	write("clients", r.Clients)
	write("duration_s", r.Duration.Seconds())
	for _, kv := range r.Extra {
		write(kv.Key, kv.Value)
	}
	b.WriteByte('}')
	return b.String()
}

func round(v float64, places int) float64 {
	p := 1.0
	for i := 0; i < places; i++ {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

func (r *Result) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "minipay bench %s: %d clients, %s, %s, %d CPUs\n", r.Kind, r.Clients, r.Duration, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintf(&b, "  %-22s %.0f %s/s\n", "throughput", r.Throughput, r.Unit)
	fmt.Fprintf(&b, "  %-22s p50 %.2f ms, p99 %.2f ms\n", "latency", ms(r.P50), ms(r.P99))
	if r.BaselineTPS > 0 {
		fmt.Fprintf(&b, "  %-22s %.0f %s/s (pgbench, one transaction per %s)\n", "baseline", r.BaselineTPS, r.Unit, strings.TrimSuffix(r.Unit, "s"))
		fmt.Fprintf(&b, "  %-22s %.1fx\n", "ratio", r.ratio())
	}
	for _, kv := range r.Extra {
		fmt.Fprintf(&b, "  %-22s %v\n", kv.Key, kv.Value)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

// closedLoop runs clients that each call op back to back for d (op gets the
// client's number and its own sequence number) and returns how many calls
// succeeded and their latencies. The first error stops the run, unless it
// came from the deadline.
func closedLoop(ctx context.Context, clients int, d time.Duration, op func(ctx context.Context, client, i int) error) (int64, latencies, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		n        atomic.Int64
		wg       sync.WaitGroup
		firstErr atomic.Value
	)
	lat := make(latencies, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				start := time.Now()
				err := op(ctx, c, i)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[c] = append(lat[c], time.Since(start))
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, nil, err
	}
	return n.Load(), lat, nil
}

// latencies collects request latencies from many goroutines: each client
// appends to its own slice, merged at the end.
type latencies [][]time.Duration

func (l latencies) percentiles(ps ...float64) []time.Duration {
	var all []time.Duration
	for _, c := range l {
		all = append(all, c...)
	}
	slices.Sort(all)
	out := make([]time.Duration, len(ps))
	if len(all) == 0 {
		return out
	}
	for i, p := range ps {
		idx := int(p * float64(len(all)-1))
		out[i] = all[idx]
	}
	return out
}

// freshDatabase creates an empty, migrated database on the server of url
// and returns its URL and a function that drops it (unless keep).
func freshDatabase(ctx context.Context, url, kind string, keep bool) (string, func(), error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "", nil, fmt.Errorf("parse database url: %w", err)
	}
	name := fmt.Sprintf("minipay_bench_%s_%d", kind, time.Now().Unix())
	dbURL := withDatabase(url, name)
	// A URL naming a Citus database: the fresh database gets the same
	// coordinator and workers, and migrating it distributes its tables.
	onCitus, dropCitus, err := citus.CreateDatabase(ctx, cfg, name)
	if err != nil {
		return "", nil, err
	}
	if onCitus {
		return dbURL, func() {
			if !keep {
				_ = dropCitus(context.Background())
			}
		}, nil
	}
	if err := pgdb.EnsureDatabase(ctx, dbURL); err != nil {
		return "", nil, err
	}
	drop := func() {
		if keep {
			return
		}
		cfg.Database = "postgres"
		conn, err := pgx.ConnectConfig(context.Background(), cfg)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
	return dbURL, drop, nil
}

// withDatabase names database name in dsn instead of the one it names: a
// postgres:// URL gets it as its path (parsed, so that a database named
// like the user, postgres://postgres@…/postgres, is not mistaken for the
// user), a key=value string gets a dbname, which overrides an earlier one.
func withDatabase(dsn, name string) string {
	if u, err := neturl.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path, u.RawPath = "/"+name, ""
		return u.String()
	}
	return dsn + " dbname=" + name
}

// writeHeapProfile writes what the heap holds now, after a collection, to
// path ("" writes nothing): what outlives a run is what grows with it.
func writeHeapProfile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	return f.Close()
}

// profile starts a CPU profile if path is set and returns its stop function.
func profile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// setup is what a benchmark's figures depend on beside the code, measured
// once the benchmark is done: machines of one kind gave the same code
// ratios from 0.15 to 0.50, and these two facts explain much of it.
type setup struct {
	// wake is what the host charges for waking a thread on another core
	// (wakeRoundTrip; 0 on one CPU): every round trip between the
	// benchmark's processes pays it.
	wake time.Duration
	// conn is how PostgreSQL was reached: "unix socket" or "tcp" ("" if
	// the URL does not parse). A server on the same machine answers over
	// its Unix socket with less CPU a round trip on both sides than over
	// TCP on loopback (docs/operations.md, "The host").
	conn string
}

func measureSetup(dbURL string) setup {
	s := setup{conn: connection(dbURL)}
	if rt, err := wakeRoundTrip(wakeRounds); err == nil {
		s.wake = rt
	}
	return s
}

// wakeUS is the wake-up round trip in microseconds, as results print it.
func (s setup) wakeUS() float64 { return round(float64(s.wake.Nanoseconds())/1000, 1) }

// kvs are s's figures for a result: what is known of them.
func (s setup) kvs() []KV {
	var kvs []KV
	if s.wake > 0 {
		kvs = append(kvs, KV{"host_wake_round_trip_us", s.wakeUS()})
	}
	if s.conn != "" {
		kvs = append(kvs, KV{"database_connection", s.conn})
	}
	return kvs
}

// connection says how a benchmark reaches PostgreSQL at dbURL: "unix
// socket" or "tcp" ("" if the URL does not parse).
func connection(dbURL string) string {
	cfg, err := pgconn.ParseConfig(dbURL)
	if err != nil {
		return ""
	}
	if strings.HasPrefix(cfg.Host, "/") {
		return "unix socket"
	}
	return "tcp"
}
