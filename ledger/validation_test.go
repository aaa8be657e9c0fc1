package ledger_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/minipay/minipay/ledger"
)

// TestBadTransfersChangeNothing posts every kind of malformed transfer and
// checks each is refused with its own error and leaves the ledger as it was.
func TestBadTransfersChangeNothing(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	a := mustAccount(t, l, "a", "CNY", ledger.DebitNormal, false)
	b := mustAccount(t, l, "b", "CNY", ledger.CreditNormal, false)
	c := mustAccount(t, l, "c", "CNY", ledger.CreditNormal, false)
	usd := mustAccount(t, l, "usd", "USD", ledger.CreditNormal, false)
	if _, err := l.Post(ctx, transfer("seed", "seed", 500, a.ID, b.ID)); err != nil {
		t.Fatal(err)
	}
	bigMeta := map[string]string{}
	for i := 0; i < 51; i++ {
		bigMeta[strings.Repeat("k", i+1)] = "v"
	}
	many := make([]ledger.Posting, 33)
	for i := range many {
		many[i] = ledger.Posting{Account: a.ID, Debit: 1}
	}
	cases := []struct {
		name string
		tr   ledger.Transfer
		want error
	}{
		{"unbalanced", ledger.Transfer{ID: "x1", Code: "c", Postings: []ledger.Posting{{Account: a.ID, Debit: 10}, {Account: b.ID, Credit: 9}}}, ledger.ErrUnbalanced},
		{"unbalanced three", ledger.Transfer{ID: "x2", Code: "c", Postings: []ledger.Posting{{Account: a.ID, Debit: 10}, {Account: b.ID, Credit: 5}, {Account: c.ID, Credit: 4}}}, ledger.ErrUnbalanced},
		{"mixed currencies", transfer("x3", "c", 10, a.ID, usd.ID), ledger.ErrUnbalanced},
		{"unknown account", transfer("x4", "c", 10, a.ID, "acct_nope"), ledger.ErrAccountNotFound},
		{"unknown code", transfer("x5", "c", 10, "no:such:code", b.ID), ledger.ErrAccountNotFound},
		{"zero amount", transfer("x6", "c", 0, a.ID, b.ID), ledger.ErrTransferInvalid},
		{"negative amount", transfer("x7", "c", -5, a.ID, b.ID), ledger.ErrAmountNotPositive},
		{"one posting", ledger.Transfer{ID: "x8", Code: "c", Postings: []ledger.Posting{{Account: a.ID, Debit: 10}}}, ledger.ErrTransferInvalid},
		{"no postings", ledger.Transfer{ID: "x9", Code: "c"}, ledger.ErrTransferInvalid},
		{"too many postings", ledger.Transfer{ID: "x10", Code: "c", Postings: many}, ledger.ErrTransferInvalid},
		{"both sides", ledger.Transfer{ID: "x11", Code: "c", Postings: []ledger.Posting{{Account: a.ID, Debit: 10, Credit: 10}, {Account: b.ID, Credit: 0, Debit: 0}}}, ledger.ErrTransferInvalid},
		{"same account twice", ledger.Transfer{ID: "x12", Code: "c", Postings: []ledger.Posting{{Account: a.ID, Debit: 10}, {Account: a.Code, Credit: 10}}}, ledger.ErrDuplicateAccount},
		{"overflowing sum", ledger.Transfer{ID: "x13", Code: "c", Postings: []ledger.Posting{{Account: a.ID, Debit: math.MaxInt64}, {Account: c.ID, Debit: 1}, {Account: b.ID, Credit: 1}}}, ledger.ErrAmountTooLarge},
		{"balance overflow", transfer("x14", "c", math.MaxInt64, a.ID, b.ID), ledger.ErrAmountTooLarge},
		{"empty id", transfer("", "c", 10, a.ID, b.ID), ledger.ErrTransferInvalid},
		{"reserved id", transfer("x:post", "c", 10, a.ID, b.ID), ledger.ErrTransferInvalid},
		{"long id", transfer(strings.Repeat("x", 65), "c", 10, a.ID, b.ID), ledger.ErrTransferInvalid},
		{"bad code", transfer("x15", "no spaces", 10, a.ID, b.ID), ledger.ErrTransferInvalid},
		{"metadata keys", ledger.Transfer{ID: "x16", Code: "c", Metadata: bigMeta, Postings: transfer("", "", 1, a.ID, b.ID).Postings}, ledger.ErrMetadataInvalid},
		{"metadata value", ledger.Transfer{ID: "x17", Code: "c", Metadata: map[string]string{"k": strings.Repeat("v", 501)}, Postings: transfer("", "", 1, a.ID, b.ID).Postings}, ledger.ErrMetadataInvalid},
		{"metadata utf8", ledger.Transfer{ID: "x18", Code: "c", Metadata: map[string]string{"k": "\xff"}, Postings: transfer("", "", 1, a.ID, b.ID).Postings}, ledger.ErrMetadataInvalid},
		{"timeout without pending", ledger.Transfer{ID: "x19", Code: "c", Timeout: 5e9, Postings: transfer("", "", 1, a.ID, b.ID).Postings}, ledger.ErrTransferInvalid},
		{"fractional timeout", ledger.Transfer{ID: "x20", Code: "c", Pending: true, Timeout: 1500e6, Postings: transfer("", "", 1, a.ID, b.ID).Postings}, ledger.ErrTransferInvalid},
	}
	before := snapshot(t, l, a.ID, b.ID, c.ID, usd.ID)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Post(ctx, tc.tr)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var le *ledger.Error
			if !errors.As(err, &le) || le.Code() == "" {
				t.Fatalf("error %v carries no code", err)
			}
		})
	}
	if after := snapshot(t, l, a.ID, b.ID, c.ID, usd.ID); after != before {
		t.Fatalf("refused transfers changed balances: %v -> %v", before, after)
	}
	if audit := mustAudit(t, l); audit.Transfers != 1 {
		t.Fatalf("%d transfers stored, want only the seed", audit.Transfers)
	}
}

