package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
	"github.com/minipay/minipay/ledger"
)

// TestCitusRebalanceUnderLoad grows a Citus cluster while it takes
// payments: two serve replicas take checkouts (create and confirm) from
// eight clients on a coordinator with two workers; a third worker is added
// and citus_rebalance_start moves shards onto it by logical replication,
// to completion. Every acknowledged checkout must be paid exactly once and
// the trial balance must be balanced whenever it is read, during the move
// as after it. The test reports the checkouts served during the move and
// the longest a client waited for one request.
func TestCitusRebalanceUnderLoad(t *testing.T) {
	testdb.WithCitus(t)
	db := testdb.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const admin, host = "e2e-admin-key", "e2e-host-key"
	env := []string{"DATABASE_URL=" + db.URL, "MINIPAY_ADMIN_KEY=" + admin, "MINIPAY_HOST_KEY=" + host,
		"MINIPAY_SECRET=e2e-secret"}
	replicas := []*proc{startServe(t, env...), startServe(t, env...)}
	p := replicas[0]
	must := func(want int, method, path, key, body string) map[string]any {
		t.Helper()
		status, out := p.do(method, path, key, body)
		if status != want {
			t.Fatalf("%s %s: status %d, want %d: %v", method, path, status, want, out)
		}
		return out
	}
	dev := must(201, "POST", "/v1/developers", admin, `{"name": "Growing"}`)
	app := must(201, "POST", "/v1/apps", admin, `{"developer": "`+dev["id"].(string)+`", "name": "Growing app", "options": ["goods"], "currencies": ["CNY"]}`)
	sk := app["secret_key"].(string)
	const clients = 8
	for c := range clients {
		must(200, "POST", fmt.Sprintf("/v1/wallets/usr_%d/topups", c), host, `{"amount": "100000.00", "currency": "CNY"}`)
	}

	var (
		mu          sync.Mutex
		acked       []string // sessions whose confirm was acknowledged
		failures    []string
		longest     time.Duration
		longestMove time.Duration // of requests that ended during the move
		moving      atomic.Bool
		duringMove  atomic.Int64
		stop        = make(chan struct{})
		wg          sync.WaitGroup
	)
	timed := func(r *proc, method, path, key, body string) (int, map[string]any, error) {
		start := time.Now()
		status, raw, err := r.try(method, path, key, body)
		d := time.Since(start)
		mu.Lock()
		longest = max(longest, d)
		if moving.Load() {
			longestMove = max(longestMove, d)
		}
		mu.Unlock()
		var out map[string]any
		if err == nil {
			_ = json.Unmarshal(raw, &out)
		}
		return status, out, err
	}
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := replicas[c%len(replicas)]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				status, sess, err := timed(r, "POST", "/v1/checkout/sessions", sk, fmt.Sprintf(`{"amount": "1.%02d", "currency": "CNY", "option": "goods"}`, i%100))
				if err != nil || status != 201 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("create: %d %v %v", status, err, sess))
					mu.Unlock()
					continue
				}
				id := sess["id"].(string)
				status, out, err := timed(r, "POST", "/v1/checkout/sessions/"+id+"/confirm", host,
					fmt.Sprintf(`{"user_id": "usr_%d", "client_secret": "%s"}`, c, sess["client_secret"]))
				if err != nil || status != 200 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("confirm %s: %d %v %v", id, status, err, out))
					mu.Unlock()
					continue
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
				if moving.Load() {
					duringMove.Add(1)
				}
			}
		}()
	}
	// The trial balance is read through the ledger, which on Citus takes
	// its fence (ledger/fence.go): the balance shards are on the workers,
	// and a plain sum over every node can see a payment's two-phase commit
	// done on the coordinator and not yet on a worker.
	reader := ledger.New(db.Pool, ledger.Options{})
	defer reader.Close()
	balancedChecks := 0
	checkBalance := func() {
		t.Helper()
		tb, err := reader.TrialBalance(ctx)
		if err != nil || !tb.Balanced {
			t.Errorf("trial balance: %+v, %v", tb, err)
		}
		balancedChecks++
	}

	time.Sleep(3 * time.Second) // load before the move
	w, err := db.Citus.AddWorker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	moving.Store(true)
	moveStart := time.Now()
	if _, err := db.Pool.Exec(ctx, `SELECT citus_rebalance_start(shard_transfer_mode => 'force_logical')`); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var state string
	var waitErr error
	go func() {
		defer close(done)
		state, waitErr = db.Citus.WaitRebalance(ctx, dbName(t, db), 3*time.Minute)
	}()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-time.After(500 * time.Millisecond):
			checkBalance()
		}
	}
	moving.Store(false)
	moveTook := time.Since(moveStart)
	if waitErr != nil || state != "finished" {
		t.Fatalf("rebalance %s: %v\n%s", state, waitErr, db.Citus.Logs())
	}
	time.Sleep(2 * time.Second) // load after the move
	close(stop)
	wg.Wait()
	checkBalance()

	var moved int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM citus_shards WHERE nodeport = $1`, w.Port).Scan(&moved); err != nil || moved == 0 {
		t.Fatalf("shards on the new worker: %d, %v", moved, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("%d requests failed, first: %s", len(failures), failures[0])
	}
	// Every acknowledged checkout is paid, once.
	var paid, distinct, complete int
	err = db.Pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT id) FROM payments WHERE id = ANY($1)`, acked).Scan(&paid, &distinct)
	if err == nil {
		err = db.Pool.QueryRow(ctx, `SELECT count(*) FROM checkout_sessions WHERE id = ANY($1) AND status = 'complete'`, acked).Scan(&complete)
	}
	if err != nil || paid != len(acked) || distinct != len(acked) || complete != len(acked) {
		t.Fatalf("%d acknowledged checkouts: %d payments (%d distinct), %d sessions complete, %v", len(acked), paid, distinct, complete, err)
	}
	if a, err := reader.Audit(ctx); err != nil || !a.OK() {
		t.Errorf("audit after the move: %+v, %v", a, err)
	}
	var payments, txns int
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM payments), (SELECT count(*) FROM balance_transactions WHERE type = 'payment')`).Scan(&payments, &txns); err != nil || payments != txns {
		t.Fatalf("%d payments, %d payment balance transactions, %v", payments, txns, err)
	}
	t.Logf("rebalance report: %d shards moved to the new worker in %v; %d checkouts acknowledged in all, %d during the move, 0 lost, 0 duplicated; "+
		"trial balance balanced at %d reads; longest request %v during the move, %v in all; %d failed requests",
		moved, moveTook.Round(100*time.Millisecond), len(acked), duringMove.Load(), balancedChecks,
		longestMove.Round(time.Millisecond), longest.Round(time.Millisecond), len(failures))
}

// dbName is the name of db's database.
func dbName(t *testing.T, db *testdb.DB) string {
	var name string
	if err := db.Pool.QueryRow(context.Background(), `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}
