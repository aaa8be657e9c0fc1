package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
)

// recurringCatalog has one option, goods, that may back a recurring plan
// and holds nothing.
func recurringCatalog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.json")
	cat := `{"options": [{"name": "goods", "fee_bps": 1500, "fee_fixed": "0", "min_amount": "0.01", "max_amount": "100000",
		"currencies": ["CNY"], "refundable": true, "refund_window": "24h", "holding_period": "0s", "recurring": true,
		"effective_from": "2026-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(path, []byte(cat), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRenewalSurvivesSIGKILLMidGroup: serve renews due subscriptions; its
// renewal charges are caught inside the ledger's group transaction (the
// test holds the ledger's balance tables locked, so the group waits there)
// and the process is killed with SIGKILL. Two replicas then take over,
// renewing at once. Every period is charged exactly once: one paid
// invoice, one payment, one ledger transfer and one invoice.paid event per
// subscription and period, and each wallet paid exactly twice.
func TestRenewalSurvivesSIGKILLMidGroup(t *testing.T) {
	db := testdb.New(t)
	env := settleEnv(db, recurringCatalog(t), "MINIPAY_SETTLEMENT_SCHEDULE=off")
	a := startServe(t, env...)
	must := func(p *proc, want int, method, path, key, body string) map[string]any {
		t.Helper()
		status, out := p.do(method, path, key, body)
		if status != want {
			t.Fatalf("%s %s: %d, want %d: %v", method, path, status, want, out)
		}
		return out
	}
	dev := must(a, 201, "POST", "/v1/developers", settleAdmin, `{"name": "dev"}`)
	app := must(a, 201, "POST", "/v1/apps", settleAdmin, `{"developer": "`+dev["id"].(string)+`", "name": "club", "options": ["goods"], "currencies": ["CNY"]}`)
	key := app["secret_key"].(string)
	plan := must(a, 201, "POST", "/v1/plans", key, `{"name": "Daily pass", "amount": "2.00", "currency": "CNY", "option": "goods", "interval": "day"}`)
	const n = 40
	var subs []string
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("u_renew_%d", i)
		must(a, 200, "POST", "/v1/wallets/"+user+"/topups", settleHost, `{"amount": "4.00", "currency": "CNY"}`)
		sub := must(a, 201, "POST", "/v1/subscriptions", key, `{"plan": "`+plan["id"].(string)+`"}`)
		must(a, 200, "POST", "/v1/subscriptions/"+sub["id"].(string)+"/sign", settleHost,
			`{"user_id": "`+user+`", "client_secret": "`+sub["client_secret"].(string)+`"}`)
		subs = append(subs, sub["id"].(string))
	}

	// Hold the ledger's balances, so the next group of transfers waits
	// inside its transaction.
	ctx := context.Background()
	hold, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `LOCK TABLE ledger_accounts, ledger_balance_shards IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	// A day goes by.
	if _, err := db.Pool.Exec(ctx, `UPDATE subscriptions SET billing_anchor = billing_anchor - interval '1 day 1 minute',
		current_period_start = current_period_start - interval '1 day 1 minute',
		current_period_end = current_period_end - interval '1 day 1 minute',
		next_action_at = next_action_at - interval '1 day 1 minute', notice_for = notice_for - interval '1 day 1 minute'`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the renewals' group to wait on the ledger inside its transaction", func() bool {
		var waiting int
		err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND state = 'active' AND pid <> pg_backend_pid()`).Scan(&waiting)
		return err == nil && waiting > 0
	})
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	a.done <- nil
	var paid int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM subscription_invoices WHERE status = 'paid'`).Scan(&paid); err != nil {
		t.Fatal(err)
	}
	if paid != n {
		t.Fatalf("%d invoices paid while the ledger was held, want the %d of the signatures", paid, n)
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// Two replicas take over, renewing at once.
	b, c := startServe(t, env...), startServe(t, env...)
	waitFor(t, "every renewal to be paid", func() bool {
		var paid int
		err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM subscription_invoices WHERE status = 'paid'`).Scan(&paid)
		return err == nil && paid == 2*n
	})
	time.Sleep(2 * time.Second) // both replicas run the job again
	var invoices, payments, transfers, events int
	err = db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM subscription_invoices), (SELECT count(*) FROM payments),
		(SELECT count(*) FROM ledger_transfers WHERE code = 'payment'),
		(SELECT count(*) FROM events WHERE type = 'invoice.paid')`).Scan(&invoices, &payments, &transfers, &events)
	if err != nil || invoices != 2*n || payments != 2*n || transfers != 2*n || events != 2*n {
		t.Fatalf("%d invoices, %d payments, %d payment transfers, %d invoice.paid events; want %d of each (%v)",
			invoices, payments, transfers, events, 2*n, err)
	}
	var wg sync.WaitGroup
	for i := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := []*proc{b, c}[i%2]
			w := must(p, 200, "GET", fmt.Sprintf("/v1/wallets/u_renew_%d", i), settleHost, "")
			if bal := w["balances"].([]any)[0].(map[string]any)["available"]; bal != "0.00" {
				t.Errorf("wallet of u_renew_%d: %v", i, bal)
			}
		}()
	}
	wg.Wait()
	tb := must(b, 200, "GET", "/v1/ledger/trial_balance", settleAdmin, "")
	if tb["balanced"] != true {
		t.Fatalf("trial balance %v", tb)
	}
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
	}
}

