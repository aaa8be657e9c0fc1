package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
	"github.com/minipay/minipay/ledger"
)

// newLedger returns a ledger on a fresh database, closed when t ends.
func newLedger(t testing.TB, opts ledger.Options) (*ledger.Ledger, *testdb.DB) {
	t.Helper()
	db := testdb.New(t)
	l := ledger.New(db.Pool, opts)
	t.Cleanup(l.Close)
	return l, db
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustAccount(t testing.TB, l *ledger.Ledger, code, currency string, normal ledger.NormalBalance, noOverdraft bool) ledger.Account {
	t.Helper()
	a, err := l.CreateAccount(ctxT(t), ledger.AccountSpec{Code: code, Currency: currency, NormalBalance: normal, NoOverdraft: noOverdraft})
	if err != nil {
		t.Fatalf("create account %s: %v", code, err)
	}
	return a
}

func mustGet(t testing.TB, l *ledger.Ledger, id string) ledger.Account {
	t.Helper()
	a, err := l.GetAccount(ctxT(t), id)
	if err != nil {
		t.Fatalf("get account %s: %v", id, err)
	}
	return a
}

func transfer(id, code string, amount int64, from, to string) ledger.Transfer {
	return ledger.Transfer{ID: id, Code: code, Postings: []ledger.Posting{
		{Account: from, Debit: amount},
		{Account: to, Credit: amount},
	}}
}

func mustAudit(t testing.TB, l *ledger.Ledger) ledger.Audit {
	t.Helper()
	a, err := l.Audit(ctxT(t))
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	if !a.OK() {
		t.Fatalf("audit found broken invariants: %+v", a)
	}
	return a
}

func TestPostMovesMoney(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "platform:funding:CNY", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l, "wallet:usr_1:CNY", "CNY", ledger.CreditNormal, true)
	dev := mustAccount(t, l, "dev:dev_1:pending:CNY", "CNY", ledger.CreditNormal, false)
	fees := mustAccount(t, l, "platform:fees:CNY", "CNY", ledger.CreditNormal, false)

	if _, err := l.Post(ctx, transfer("topup_1", "topup", 10000, bank.Code, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	pay, err := l.Post(ctx, ledger.Transfer{ID: "pay_1", Code: "payment", Metadata: map[string]string{"order": "42"}, Postings: []ledger.Posting{
		{Account: wallet.ID, Debit: 2500},
		{Account: dev.ID, Credit: 2485},
		{Account: fees.Code, Credit: 15},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if pay.Status != ledger.StatusPosted || len(pay.Postings) != 3 || pay.Postings[2].Account != fees.ID || pay.Created.IsZero() {
		t.Fatalf("unexpected transfer %+v", pay)
	}
	got, err := l.GetTransfer(ctx, "pay_1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata["order"] != "42" || got.Postings[1].Credit != 2485 || got.Postings[0].Currency != "CNY" {
		t.Fatalf("read back %+v", got)
	}
	for _, c := range []struct {
		id   string
		want int64
	}{{bank.ID, 10000}, {wallet.ID, 7500}, {dev.ID, 2485}, {fees.ID, 15}} {
		if b := mustGet(t, l, c.id).Balance(); b != c.want {
			t.Errorf("balance of %s = %d, want %d", c.id, b, c.want)
		}
	}
	mustAudit(t, l)
}

func TestInsufficientFundsChangesNothing(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l, "wallet", "CNY", ledger.CreditNormal, true)
	shop := mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, false)
	if _, err := l.Post(ctx, transfer("t1", "topup", 100, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	_, err := l.Post(ctx, transfer("t2", "payment", 101, wallet.ID, shop.ID))
	if !errors.Is(err, ledger.ErrInsufficientFunds) {
		t.Fatalf("err = %v, want insufficient funds", err)
	}
	if _, err := l.GetTransfer(ctx, "t2"); !errors.Is(err, ledger.ErrTransferNotFound) {
		t.Fatalf("refused transfer was stored: %v", err)
	}
	if b := mustGet(t, l, wallet.ID).Balance(); b != 100 {
		t.Fatalf("wallet = %d, want 100", b)
	}
	// The exact balance can be spent.
	if _, err := l.Post(ctx, transfer("t2", "payment", 100, wallet.ID, shop.ID)); err != nil {
		t.Fatal(err)
	}
	mustAudit(t, l)
}

// TestOnCitus runs the ledger's invariant tests on a Citus cluster (a
// coordinator and two workers), with the tables distributed as
// `minipay migrate` distributes them.
func TestOnCitus(t *testing.T) {
	testdb.WithCitus(t)
	t.Run("InvariantsUnderConcurrency", TestInvariantsUnderConcurrency)
	t.Run("SameIDConcurrently", TestSameIDConcurrently)
	t.Run("SameIDAcrossLedgers", TestSameIDAcrossLedgers)
	t.Run("RowsAreImmutable", TestRowsAreImmutable)
	t.Run("WholeReadsUnderLoad", TestWholeReadsUnderLoad)
	t.Run("BeginWholeEndsOnItsConnection", TestBeginWholeEndsOnItsConnection)
	t.Run("PostMovesMoney", TestPostMovesMoney)
	t.Run("HotAccountsSpreadOverWorkers", hotAccountsSpread)
	t.Run("FenceLeakIsEnded", fenceLeakIsEnded)
}
