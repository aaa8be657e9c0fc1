package webhooks

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/internal/metrics"
	"github.com/minipay/minipay/internal/seal"
)

// DefaultSchedule is the delay before each retry after a failed first
// attempt (docs/webhooks.md); after the last one a delivery is failed.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// Options configures a Service. Zero values take the defaults named on
// each field; tests shorten the times.
type Options struct {
	// Secret is the server secret; webhook signing secrets are encrypted at
	// rest with a key derived from it. It must be the same on every replica.
	Secret []byte
	// AllowPrivate lets endpoints resolve to loopback, private and
	// link-local addresses (development and tests only).
	AllowPrivate bool
	Log          *slog.Logger     // slog.Default() when nil
	Metrics      *metrics.Metrics // a private set when nil

	// Schedule is the delay before each retry (DefaultSchedule). Each delay
	// gets ±10 % jitter.
	Schedule []time.Duration
	// Timeout bounds one attempt, transport retries included (15 s).
	Timeout time.Duration
	// TransportRetries is how many times one attempt retries a request that
	// failed below HTTP, such as a refused or reset connection (2).
	TransportRetries int
	// Lease is how long a claimed delivery stays claimed: a delivery whose
	// claimer died is claimed again once it runs out (30 s). It is at least
	// twice Timeout, and an attempt starts only while a whole Timeout of
	// its lease is left.
	Lease time.Duration
	// PollInterval is how often an idle dispatcher looks for due deliveries
	// (100 ms).
	PollInterval time.Duration
	// Workers bounds the deliveries claimed and not yet finished in one
	// process (512).
	Workers int
	// ClaimBatch bounds the deliveries claimed in one query (256).
	ClaimBatch int
	// EndpointConcurrency bounds the attempts in flight to one endpoint in
	// one process (16), so a slow endpoint holds only that many workers;
	// an endpoint with twice as many deliveries waiting is not claimed for
	// until it catches up.
	EndpointConcurrency int
	// BreakerFailures is how many failed attempts in a row open an
	// endpoint's circuit (5); BreakerCooldown is how long it stays open
	// before one probe is let through (30 s).
	BreakerFailures int
	BreakerCooldown time.Duration
	// DisableAfter is how long an endpoint may fail without a single
	// success before it is disabled (5 days).
	DisableAfter time.Duration
	// RotationGrace is how long a rotated-out secret keeps signing (24 h).
	RotationGrace time.Duration
	// ShutdownGrace is how long attempts in flight may finish after the
	// dispatcher is told to stop; the rest are released for others (10 s).
	ShutdownGrace time.Duration
	// Retention is how long finished deliveries and attempts are kept (30 days).
	Retention time.Duration
}

func (o *Options) setDefaults() {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	if o.Schedule == nil {
		o.Schedule = DefaultSchedule
	}
	setDuration(&o.Timeout, 15*time.Second)
	setDuration(&o.Lease, 30*time.Second)
	setDuration(&o.PollInterval, 100*time.Millisecond)
	setDuration(&o.BreakerCooldown, 30*time.Second)
	setDuration(&o.DisableAfter, 5*24*time.Hour)
	setDuration(&o.RotationGrace, 24*time.Hour)
	setDuration(&o.ShutdownGrace, 10*time.Second)
	setDuration(&o.Retention, 30*24*time.Hour)
	setInt(&o.TransportRetries, 2)
	setInt(&o.Workers, 512)
	setInt(&o.ClaimBatch, 256)
	setInt(&o.EndpointConcurrency, 16)
	setInt(&o.BreakerFailures, 5)
	if o.Lease < 2*o.Timeout {
		o.Lease = 2 * o.Timeout
	}
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func setInt(n *int, def int) {
	if *n <= 0 {
		*n = def
	}
}

// Service manages webhook endpoints and delivers events to them. It is safe
// for concurrent use.
type Service struct {
	db     *pgxpool.Pool
	opts   Options
	sealer *seal.Sealer

	// lookup and dial are the dialer's name resolution and connection;
	// tests replace them to point names at addresses without touching
	// the network.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)

	// running is the dispatcher Run is running, for Breakers.
	running atomic.Pointer[dispatcher]
}

// New returns a Service over db.
func New(db *pgxpool.Pool, opts Options) *Service {
	opts.setDefaults()
	return &Service{db: db, opts: opts, sealer: seal.New(opts.Secret, sealPurpose)}
}