func snapshot(t testing.TB, l *ledger.Ledger, ids ...string) string {
	var s strings.Builder
	for _, id := range ids {
		a := mustGet(t, l, id)
		s.WriteString(ledger.FormatAmount(a.Currency, a.DebitsPosted) + "/" + ledger.FormatAmount(a.Currency, a.CreditsPosted) + ";")
	}
	return s.String()
}

func TestAccountValidation(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	bad := []ledger.AccountSpec{
		{Code: "", Currency: "CNY", NormalBalance: ledger.DebitNormal},
		{Code: "has space", Currency: "CNY", NormalBalance: ledger.DebitNormal},
		{Code: strings.Repeat("a", 129), Currency: "CNY", NormalBalance: ledger.DebitNormal},
		{Code: "ok", Currency: "XYZ", NormalBalance: ledger.DebitNormal},
		{Code: "ok", Currency: "CNY", NormalBalance: "sideways"},
	}
	for _, spec := range bad {
		if _, err := l.CreateAccount(ctx, spec); err == nil {
			t.Errorf("CreateAccount(%+v) succeeded", spec)
		}
	}
	spec := ledger.AccountSpec{Code: "wallet:u:CNY", Currency: "CNY", NormalBalance: ledger.CreditNormal, NoOverdraft: true}
	a, err := l.CreateAccount(ctx, spec)
	if err != nil || a.ID != ledger.AccountID(spec.Code) {
		t.Fatalf("create: %+v, %v", a, err)
	}
	if _, err := l.CreateAccount(ctx, spec); !errors.Is(err, ledger.ErrAccountExists) {
		t.Fatalf("second create: %v", err)
	}
	if got, err := l.EnsureAccount(ctx, spec); err != nil || got.ID != a.ID {
		t.Fatalf("ensure existing: %+v, %v", got, err)
	}
	spec.NoOverdraft = false
	if _, err := l.EnsureAccount(ctx, spec); !errors.Is(err, ledger.ErrAccountExists) {
		t.Fatalf("ensure with other attributes: %v", err)
	}
	if _, err := l.GetAccount(ctx, "acct_missing"); !errors.Is(err, ledger.ErrAccountNotFound) {
		t.Fatalf("get missing: %v", err)
	}
}

// TestEnsureAccountConcurrently creates the same new accounts from many
// callers of two ledgers at once (two replicas confirming the first payments
// of a new developer): every caller gets the one account, none an error.
func TestEnsureAccountConcurrently(t *testing.T) {
	l1, db := newLedger(t, ledger.Options{})
	l2 := ledger.New(db.Pool, ledger.Options{})
	t.Cleanup(l2.Close)
	ctx := ctxT(t)
	const callers, accounts = 16, 40
	for n := 0; n < accounts; n++ {
		spec := ledger.AccountSpec{Code: fmt.Sprintf("dev:%d:pending:CNY", n), Currency: "CNY", NormalBalance: ledger.CreditNormal}
		start := make(chan struct{})
		ids := make([]string, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for c := 0; c < callers; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := l1
				if c%2 == 1 {
					l = l2
				}
				<-start
				a, err := l.EnsureAccount(ctx, spec)
				ids[c], errs[c] = a.ID, err
			}()
		}
		close(start)
		wg.Wait()
		for c := range errs {
			if errs[c] != nil || ids[c] != ledger.AccountID(spec.Code) {
				t.Fatalf("%s, caller %d: %q, %v", spec.Code, c, ids[c], errs[c])
			}
		}
	}
}
