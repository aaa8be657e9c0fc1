package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/minipay/minipay/internal/pgdb"
)

// config is minipay's configuration: the environment, overridden by flags.
// Each command registers only the groups of flags it uses.
type config struct {
	DatabaseURL         string
	DBConns             int
	Addr                string
	AdminKey            string
	HostKey             string
	Secret              string
	Catalog             string
	WebhookAllowPrivate bool
	// TrustProxy trusts X-Forwarded-Proto and X-Forwarded-For from a
	// reverse proxy in front (the console's cookies get Secure when the
	// proxy received https).
	TrustProxy bool
	RateLimit  float64
	DebugAddr  string
	// MetricsAddr is where /metrics is served, on a listener of its own;
	// "" serves none.
	MetricsAddr string
	// Sandbox marks a deployment whose money is not real: test helpers
	// (minipay trigger, test clocks) work there and nowhere else.
	Sandbox bool
	// WebhookSchedule and WebhookTimeout replace the retry delays and the
	// per-attempt timeout of webhooks, for drills and tests that cannot
	// wait hours; production leaves them unset.
	WebhookSchedule    []time.Duration
	WebhookTimeout     time.Duration
	SettlementTZ       string
	SettlementSchedule string
	SettlementMinimums string

	envErrs []error // malformed environment variables
	getenv  func(string) string
}

func newConfig(getenv func(string) string) *config { return &config{getenv: getenv} }

// env is the variable's value, or def when it is unset.
func (c *config) env(name, def string) string {
	if v := c.getenv(name); v != "" {
		return v
	}
	return def
}

// envBool reads a true/false variable; anything else is an error at start.
func (c *config) envBool(name string) bool {
	v := c.getenv(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		c.envErrs = append(c.envErrs, fmt.Errorf("%s: want true or false, got %q", name, v))
	}
	return b
}

// check reports the first malformed environment variable.
func (c *config) check() error { return errors.Join(c.envErrs...) }

// databaseFlags registers the database's flags; def is the URL used when
// DATABASE_URL is unset (dev keeps its data apart from serve's).
func (c *config) databaseFlags(fs *flag.FlagSet, def string) {
	fs.StringVar(&c.DatabaseURL, "database-url", c.env("DATABASE_URL", def), "PostgreSQL URL (DATABASE_URL); the database is created if missing")
	fs.IntVar(&c.DBConns, "db-conns", 32, "maximum database connections")
}

