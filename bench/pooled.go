package bench

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// pooledRounds is how many times checkout-pooled measures each path; the
// paths alternate, so a machine that gets busier or quieter during the run
// weighs on both alike.
const pooledRounds = 3

// benchCheckoutPooled measures confirmed checkouts over HTTP, as checkout
// does, on one database in the same run: with serve connected straight to
// PostgreSQL, and with serve connected through a transaction pooler
// (--pooler-url, PgBouncer in front of the same server), alternating. The
// result is the pooled throughput; the direct one is its yardstick.
func benchCheckoutPooled(ctx context.Context, o Options) (*Result, error) {
	if o.PoolerURL == "" {
		return nil, fmt.Errorf("--pooler-url is required: a PgBouncer with pool_mode = transaction in front of the server of --database-url (docs/operations.md shows one)")
	}
	if o.Clients == 0 {
		o.Clients = 64
	}
	dbURL, drop, err := freshDatabase(ctx, o.DatabaseURL, "pooled", o.Keep)
	if err != nil {
		return nil, err
	}
	defer drop()
	pooledURL, err := pooledDatabase(o.PoolerURL, dbURL)
	if err != nil {
		return nil, err
	}
	env := []string{"MINIPAY_ADMIN_KEY=" + benchAdminKey, "MINIPAY_HOST_KEY=" + benchHostKey,
		"MINIPAY_RATE_LIMIT=0", "MINIPAY_SECRET=bench", "MINIPAY_SETTLEMENT_SCHEDULE=off"}
	var keys []string
	runs := 0
	measure := func(url string) (float64, latencies, error) {
		runs++
		srv, err := startServer(ctx, url, env...)
		if err != nil {
			return 0, nil, err
		}
		defer srv.stop()
		c := client{http: newHTTPClient(2 * o.Clients), base: srv.url}
		if keys == nil {
			if keys, err = setupCheckout(ctx, c, o.Clients); err != nil {
				return 0, nil, err
			}
		}
		if _, _, err := checkoutLoad(ctx, c, keys, o.Clients, min(2*time.Second, o.Duration/5), fmt.Sprintf("w%d", runs)); err != nil {
			return 0, nil, fmt.Errorf("%w\n%s", err, srv.log.String())
		}
		n, lat, err := checkoutLoad(ctx, c, keys, o.Clients, o.Duration, fmt.Sprintf("r%d", runs))
		if err != nil {
			return 0, nil, fmt.Errorf("%w\n%s", err, srv.log.String())
		}
		return float64(n) / o.Duration.Seconds(), lat, nil
	}
	var direct, pooled []float64
	var pooledLat latencies
	for range pooledRounds {
		d, _, err := measure(dbURL)
		if err != nil {
			return nil, fmt.Errorf("direct: %w", err)
		}
		p, lat, err := measure(pooledURL)
		if err != nil {
			return nil, fmt.Errorf("through the pooler: %w", err)
		}
		direct, pooled, pooledLat = append(direct, d), append(pooled, p), append(pooledLat, lat...)
	}
	res := &Result{Kind: "checkout-pooled", Unit: "checkouts", Clients: o.Clients, Duration: o.Duration, Throughput: mean(pooled)}
	p := pooledLat.percentiles(0.5, 0.99)
	res.P50, res.P99 = p[0], p[1]
	res.Extra = append(res.Extra,
		KV{"direct", fmt.Sprintf("%.0f checkouts/s (same run, serve connected straight to PostgreSQL)", mean(direct))},
		KV{"pooled/direct", fmt.Sprintf("%.2fx", mean(pooled)/mean(direct))},
		KV{"direct_per_round", rates(direct)}, KV{"pooled_per_round", rates(pooled)})
	res.Notes = append(res.Notes, "throughput and latency are those of the runs through the pooler; "+
		"the paths alternate, each measured after a warm-up of its own")
	return res, nil
}

// pooledDatabase is poolerURL naming the database of dbURL, with the
// statement mode a transaction pooler needs unless poolerURL names one.
func pooledDatabase(poolerURL, dbURL string) (string, error) {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return "", fmt.Errorf("parse database url: %w", err)
	}
	u, err := url.Parse(poolerURL)
	if err != nil {
		return "", fmt.Errorf("parse --pooler-url: %w", err)
	}
	u.Path = "/" + cfg.Database
	q := u.Query()
	if q.Get("default_query_exec_mode") == "" {
		q.Set("default_query_exec_mode", "cache_describe")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

func rates(xs []float64) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%.0f/s", x)
	}
	return out
}
