package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
)

// TestDisputeDeadlineOnTwoReplicas runs two "minipay serve" on one
// database, opens disputes through one, lets their deadlines pass, and
// checks that the replicas' background job lost each exactly once: one
// closing transfer, one dispute.closed event, the payer's money back once.
func TestDisputeDeadlineOnTwoReplicas(t *testing.T) {
	db := testdb.New(t)
	env := settleEnv(db, quickCatalog(t), "MINIPAY_SETTLEMENT_SCHEDULE=off")
	a := startServe(t, env...)
	b := startServe(t, env...)
	must := func(p *proc, want int, method, path, key, body string) map[string]any {
		t.Helper()
		status, out := p.do(method, path, key, body)
		if status != want {
			t.Fatalf("%s %s: %d, want %d: %v", method, path, status, want, out)
		}
		return out
	}
	dev := must(a, 201, "POST", "/v1/developers", settleAdmin, `{"name": "dev"}`)
	app := must(a, 201, "POST", "/v1/apps", settleAdmin, `{"developer": "`+dev["id"].(string)+`", "name": "app", "options": ["goods"], "currencies": ["CNY"]}`)
	const n = 6
	var ids, users []string
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("u_dispute_%d", i)
		p := []*proc{a, b}[i%2]
		must(p, 200, "POST", "/v1/wallets/"+user+"/topups", settleHost, `{"amount": "10.00", "currency": "CNY"}`)
		sess := must(p, 201, "POST", "/v1/checkout/sessions", app["secret_key"].(string), `{"amount": "10.00", "currency": "CNY", "option": "goods"}`)
		must(p, 200, "POST", "/v1/checkout/sessions/"+sess["id"].(string)+"/confirm", settleHost,
			`{"user_id": "`+user+`", "client_secret": "`+sess["client_secret"].(string)+`"}`)
		d := must(p, 201, "POST", "/v1/disputes", settleHost, `{"payment": "`+sess["id"].(string)+`", "user_id": "`+user+`", "reason": "not_received"}`)
		ids, users = append(ids, d["id"].(string)), append(users, user)
	}
	// A week goes by.
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `UPDATE disputes SET evidence_due_by = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var lost int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM disputes WHERE status = 'lost' AND closed_by = 'deadline'`).Scan(&lost); err != nil {
			t.Fatal(err)
		}
		if lost == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d disputes lost to the deadline after a minute\n%s", lost, n, a.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // both replicas run the job again
	for i, id := range ids {
		var transfers, events int
		err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM ledger_transfers WHERE id = 'dispute_close_' || $1),
			(SELECT count(*) FROM events WHERE object_id = $1 AND type = 'dispute.closed')`, id).Scan(&transfers, &events)
		if err != nil || transfers != 1 || events != 1 {
			t.Fatalf("%s: %d closing transfers, %d dispute.closed events (%v)", id, transfers, events, err)
		}
		w := must(b, 200, "GET", "/v1/wallets/"+users[i], settleHost, "")
		if bal := w["balances"].([]any)[0].(map[string]any)["available"]; bal != "10.00" {
			t.Fatalf("wallet of %s: %v", users[i], bal)
		}
		d := must(a, 200, "GET", "/v1/disputes/"+id, app["secret_key"].(string), "")
		if d["status"] != "lost" || d["closed_by"] != "deadline" {
			t.Fatalf("dispute %v", d)
		}
	}
	tb := must(a, 200, "GET", "/v1/ledger/trial_balance", settleAdmin, "")
	if tb["balanced"] != true {
		t.Fatalf("trial balance %v", tb)
	}
}
