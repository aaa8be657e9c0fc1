package api_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"
)

// matureAll lets the holding period of every payment so far pass: the
// default catalog holds for a day, which a test cannot wait for.
func (e *env) matureAll() {
	e.t.Helper()
	if _, err := e.db.Pool.Exec(context.Background(),
		`UPDATE balance_transactions SET available_on = now() - interval '1 hour' WHERE payout_id IS NULL`); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) paid(tn tenant, user, amount, cur string) {
	e.t.Helper()
	e.topUp(user, amount, cur)
	sess := e.session(tn, map[string]any{"amount": amount, "currency": cur, "option": "goods", "client_reference_id": "ref-" + user})
	e.must(http.StatusOK, e.confirm(sess, user))
}

func TestSettlementAPI(t *testing.T) {
	e := newEnv(t)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY", "USD"})
	cafe := e.tenant("cafe", []string{"goods"}, []string{"CNY"})
	e.paid(shop, "u1", "100.00", "CNY")
	e.paid(shop, "u2", "20.00", "USD")
	e.paid(cafe, "u3", "0.50", "CNY") // below the minimum payout
	e.matureAll()

	// Bad input is refused and changes nothing.
	for _, body := range []any{
		map[string]any{},
		map[string]any{"cutoff": "yesterday"},
		map[string]any{"cutoff": time.Now().Add(time.Hour).Format(time.RFC3339)},
		map[string]any{"cutoff": time.Now().Format(time.RFC3339), "extra": 1},
		`{"cutoff": 5}`,
	} {
		r := e.admin("POST", "/v1/settlement_runs", body)
		if r.status != http.StatusBadRequest {
			t.Fatalf("%v: %d %s", body, r.status, r.raw)
		}
	}
	if n := e.count(`SELECT count(*) FROM settlement_runs`); n != 0 {
		t.Fatalf("bad requests created %d runs", n)
	}
	// Only admins run settlement and read runs.
	cutoff := time.Now().UTC().Format(time.RFC3339Nano)
	for _, key := range []string{shop.key, e.hostKey} {
		e.must(http.StatusForbidden, e.call("POST", "/v1/settlement_runs", key, map[string]any{"cutoff": cutoff}))
		e.must(http.StatusForbidden, e.call("GET", "/v1/settlement_runs", key, nil))
	}
	e.must(http.StatusUnauthorized, e.call("GET", "/v1/payouts", "", nil))

	run := e.must(http.StatusCreated, e.admin("POST", "/v1/settlement_runs", map[string]any{"cutoff": cutoff}))
	if run.str("status") != "completed" || run.body["payouts"].(float64) != 2 || !strings.HasPrefix(run.str("id"), "sr_") {
		t.Fatalf("run: %s", run.raw)
	}
	again := e.must(http.StatusOK, e.admin("POST", "/v1/settlement_runs", map[string]any{"cutoff": cutoff}))
	if again.str("id") != run.str("id") {
		t.Fatalf("same cutoff, another run: %s", again.raw)
	}
	got := e.must(http.StatusOK, e.admin("GET", "/v1/settlement_runs/"+run.str("id"), nil))
	totals := got.body["totals"].([]any)
	cny := totals[0].(map[string]any)
	if cny["currency"] != "CNY" || cny["net"] != "99.40" || cny["carried_forward"] != "0.50" || cny["fees"] != "0.60" {
		t.Fatalf("totals: %s", got.raw)
	}
	list := e.must(http.StatusOK, e.admin("GET", "/v1/settlement_runs?limit=1", nil))
	if len(list.body["data"].([]any)) != 1 {
		t.Fatalf("list: %s", list.raw)
	}
	e.must(http.StatusNotFound, e.admin("GET", "/v1/settlement_runs/sr_nope", nil))

	// The report.
	rep := e.admin("GET", "/v1/settlement_runs/"+run.str("id")+"/report.csv", nil)
	if rep.status != 200 || !strings.HasPrefix(rep.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("report: %d %s", rep.status, rep.raw)
	}
	recs, err := csv.NewReader(strings.NewReader(string(rep.raw))).ReadAll()
	if err != nil || len(recs) != 5 || recs[0][0] != "record" || recs[4][0] != "total" {
		t.Fatalf("report (%v):\n%s", err, rep.raw)
	}
	detail := e.admin("GET", "/v1/settlement_runs/"+run.str("id")+"/report.csv?detail=true", nil)
	if detail.status != 200 || !strings.Contains(string(detail.raw), "ref-u1") {
		t.Fatalf("detail report: %d %s", detail.status, detail.raw)
	}
	e.must(http.StatusBadRequest, e.admin("GET", "/v1/settlement_runs/"+run.str("id")+"/report.csv?detail=maybe", nil))
	e.must(http.StatusForbidden, e.call("GET", "/v1/settlement_runs/"+run.str("id")+"/report.csv", shop.key, nil))

	// Payouts: a developer sees its own; another's is 404; the host none.
	mine := e.must(http.StatusOK, e.call("GET", "/v1/payouts", shop.key, nil))
	data := mine.body["data"].([]any)
	if len(data) != 2 {
		t.Fatalf("shop's payouts: %s", mine.raw)
	}
	po := data[0].(map[string]any)
	poID := po["id"].(string)
	if po["developer"] != shop.dev || po["status"] != "in_transit" || po["settlement_run"] != run.str("id") {
		t.Fatalf("payout: %v", po)
	}
	e.must(http.StatusOK, e.call("GET", "/v1/payouts/"+poID, shop.key, nil))
	e.must(http.StatusNotFound, e.call("GET", "/v1/payouts/"+poID, cafe.key, nil))
	if r := e.must(http.StatusOK, e.call("GET", "/v1/payouts", cafe.key, nil)); len(r.body["data"].([]any)) != 0 {
		t.Fatalf("cafe sees payouts: %s", r.raw)
	}
	e.must(http.StatusForbidden, e.call("GET", "/v1/payouts", e.hostKey, nil))
	if r := e.must(http.StatusOK, e.admin("GET", "/v1/payouts?settlement_run="+run.str("id"), nil)); len(r.body["data"].([]any)) != 2 {
		t.Fatalf("admin payouts: %s", r.raw)
	}

	// Marking paid: admin only, moves in transit to funding, once.
	e.must(http.StatusForbidden, e.call("POST", "/v1/payouts/"+poID+"/mark_paid", shop.key, nil))
	e.must(http.StatusNotFound, e.admin("POST", "/v1/payouts/po_nope/mark_paid", nil))
	cur := po["currency"].(string)
	before := e.ledgerCounts()
	p1 := e.must(http.StatusOK, e.admin("POST", "/v1/payouts/"+poID+"/mark_paid", nil))
	p2 := e.must(http.StatusOK, e.admin("POST", "/v1/payouts/"+poID+"/mark_paid", nil))
	if p1.str("status") != "paid" || p2.str("paid_at") != p1.str("paid_at") {
		t.Fatalf("mark paid: %s / %s", p1.raw, p2.raw)
	}
	if after := e.ledgerCounts(); after[0] != before[0]+1 {
		t.Fatalf("mark paid twice wrote %d transfers", after[0]-before[0])
	}
	if n := e.count(`SELECT count(*) FROM events WHERE type = 'payout.paid' AND object_id = $1`, poID); n != 1 {
		t.Fatalf("%d payout.paid events", n)
	}
	if n := e.count(`SELECT count(*) FROM events WHERE type IN ('payout.created', 'settlement_run.completed')`); n != 4 {
		t.Fatalf("%d payout.created and settlement_run.completed events, want 2 + 2", n)
	}
	acct := e.must(http.StatusOK, e.admin("GET", "/v1/ledger/accounts/platform:payouts_in_transit:"+cur, nil))
	if acct.str("balance") != "0.00" {
		t.Fatalf("in transit after paying: %s", acct.raw)
	}
	e.mustBalanced()
}