// serverFlags registers what a process serving the API needs.
func (c *config) serverFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.env("MINIPAY_ADDR", ":8080"), "listen address (MINIPAY_ADDR)")
	fs.StringVar(&c.AdminKey, "admin-key", c.getenv("MINIPAY_ADMIN_KEY"), "the operators' API key (MINIPAY_ADMIN_KEY); generated and printed once if unset")
	fs.StringVar(&c.HostKey, "host-key", c.getenv("MINIPAY_HOST_KEY"), "the super-app wallet service's API key (MINIPAY_HOST_KEY); generated and printed once if unset")
	fs.StringVar(&c.Secret, "secret", c.getenv("MINIPAY_SECRET"), "server secret: encrypts webhook secrets at rest, derives per-app user ids (MINIPAY_SECRET); generated and stored if unset")
	fs.StringVar(&c.Catalog, "catalog", c.getenv("MINIPAY_CATALOG"), "monetization catalog file (MINIPAY_CATALOG); built-in defaults if unset")
	fs.BoolVar(&c.WebhookAllowPrivate, "webhook-allow-private", c.envBool("MINIPAY_WEBHOOK_ALLOW_PRIVATE"), "allow webhook URLs on loopback and private addresses (MINIPAY_WEBHOOK_ALLOW_PRIVATE); development and tests only")
	fs.BoolVar(&c.TrustProxy, "trust-proxy", c.envBool("MINIPAY_TRUST_PROXY"), "trust X-Forwarded-Proto and X-Forwarded-For from a reverse proxy in front: the console's cookies get Secure when the proxy received https (MINIPAY_TRUST_PROXY)")
	fs.BoolVar(&c.Sandbox, "sandbox", c.envBool("MINIPAY_SANDBOX"), "a sandbox, whose money is not real: allows test helpers such as minipay trigger (MINIPAY_SANDBOX)")
	fs.StringVar(&c.DebugAddr, "debug-addr", c.getenv("MINIPAY_DEBUG_ADDR"), "serve Go's /debug/pprof on this address, e.g. 127.0.0.1:6060 (MINIPAY_DEBUG_ADDR); off when empty")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.getenv("MINIPAY_METRICS_ADDR"), "serve Prometheus /metrics on this address, on a listener of its own for the scraper only, e.g. 10.0.0.5:9464 (MINIPAY_METRICS_ADDR); off when empty")
	c.RateLimit = 1000
	if v := c.getenv("MINIPAY_RATE_LIMIT"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 {
			c.envErrs = append(c.envErrs, fmt.Errorf("MINIPAY_RATE_LIMIT: want requests per second (0 for no limit), got %q", v))
		}
		c.RateLimit = r
	}
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "requests per second per API key, bursts of twice that; 0 for none (MINIPAY_RATE_LIMIT)")
	fs.Func("webhook-retry-schedule", "comma-separated delays between webhook attempts, e.g. 1s,2s,5s (MINIPAY_WEBHOOK_RETRY_SCHEDULE); drills and tests only", c.parseSchedule)
	if v := c.getenv("MINIPAY_WEBHOOK_RETRY_SCHEDULE"); v != "" {
		if err := c.parseSchedule(v); err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("MINIPAY_WEBHOOK_RETRY_SCHEDULE: %w", err))
		}
	}
	if v := c.getenv("MINIPAY_WEBHOOK_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			c.envErrs = append(c.envErrs, fmt.Errorf("MINIPAY_WEBHOOK_TIMEOUT: want a positive duration, got %q", v))
		}
		c.WebhookTimeout = d
	}
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", c.WebhookTimeout, "timeout of one webhook attempt, and half the lease after which a dead replica's deliveries are retried (MINIPAY_WEBHOOK_TIMEOUT); 15s when unset; drills and tests only")
	c.settlementFlags(fs, true)
}

// settlementFlags registers the settlement settings; schedule only for
// the processes that run the scheduler.
func (c *config) settlementFlags(fs *flag.FlagSet, schedule bool) {
	fs.StringVar(&c.SettlementTZ, "settlement-tz", c.env("MINIPAY_SETTLEMENT_TZ", "Asia/Shanghai"), "time zone of settlement cutoffs and dates (MINIPAY_SETTLEMENT_TZ)")
	fs.StringVar(&c.SettlementMinimums, "settlement-minimums", c.getenv("MINIPAY_SETTLEMENT_MINIMUMS"), "minimum payout per currency, e.g. CNY=1.00,JPY=100 (MINIPAY_SETTLEMENT_MINIMUMS); one major unit when unset; less is carried forward")
	if schedule {
		fs.StringVar(&c.SettlementSchedule, "settlement-schedule", c.env("MINIPAY_SETTLEMENT_SCHEDULE", "daily"), `when to settle: "daily" (00:00), "daily@HH:MM", "every <duration>" or "off" (MINIPAY_SETTLEMENT_SCHEDULE)`)
	}
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

// location loads the settlement time zone.
func (c *config) location() (*time.Location, error) {
	loc, err := time.LoadLocation(c.SettlementTZ)
	if err != nil {
		return nil, fmt.Errorf("settlement time zone %q (--settlement-tz, MINIPAY_SETTLEMENT_TZ): want an IANA name such as Asia/Shanghai or UTC", c.SettlementTZ)
	}
	return loc, nil
}

// defaultDatabaseURL is serve's database.
const defaultDatabaseURL = pgdb.DefaultURL

// listen opens a TCP listener; when the port is taken, the error names the
// flag and variable that choose another.
func listen(addr, flagName, envName string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: the port is already in use (is another minipay running?); choose another with --%s or %s", addr, flagName, envName)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s (--%s, %s): %w", addr, flagName, envName, err)
	}
	return ln, nil
}
