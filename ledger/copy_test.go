package ledger

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/internal/testdb"
)

// TestCopyWritesWhatInsertWrites runs the same transfers (posted with
// metadata, pending with and without a timeout, posted and voided holds, a
// reversal, a replayed id and a reused one) through a ledger that writes
// every group with INSERT and through one that writes every group with
// COPY: the rows in the database must be the same, and both ledgers audit
// clean.
func TestCopyWritesWhatInsertWrites(t *testing.T) {
	insert := copyScenario(t, 0)
	copied := copyScenario(t, 1)
	if !reflect.DeepEqual(insert, copied) {
		t.Fatalf("COPY wrote other rows than INSERT:\ninsert: %v\ncopy:   %v", insert, copied)
	}
}

// copyScenario posts the scenario on a fresh database with the given
// copyMin and returns its transfers and postings as text, without the
// values that differ from run to run (times, internal keys).
func copyScenario(t *testing.T, copyMin int) []string {
	db := testdb.New(t)
	l := New(db.Pool, Options{})
	defer l.Close()
	l.poster.copyMin = copyMin
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acct := map[string]string{}
	for _, spec := range []AccountSpec{
		{Code: "bank", Currency: "CNY", NormalBalance: DebitNormal},
		{Code: "wallet", Currency: "CNY", NormalBalance: CreditNormal, NoOverdraft: true},
		{Code: "shop", Currency: "CNY", NormalBalance: CreditNormal},
		{Code: "fees", Currency: "CNY", NormalBalance: CreditNormal},
	} {
		a, err := l.CreateAccount(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		acct[spec.Code] = a.ID
	}
	pay := func(id string, amount int64, pending bool, timeout time.Duration, md map[string]string) Transfer {
		return Transfer{ID: id, Code: "payment", Pending: pending, Timeout: timeout, Metadata: md, Postings: []Posting{
			{Account: acct["wallet"], Debit: amount}, {Account: acct["shop"], Credit: amount - amount/10}, {Account: acct["fees"], Credit: amount / 10}}}
	}
	must := func(_ Transfer, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.Post(ctx, Transfer{ID: "fund", Code: "topup", Postings: []Posting{{Account: acct["bank"], Debit: 10000}, {Account: acct["wallet"], Credit: 10000}}}))
	must(l.Post(ctx, pay("p1", 1000, false, 0, map[string]string{"order": "42", "note": "ü"})))
	must(l.Post(ctx, pay("p1", 1000, false, 0, map[string]string{"order": "42", "note": "ü"}))) // replayed
	if _, err := l.Post(ctx, pay("p1", 999, false, 0, nil)); !errors.Is(err, ErrIdempotencyConflict) {
		t.Fatalf("reused id: %v", err)
	}
	must(l.Post(ctx, pay("h1", 500, true, time.Hour, nil)))
	must(l.Post(ctx, pay("h2", 300, true, 0, nil)))
	must(l.PostPending(ctx, "h1"))
	must(l.VoidPending(ctx, "h2"))
	must(l.Reverse(ctx, "p1", map[string]string{"reason": "refund"}))
	// Many at once, so groups form whatever copyMin is.
	done := make(chan error)
	for i := range 50 {
		go func() {
			_, err := l.Post(ctx, pay(fmt.Sprintf("m%d", i), int64(10+i), false, 0, nil))
			done <- err
		}()
	}
	for range 50 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if a, err := l.Audit(ctx); err != nil || !a.OK() {
		t.Fatalf("audit: %+v, %v", a, err)
	}
	rows, err := db.Pool.Query(ctx, `
		SELECT format('%s %s %s pending:%s reverses:%s expires:%s hash:%s md:%s', t.id, t.code, t.kind, p.id, r.id,
			t.expires_at - t.created_at, encode(t.content_hash, 'hex'), t.metadata)
		FROM ledger_transfers t LEFT JOIN ledger_transfers p ON p.seq = t.pending_seq LEFT JOIN ledger_transfers r ON r.seq = t.reverses_seq
		UNION ALL
		SELECT format('%s/%s %s %s %s %s %s %s', t.id, e.idx, a.code, e.debits_posted, e.credits_posted, e.debits_pending,
			e.credits_pending, e.created_at = t.created_at)
		FROM ledger_postings e JOIN ledger_transfers t ON t.seq = e.transfer_seq JOIN ledger_accounts a ON a.seq = e.account_seq
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCopyRefusedLeavesConnectionInStep sends both COPY commands of a group
// whose first transfer id is taken: the refusal is errIDsTaken, nothing of
// the group is written, and the connection reads its next answers in step
// (the server dropped the data of both COPY commands, and every result of
// the round trip was read).
func TestCopyRefusedLeavesConnectionInStep(t *testing.T) {
	db := testdb.New(t)
	l := New(db.Pool, Options{})
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bank, _ := l.CreateAccount(ctx, AccountSpec{Code: "bank", Currency: "CNY", NormalBalance: DebitNormal})
	shop, _ := l.CreateAccount(ctx, AccountSpec{Code: "shop", Currency: "CNY", NormalBalance: CreditNormal})
	if _, err := l.Post(ctx, Transfer{ID: "taken", Code: "topup", Postings: []Posting{{Account: bank.ID, Debit: 5}, {Account: shop.ID, Credit: 5}}}); err != nil {
		t.Fatal(err)
	}
	conn := groupConn(t, ctx, db.Pool)
	w := &groupWrite{now: time.Now()}
	w.grow(2, 4)
	for i, id := range []string{"fresh", "taken"} {
		seq := int64(1_000_000 + i)
		w.tSeq, w.tID, w.tCode, w.tKind = append(w.tSeq, seq), append(w.tID, id), append(w.tCode, "topup"), append(w.tKind, string(kindPosted))
		w.tPendingSeq, w.tReversesSeq, w.tExpires = append(w.tPendingSeq, nil), append(w.tReversesSeq, nil), append(w.tExpires, nil)
		w.tHash, w.tMetadata = append(w.tHash, []byte{1}), append(w.tMetadata, nil)
		for j, a := range []Account{bank, shop} {
			w.pTransfer, w.pIdx, w.pAccount = append(w.pTransfer, seq), append(w.pIdx, int16(j)), append(w.pAccount, a.seq)
			w.pDP, w.pCP, w.pDPE, w.pCPE = append(w.pDP, int64(1-j)), append(w.pCP, int64(j)), append(w.pDPE, 0), append(w.pCPE, 0)
		}
	}
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if err := w.copyRows(ctx, conn); !errors.Is(err, errIDsTaken) {
		t.Fatalf("copy of a taken id: %v, want errIDsTaken", err)
	}
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM ledger_transfers WHERE id = 'fresh'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows of the refused group: %d, %v", n, err)
	}
	// The same connection then writes a group whole.
	w.tID[1] = "fresh2"
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if err := w.copyRows(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
}
