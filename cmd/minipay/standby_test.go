package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/pgcluster"
	"github.com/minipay/minipay/internal/pgdb"
	"github.com/minipay/minipay/ledger"
)

// TestStandbyFailover runs the real binary against a primary and a
// synchronous streaming standby (two local clusters) with a multi-host
// DATABASE_URL, drives top-ups and checkouts over HTTP, stops the primary
// the hard way in the middle, promotes the standby, and shows that the
// service comes back on its own and that every payment that was
// acknowledged with a 2xx is in the promoted database's ledger, once.
func TestStandbyFailover(t *testing.T) {
	// synchronous_standby_names makes a commit wait until the standby has
	// the WAL, so nothing acknowledged can be lost when the primary dies.
	// fsync is off only because these clusters are throwaway: the test is
	// about replication, not the disk.
	primary := pgcluster.New(t, "fsync = off", "shared_buffers = 32MB")
	standby := primary.Standby(t, "fsync = off", "shared_buffers = 32MB")
	primary.Conf("synchronous_standby_names = 'standby'", "synchronous_commit = on")
	waitSync(t, primary)
	t.Logf("primary :%d and synchronous standby :%d up", primary.Port, standby.Port)

	const adminKey, hostKey = "admin_ha_test_key_0123456789", "host_ha_test_key_0123456789"
	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/minipay?sslmode=disable&target_session_attrs=read-write&connect_timeout=3",
		primary.Port, standby.Port)
	p := startServe(t, "DATABASE_URL="+dbURL, "MINIPAY_ADMIN_KEY="+adminKey, "MINIPAY_HOST_KEY="+hostKey, "MINIPAY_RATE_LIMIT=0")
	c := &haClient{url: p.url, http: &http.Client{Timeout: 20 * time.Second}}

	dev := c.mustPost(t, "/v1/developers", adminKey, "dev", `{"name":"ha"}`)
	app := c.mustPost(t, "/v1/apps", adminKey, "app", `{"developer":"`+dev["id"].(string)+`","name":"ha","options":["goods"],"currencies":["CNY"]}`)
	sk := app["secret_key"].(string)
	t.Log("serving")

	// Load: clients each top up a wallet and pay from it, over and over,
	// retrying every request with its Idempotency-Key until it is
	// acknowledged. What was acknowledged is recorded.
	var (
		mu       sync.Mutex
		topups   []string // idempotency keys of acknowledged top-ups
		payments []string // acknowledged (confirmed) session ids
		failed   int      // attempts that got no 2xx
		// resumed counts, per client, the payments it started after the
		// promotion and got acknowledged.
		resumed [4]int
	)
	stop, promotedCh := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("usr_ha_%d", w)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				retry := func(path, key, idem, body string) map[string]any {
					for {
						out, ok := c.post(path, key, idem, body)
						if ok {
							return out
						}
						mu.Lock()
						failed++
						mu.Unlock()
						select {
						case <-stop:
							return nil
						case <-time.After(100 * time.Millisecond):
						}
					}
				}
				after := false
				select {
				case <-promotedCh:
					after = true
				default:
				}
				topKey := fmt.Sprintf("topup-%d-%d", w, i)
				if retry("/v1/wallets/"+user+"/topups", hostKey, topKey, `{"amount":"10.00","currency":"CNY"}`) == nil {
					return
				}
				mu.Lock()
				topups = append(topups, topKey)
				mu.Unlock()
				sess := retry("/v1/checkout/sessions", sk, fmt.Sprintf("cs-%d-%d", w, i), `{"amount":"7.50","currency":"CNY","option":"goods"}`)
				if sess == nil {
					return
				}
				id := sess["id"].(string)
				paid := retry("/v1/checkout/sessions/"+id+"/confirm", hostKey, "confirm-"+id,
					`{"user_id":"`+user+`","client_secret":"`+sess["client_secret"].(string)+`"}`)
				if paid == nil {
					return
				}
				mu.Lock()
				payments = append(payments, id)
				if after {
					resumed[w]++
				}
				mu.Unlock()
			}
		}()
	}
	acked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(topups) + len(payments)
	}
	waitFor(t, 30*time.Second, "acknowledged requests before the failover", func() bool { return acked() >= 40 })

	// The primary dies without a chance to finish anything.
	before := acked()
	t.Logf("%d requests acknowledged; stopping the primary", before)
	primary.Stop("immediate")
	t.Log("primary stopped; promoting the standby")
	standby.Promote()
	t.Log("standby promoted")
	promoted := time.Now()
	close(promotedCh)

	// The service recovers by itself: the pool's next connections find
	// the promoted standby, the only read-write host left. Every client
	// gets going again, including those whose requests were cut off
	// mid-way: their retries must not wait for idempotency claims that
	// nobody holds any more (the lease is 60 s; the limit here is half).
	waitFor(t, 30*time.Second, "/readyz after the promotion", func() bool {
		status, _, err := p.try("GET", "/readyz", "", "")
		return err == nil && status == http.StatusOK
	})
	waitFor(t, idempotency.Lease/2, "payments started after the promotion acknowledged for every client", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range resumed {
			if n < 5 {
				return false
			}
		}
		return true
	})
	outage := time.Since(promoted)
	close(stop)
	wg.Wait()

	// Every acknowledged payment is in the promoted database, exactly once.
	ctx := context.Background()
	pool, err := pgdb.Open(ctx, standby.URL("minipay"), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	mu.Lock()
	defer mu.Unlock()
	topupIDs := make([]string, len(topups))
	for i, k := range topups {
		topupIDs[i] = idempotency.DeriveID("topup", "host", k)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM ledger_transfers WHERE id = ANY($1)`, topupIDs).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(topups) {
		t.Errorf("%d acknowledged top-ups, %d in the ledger", len(topups), n)
	}
	rows, err := pool.Query(ctx, `SELECT s.id FROM checkout_sessions s JOIN payments p ON p.id = s.id
		WHERE s.id = ANY($1) AND s.status = 'complete' AND p.amount_refunded = 0`, payments)
	if err != nil {
		t.Fatal(err)
	}
	complete, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(complete) != len(payments) {
		t.Errorf("%d acknowledged payments, %d complete in the database", len(payments), len(complete))
	}
	// Requests cut off by the failover and never retried may have
	// committed too; whatever committed did so once: one transfer per
	// top-up and per payment, and the wallets hold exactly the top-ups
	// minus the payments in the ledger.
	var nTopups, nPayments, nSessionsPaid int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM ledger_transfers WHERE code = 'topup'),
		(SELECT count(*) FROM ledger_transfers WHERE code = 'payment'),
		(SELECT count(*) FROM payments)`).Scan(&nTopups, &nPayments, &nSessionsPaid); err != nil {
		t.Fatal(err)
	}
	if nPayments != nSessionsPaid {
		t.Errorf("%d payment transfers for %d paid sessions", nPayments, nSessionsPaid)
	}
	var wallets int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(credits_posted - debits_posted), 0) FROM ledger_accounts
		WHERE code LIKE 'wallet:usr_ha_%'`).Scan(&wallets); err != nil {
		t.Fatal(err)
	}
	var sharded int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(s.credits_posted - s.debits_posted), 0) FROM ledger_balance_shards s
		JOIN ledger_accounts a ON a.seq = s.account_seq WHERE a.code LIKE 'wallet:usr_ha_%'`).Scan(&sharded); err != nil {
		t.Fatal(err)
	}
	if want := nTopups*1000 - nPayments*750; wallets+sharded != want {
		t.Errorf("wallets hold %d, want %d (%d top-ups, %d payments in the ledger)", wallets+sharded, want, nTopups, nPayments)
	}
	audit, err := ledger.New(pool, ledger.Options{}).Audit(ctx)
	if err != nil || !audit.OK() {
		t.Errorf("ledger audit on the promoted standby: %+v %v", audit, err)
	}
	t.Logf("acknowledged %d top-ups and %d payments (%d requests before the failover), %d and %d in the ledger; %d attempts failed during the outage; every client had 5 new payments %v after the promotion",
		len(topups), len(payments), before, nTopups, nPayments, failed, outage.Round(100*time.Millisecond))
}

