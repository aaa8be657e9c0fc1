package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
)

const settleAdmin, settleHost = "e2e-admin-key", "e2e-host-key"

// quickCatalog holds nothing: payments mature at once, so tests can settle
// them with a cutoff of now. Its goods may back recurring plans, so the
// subscription triggers work with it too.
func quickCatalog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.json")
	cat := `{"options": [{"name": "goods", "fee_bps": 60, "fee_fixed": "0", "min_amount": "0.01", "max_amount": "100000",
		"currencies": ["CNY", "JPY"], "refundable": true, "refund_window": "24h", "holding_period": "0s",
		"recurring": true, "effective_from": "2026-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(path, []byte(cat), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func settleEnv(db *testdb.DB, catalog string, extra ...string) []string {
	return append([]string{"DATABASE_URL=" + db.URL, "MINIPAY_ADMIN_KEY=" + settleAdmin, "MINIPAY_HOST_KEY=" + settleHost,
		"MINIPAY_SECRET=e2e-secret", "MINIPAY_CATALOG=" + catalog, "MINIPAY_RATE_LIMIT=0"}, extra...)
}

// developers creates n developers with an app each and one 10.00 CNY
// payment each (9.94 after the fee).
func developers(t *testing.T, p *proc, n int, tag string) []string {
	t.Helper()
	must := func(want int, method, path, key, body string) map[string]any {
		t.Helper()
		status, out := p.do(method, path, key, body)
		if status != want {
			t.Fatalf("%s %s: %d, want %d: %v", method, path, status, want, out)
		}
		return out
	}
	var devs []string
	for i := 0; i < n; i++ {
		dev := must(201, "POST", "/v1/developers", settleAdmin, `{"name": "dev"}`)
		app := must(201, "POST", "/v1/apps", settleAdmin, `{"developer": "`+dev["id"].(string)+`", "name": "app", "options": ["goods"], "currencies": ["CNY"]}`)
		user := fmt.Sprintf("u_%s_%d", tag, i)
		must(200, "POST", "/v1/wallets/"+user+"/topups", settleHost, `{"amount": "10.00", "currency": "CNY"}`)
		sess := must(201, "POST", "/v1/checkout/sessions", app["secret_key"].(string),
			`{"amount": "10.00", "currency": "CNY", "option": "goods", "client_reference_id": "order-`+user+`"}`)
		must(200, "POST", "/v1/checkout/sessions/"+sess["id"].(string)+"/confirm", settleHost,
			`{"user_id": "`+user+`", "client_secret": "`+sess["client_secret"].(string)+`"}`)
		devs = append(devs, dev["id"].(string))
	}
	return devs
}

// minipay runs a command of the binary and returns its exit code and output.
func minipay(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// paidOnce checks that every developer holds exactly one payout of want in
// the run, and the ledger exactly one payout transfer for it.
func paidOnce(t *testing.T, db *testdb.DB, runID string, devs []string, want int64) {
	t.Helper()
	ctx := context.Background()
	for _, d := range devs {
		var n, sum, transfers int64
		err := db.Pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(amount), 0),
			(SELECT count(*) FROM ledger_transfers t WHERE t.id IN (SELECT 'payout_' || id FROM payouts WHERE developer_id = $1))
			FROM payouts WHERE developer_id = $1 AND run_id = $2`, d, runID).Scan(&n, &sum, &transfers)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 || sum != want || transfers != 1 {
			t.Fatalf("developer %s: %d payouts of %d in total, %d transfers; want exactly one of %d", d, n, sum, transfers, want)
		}
	}
	var unbalanced int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT a.currency FROM ledger_postings p
		JOIN ledger_accounts a ON a.seq = p.account_seq GROUP BY a.currency HAVING sum(p.debits_posted) <> sum(p.credits_posted)) x`).Scan(&unbalanced); err != nil || unbalanced != 0 {
		t.Fatalf("ledger unbalanced: %d %v", unbalanced, err)
	}
}

// TestSettleCrashAndResume kills "minipay settle" at several points of a
// run (after planning, after the third payout, after all payouts), then
// runs it again: the run completes and every developer is paid exactly
// once. Running it a third time changes nothing; the export writes the
// report.
func TestSettleCrashAndResume(t *testing.T) {
	for _, point := range []string{"planned", "payout:3", "paid"} {
		t.Run(point, func(t *testing.T) {
			db := testdb.New(t)
			env := settleEnv(db, quickCatalog(t), "MINIPAY_SETTLEMENT_SCHEDULE=off")
			p := startServe(t, env...)
			devs := developers(t, p, 6, "c")
			cutoff := time.Now().UTC().Format(time.RFC3339Nano)

			code, _, stderr := minipay(t, append(env, "MINIPAY_SETTLEMENT_CRASH_AT="+point), "settle", "--cutoff", cutoff)
			if code != crashExitCode {
				t.Fatalf("settle with a crash at %s exited %d:\n%s", point, code, stderr)
			}
			var status string
			if err := db.Pool.QueryRow(context.Background(), `SELECT status FROM settlement_runs`).Scan(&status); err != nil || status != "running" {
				t.Fatalf("after the crash the run is %q (%v)", status, err)
			}
			code, out, stderr := minipay(t, env, "settle", "--json", "--cutoff", cutoff)
			if code != 0 {
				t.Fatalf("resume exited %d:\n%s", code, stderr)
			}
			var run struct {
				ID      string
				Status  string
				Payouts int
			}
			if err := json.Unmarshal([]byte(out), &run); err != nil || run.Status != "completed" || run.Payouts != len(devs) {
				t.Fatalf("resumed run: %v %s", err, out)
			}
			paidOnce(t, db, run.ID, devs, 994)

			var before, after int
			count := `SELECT (SELECT count(*) FROM ledger_transfers) + (SELECT count(*) FROM events) + (SELECT count(*) FROM payouts)`
			_ = db.Pool.QueryRow(context.Background(), count).Scan(&before)
			if code, out2, stderr := minipay(t, env, "settle", "--cutoff", cutoff); code != 0 || !strings.Contains(out2, run.ID) {
				t.Fatalf("rerun: %d %s %s", code, out2, stderr)
			}
			_ = db.Pool.QueryRow(context.Background(), count).Scan(&after)
			if before != after {
				t.Fatalf("rerun changed %d rows", after-before)
			}

			file := filepath.Join(t.TempDir(), "report.csv")
			if code, _, stderr := minipay(t, env, "export", "settlement", "--run", run.ID, "--out", file); code != 0 {
				t.Fatalf("export: %d %s", code, stderr)
			}
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			recs, err := csv.NewReader(f).ReadAll()
			if err != nil || len(recs) != 1+len(devs)+1 || recs[len(recs)-1][9] != "59.64" {
				t.Fatalf("report: %v %v", err, recs)
			}
			p.stop()
		})
	}
}

// TestSchedulerCrashResumes: serve's scheduler dies in the middle of paying;
// a serve started again finishes the run, paying each developer once.
func TestSchedulerCrashResumes(t *testing.T) {
	db := testdb.New(t)
	catalog := quickCatalog(t)
	p := startServe(t, settleEnv(db, catalog, "MINIPAY_SETTLEMENT_SCHEDULE=off")...)
	devs := developers(t, p, 5, "s")
	p.stop()
	time.Sleep(1100 * time.Millisecond) // the next cutoff is after every payment
	crashing := startServe(t, settleEnv(db, catalog, "MINIPAY_SETTLEMENT_SCHEDULE=every 1s", "MINIPAY_SETTLEMENT_CRASH_AT=payout:2")...)
	select {
	case err := <-crashing.done:
		crashing.done <- err
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not reach the crash point:\n%s", crashing.stderr.String())
	}
	var runID, status string
	_ = db.Pool.QueryRow(context.Background(), `SELECT DISTINCT run_id FROM payouts`).Scan(&runID)
	restarted := startServe(t, settleEnv(db, catalog, "MINIPAY_SETTLEMENT_SCHEDULE=every 1s")...)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		_ = db.Pool.QueryRow(context.Background(), `SELECT status FROM settlement_runs WHERE id = $1`, runID).Scan(&status)
		if status == "completed" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status != "completed" {
		t.Fatalf("run %s is %q after restart:\n%s", runID, status, restarted.stderr.String())
	}
	paidOnce(t, db, runID, devs, 994)
	restarted.stop()
}

// TestSchedulerTwoReplicas runs two serve replicas settling every 2s while
// payments keep arriving: each cutoff gets exactly one run, every run
// completes, and every balance transaction is paid at most once, by
// exactly the payout of its developer.
func TestSchedulerTwoReplicas(t *testing.T) {
	db := testdb.New(t)
	catalog := quickCatalog(t)
	env := settleEnv(db, catalog, "MINIPAY_SETTLEMENT_SCHEDULE=every 2s")
	a := startServe(t, env...)
	b := startServe(t, env...)
	start := time.Now()
	var devs []string
	for i := 0; time.Since(start) < 7*time.Second; i++ {
		p := a
		if i%2 == 1 {
			p = b
		}
		devs = append(devs, developers(t, p, 1, fmt.Sprint("r", i))...)
	}
	time.Sleep(4 * time.Second) // the last payments mature and settle
	a.stop()
	b.stop()
	ctx := context.Background()
	var runs, cutoffs, unfinished, offGrid int
	err := db.Pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT cutoff), count(*) FILTER (WHERE status <> 'completed'),
		count(*) FILTER (WHERE extract(epoch FROM cutoff)::numeric % 2 <> 0) FROM settlement_runs`).Scan(&runs, &cutoffs, &unfinished, &offGrid)
	if err != nil {
		t.Fatal(err)
	}
	if runs < 3 || runs != cutoffs || unfinished != 0 || offGrid != 0 {
		t.Fatalf("%d runs for %d cutoffs, %d unfinished, %d off the 2s grid", runs, cutoffs, unfinished, offGrid)
	}
	var wrong int
	err = db.Pool.QueryRow(ctx, `SELECT count(*) FROM (
		SELECT p.id FROM payouts p JOIN balance_transactions bt ON bt.payout_id = p.id AND bt.type <> 'payout'
		GROUP BY p.id, p.amount, p.developer_id HAVING sum(bt.net) <> p.amount OR bool_or(bt.developer_id <> p.developer_id)) x`).Scan(&wrong)
	if err != nil || wrong != 0 {
		t.Fatalf("%d payouts differ from their balance transactions (%v)", wrong, err)
	}
	var unpaid, paidTotal int64
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM balance_transactions WHERE payout_id IS NULL`).Scan(&unpaid)
	_ = db.Pool.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM payouts`).Scan(&paidTotal)
	if unpaid != 0 || paidTotal != int64(len(devs))*994 {
		t.Fatalf("%d balance transactions unpaid; %d paid out for %d developers", unpaid, paidTotal, len(devs))
	}
}