// TestSubscriptionsDocYear runs the program of docs/subscriptions.md (a
// year of a monthly membership on a test clock) against a sandbox serve,
// as a developer would with go run.
func TestSubscriptionsDocYear(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "subscriptions.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- run: year -->\n```go\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/subscriptions.md has no <!-- run: year --> go block")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "year.go"), m[1], 0o600); err != nil {
		t.Fatal(err)
	}
	db := testdb.New(t)
	p := startServe(t, "DATABASE_URL="+db.URL, "MINIPAY_ADMIN_KEY="+settleAdmin, "MINIPAY_HOST_KEY="+settleHost,
		"MINIPAY_SECRET=e2e-secret", "MINIPAY_RATE_LIMIT=0", "MINIPAY_SANDBOX=true", "MINIPAY_SETTLEMENT_SCHEDULE=off")
	status, dev := p.do("POST", "/v1/developers", settleAdmin, `{"name": "dev"}`)
	if status != 201 {
		t.Fatalf("developer: %d %v", status, dev)
	}
	status, app := p.do("POST", "/v1/apps", settleAdmin, `{"developer": "`+dev["id"].(string)+`", "name": "club", "options": ["subscription"], "currencies": ["CNY"]}`)
	if status != 201 {
		t.Fatalf("app: %d %v", status, app)
	}
	cmd := exec.Command("go", "run", "year.go")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MINIPAY_URL="+p.url, "MINIPAY_APP_KEY="+app["secret_key"].(string), "MINIPAY_HOST_KEY="+settleHost)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run year.go: %v\n%s", err, out)
	}
	for _, want := range []string{"2027-01-31T09:00:00.000000Z paid 30.00 CNY", "2027-02-28T09:00:00.000000Z paid", "2027-03-31T09:00:00.000000Z paid",
		"2027-12-31T09:00:00.000000Z paid", "a year of renewals: 12 invoices paid"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the program's output lacks %q:\n%s", want, out)
		}
	}
}

// TestBenchRenewalsSmall runs "minipay bench renewals" with a small count:
// every due subscription renewed (a tenth failing into dunning, which the
// benchmark checks itself) and the JSON line with the figures it promises,
// the set-based ceiling, its split by statement and the CPU per renewal
// among them (PostgreSQL runs on this machine, as a superuser's).
func TestBenchRenewalsSmall(t *testing.T) {
	db := testdb.New(t)
	cmd := exec.Command(binary, "bench", "renewals", "--subscriptions", "2000", "--duration", "2s", "--json", "--database-url", db.URL)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench renewals: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res struct {
		Throughput *float64 `json:"throughput"`
		P99        *float64 `json:"p99_ms"`
		PeakRSS    *float64 `json:"peak_rss_mb"`
		Paid       int      `json:"paid"`
		Failed     int      `json:"failed"`
		LedgerShr  *float64 `json:"ledger_share"`
		GroupMean  *float64 `json:"group_mean"`
		Ceiling    *float64 `json:"ceiling_tps"`
		Ratio      *float64 `json:"ceiling_ratio"`
		CPU        *float64 `json:"cpu_us_per_renewal"`
		EventsCPU  *float64 `json:"ceiling_db_us_events"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not JSON: %v\n%s", err, out)
	}
	if res.Throughput == nil || *res.Throughput <= 0 || res.P99 == nil || *res.P99 <= 0 || res.PeakRSS == nil || *res.PeakRSS <= 0 ||
		res.Paid != 1800 || res.Failed != 200 || res.LedgerShr == nil || res.GroupMean == nil || *res.GroupMean < 1 ||
		res.Ceiling == nil || *res.Ceiling <= 0 || res.Ratio == nil || *res.Ratio <= 0 || res.CPU == nil || *res.CPU <= 0 ||
		res.EventsCPU == nil || *res.EventsCPU <= 0 {
		t.Fatalf("result %s", out)
	}
}