// waitSync waits until the primary sees its standby as synchronous.
func waitSync(t *testing.T, primary *pgcluster.Cluster) {
	t.Helper()
	waitFor(t, 30*time.Second, "a synchronous standby", func() bool {
		conn, err := pgx.Connect(context.Background(), primary.URL("postgres"))
		if err != nil {
			return false
		}
		defer conn.Close(context.Background())
		var n int
		err = conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'`).Scan(&n)
		return err == nil && n == 1
	})
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// haClient posts JSON with an Idempotency-Key.
type haClient struct {
	url  string
	http *http.Client
}

// post reports whether the request was acknowledged (2xx), with its body.
func (c *haClient) post(path, key, idem, body string) (map[string]any, bool) {
	req, err := http.NewRequest("POST", c.url+path, bytes.NewReader([]byte(body)))
	if err != nil {
		return nil, false
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idem)
	res, err := c.http.Do(req)
	if err != nil {
		return nil, false
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode/100 != 2 {
		return nil, false
	}
	var out map[string]any
	if json.Unmarshal(raw, &out) != nil {
		return nil, false
	}
	return out, true
}

func (c *haClient) mustPost(t *testing.T, path, key, idem, body string) map[string]any {
	t.Helper()
	out, ok := c.post(path, key, idem, body)
	if !ok {
		t.Fatalf("POST %s failed", path)
	}
	return out
}
