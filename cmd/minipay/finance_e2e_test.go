package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
)

// TestFinanceCommands walks a finance person's day: settle by date (which
// finds the day's payments still maturing), settle by time (which pays),
// an earlier cutoff again (a warning), the list of runs, marking a payout
// paid, and exporting the report without overwriting one by accident.
func TestFinanceCommands(t *testing.T) {
	db := testdb.New(t)
	env := append(settleEnv(db, quickCatalog(t), "MINIPAY_SETTLEMENT_SCHEDULE=off"), "MINIPAY_SETTLEMENT_TZ=UTC")
	p := startServe(t, env...)
	developers(t, p, 2, "fin")
	today := time.Now().UTC().Format(time.DateOnly)

	code, out, stderr := minipay(t, env, "settle", "--cutoff", today)
	if code != 0 || !strings.Contains(out, "0 payouts") || !strings.Contains(out, "19.88 CNY matures on "+today) {
		t.Fatalf("settle by date: %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = minipay(t, env, "settle", "--cutoff", time.Now().UTC().Format(time.RFC3339Nano))
	if code != 0 || !strings.Contains(out, "2 payouts") || !regexp.MustCompile(`CNY +20\.00 +0\.00 +0\.00 +0\.12 +19\.88 +2 +0\.00`).MatchString(out) ||
		!strings.Contains(out, "Nothing is left maturing") {
		t.Fatalf("settle by time: %d\n%s%s", code, out, stderr)
	}
	runID := regexp.MustCompile(`Settlement run (sr_\S+),`).FindStringSubmatch(out)[1]
	code, _, stderr = minipay(t, env, "settle", "--cutoff", today)
	if code != 0 || !strings.Contains(stderr, "before that of the latest completed run "+runID) {
		t.Fatalf("an earlier cutoff again: %d %s", code, stderr)
	}

	code, out, _ = minipay(t, env, "settlement", "list")
	if code != 0 || !strings.Contains(out, runID) || strings.Count(out, "completed") < 2 {
		t.Fatalf("settlement list: %d\n%s", code, out)
	}
	_, out, _ = minipay(t, env, "settlement", "list", "--json", "--limit", "1")
	var run struct{ ID string }
	if err := json.Unmarshal([]byte(out), &run); err != nil || run.ID != runID {
		t.Fatalf("settlement list --json: %v %s", err, out)
	}

	var payout string
	if err := db.Pool.QueryRow(t.Context(), `SELECT id FROM payouts WHERE run_id = $1 LIMIT 1`, runID).Scan(&payout); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := minipay(t, env, "payouts", "mark-paid", payout); code != 0 || !strings.Contains(out, payout+" (9.94 CNY") || !strings.Contains(out, "is paid") {
		t.Fatalf("mark-paid: %d %s %s", code, out, stderr)
	}
	if code, out, _ := minipay(t, env, "payouts", "mark-paid", payout); code != 0 || !strings.Contains(out, "already paid") {
		t.Fatalf("mark-paid again: %d %s", code, out)
	}
	if code, _, stderr := minipay(t, env, "payouts", "mark-paid", "po_nope"); code != 1 || !strings.Contains(stderr, "no such payout") {
		t.Fatalf("mark-paid of nothing: %d %s", code, stderr)
	}

	file := filepath.Join(t.TempDir(), "report.csv")
	if code, out, stderr := minipay(t, env, "export", "settlement", "--run", runID, "--out", file); code != 0 || !strings.Contains(out, "to "+file) {
		t.Fatalf("export: %d %s %s", code, out, stderr)
	}
	if code, _, stderr := minipay(t, env, "export", "settlement", "--run", runID, "--out", file); code != 1 || !strings.Contains(stderr, "add --force") {
		t.Fatalf("export over a file: %d %s", code, stderr)
	}
	if code, _, stderr := minipay(t, env, "export", "settlement", "--run", runID, "--out", file, "--force"); code != 0 {
		t.Fatalf("export --force: %d %s", code, stderr)
	}
}
