package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

const usage = `minipay: payments and monetization for mini-apps

usage:
  minipay serve                      run the HTTP API and background workers
  minipay migrate [up|status]        apply or list database migrations
  minipay bench KIND [flags]         measure throughput and latency (KIND: ledger, checkout)
  minipay dev                        the API, a demo host page at /demo/ and a demo mini-app
  minipay settle --cutoff TIME       settle everything matured by TIME (RFC 3339)
  minipay export settlement --run ID [--detail] [--out FILE]
                                     write a settlement run's CSV report

Configuration comes from the environment (DATABASE_URL, MINIPAY_ADDR,
MINIPAY_ADMIN_KEY, MINIPAY_HOST_KEY, MINIPAY_SECRET, MINIPAY_CATALOG,
MINIPAY_SETTLEMENT_TZ, MINIPAY_WEBHOOK_ALLOW_PRIVATE); flags override it.
Run "minipay COMMAND -h" for a command's flags.
`

// run is the whole program: main only supplies the process's context,
// arguments, environment and output streams, so tests can call run directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, rest, getenv, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, getenv, stdout, stderr)
	// (settlement commands)
	case "settle":
		return settle(ctx, rest, getenv, stdout, stderr)
	case "export":
		return export(ctx, rest, getenv, stdout, stderr)
	// (dev command)
	case "dev":
		return dev(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// config is minipay's configuration: the environment, overridden by flags.
type config struct {
	DatabaseURL         string
	Addr                string
	AdminKey            string
	HostKey             string
	Secret              string
	Catalog             string
	SettlementTZ        string
	WebhookAllowPrivate bool
	TrustProxy          bool
	DBConns             int
	RateLimit           float64
	DebugAddr           string
	// WebhookSchedule and WebhookTimeout replace the retry delays and the
	// per-attempt timeout of DESIGN.md section 7, for drills and tests
	// that cannot wait hours; production leaves them unset.
	WebhookSchedule []time.Duration
	WebhookTimeout  time.Duration
	envErr          error // a malformed environment variable
	getenv          func(string) string
}

// flags registers the configuration flags on fs, with defaults from the
// environment, and returns the config they fill.
func configFlags(fs *flag.FlagSet, getenv func(string) string) *config {
	c := &config{getenv: getenv}
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.DatabaseURL, "database-url", env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/minipay?sslmode=disable"), "PostgreSQL URL (DATABASE_URL); the database is created if missing")
	fs.StringVar(&c.Addr, "addr", env("MINIPAY_ADDR", ":8080"), "listen address (MINIPAY_ADDR)")
	fs.StringVar(&c.AdminKey, "admin-key", getenv("MINIPAY_ADMIN_KEY"), "admin API key (MINIPAY_ADMIN_KEY); generated and printed once if unset")
	fs.StringVar(&c.HostKey, "host-key", getenv("MINIPAY_HOST_KEY"), "host API key (MINIPAY_HOST_KEY); generated and printed once if unset")
	fs.StringVar(&c.Secret, "secret", getenv("MINIPAY_SECRET"), "server secret for encrypting webhook secrets and deriving user ids (MINIPAY_SECRET)")
	fs.StringVar(&c.Catalog, "catalog", getenv("MINIPAY_CATALOG"), "monetization catalog file (MINIPAY_CATALOG); built-in defaults if unset")
	fs.StringVar(&c.SettlementTZ, "settlement-tz", env("MINIPAY_SETTLEMENT_TZ", "Asia/Shanghai"), "time zone of the daily settlement cutoff (MINIPAY_SETTLEMENT_TZ)")
	fs.BoolVar(&c.WebhookAllowPrivate, "webhook-allow-private", strings.EqualFold(getenv("MINIPAY_WEBHOOK_ALLOW_PRIVATE"), "true"), "allow webhooks to private addresses (MINIPAY_WEBHOOK_ALLOW_PRIVATE)")
	fs.BoolVar(&c.TrustProxy, "trust-proxy", strings.EqualFold(getenv("MINIPAY_TRUST_PROXY"), "true"), "trust X-Forwarded-Proto and X-Forwarded-For from a reverse proxy in front: the console's cookies get Secure when the proxy received https (MINIPAY_TRUST_PROXY)")
	fs.IntVar(&c.DBConns, "db-conns", 32, "maximum database connections")
	fs.StringVar(&c.DebugAddr, "debug-addr", getenv("MINIPAY_DEBUG_ADDR"), "serve Go's /debug/pprof on this address, e.g. 127.0.0.1:6060 (MINIPAY_DEBUG_ADDR); off when empty")
	rate := 1000.0
	if v := getenv("MINIPAY_RATE_LIMIT"); v != "" {
		fmt.Sscan(v, &rate)
	}
	fs.Float64Var(&c.RateLimit, "rate-limit", rate, "requests per second per API key, bursts of twice that; 0 for none (MINIPAY_RATE_LIMIT)")
	fs.Func("webhook-retry-schedule", "comma-separated delays between webhook attempts, e.g. 1s,2s,5s (MINIPAY_WEBHOOK_RETRY_SCHEDULE); for drills and tests only", func(v string) error {
		return c.parseSchedule(v)
	})
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", 0, "timeout of one webhook attempt (MINIPAY_WEBHOOK_TIMEOUT), and half the lease after which a dead replica's deliveries are retried; 15s when unset, for drills and tests only")
	if v := getenv("MINIPAY_WEBHOOK_RETRY_SCHEDULE"); v != "" {
		if err := c.parseSchedule(v); err != nil {
			c.envErr = fmt.Errorf("MINIPAY_WEBHOOK_RETRY_SCHEDULE: %w", err)
		}
	}
	if v := getenv("MINIPAY_WEBHOOK_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			c.envErr = fmt.Errorf("MINIPAY_WEBHOOK_TIMEOUT: want a positive duration, got %q", v)
		}
		c.WebhookTimeout = d
	}
	return c
}

// parseSchedule reads a comma-separated list of positive durations.
func (c *config) parseSchedule(v string) error {
	var out []time.Duration
	for _, part := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			return fmt.Errorf("want comma-separated positive durations, got %q", v)
		}
		out = append(out, d)
	}
	c.WebhookSchedule = out
	return nil
}
