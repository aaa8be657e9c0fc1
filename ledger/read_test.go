package ledger_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/minipay/minipay/ledger"
)

func TestBalanceAsOf(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l, "wallet", "CNY", ledger.CreditNormal, true)
	shop := mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, false)
	t1, err := l.Post(ctx, transfer("t1", "topup", 1000, bank.ID, wallet.ID))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	h := transfer("h", "payment", 300, wallet.ID, shop.ID)
	h.Pending = true
	th, err := l.Post(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := l.PostPending(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Second)
	cases := []struct {
		at               time.Time
		balance, pending int64
	}{
		{t1.Created.Add(-time.Millisecond), 0, 0},
		{t1.Created, 1000, 0},
		{th.Created, 1000, 300},
		{now, 700, 0},
	}
	for _, c := range cases {
		a, err := l.AccountAt(ctx, wallet.ID, c.at)
		if err != nil {
			t.Fatal(err)
		}
		if a.Balance() != c.balance || a.DebitsPending != c.pending {
			t.Errorf("at %s: balance %d pending %d, want %d %d", c.at, a.Balance(), a.DebitsPending, c.balance, c.pending)
		}
		tb, err := l.TrialBalanceAt(ctx, c.at)
		if err != nil || !tb.Balanced {
			t.Errorf("trial balance at %s: %+v %v", c.at, tb, err)
		}
	}
	if cur := mustGet(t, l, wallet.ID); cur.Balance() != 700 {
		t.Fatalf("now: %d", cur.Balance())
	}
}

func TestEntriesPaginate(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l, "wallet", "CNY", ledger.CreditNormal, false)
	for i := 0; i < 25; i++ {
		if _, err := l.Post(ctx, transfer(fmt.Sprintf("t%02d", i), "topup", int64(i+1), bank.ID, wallet.ID)); err != nil {
			t.Fatal(err)
		}
	}
	var all []ledger.Entry
	after := ""
	for page := 0; ; page++ {
		entries, more, err := l.Entries(ctx, wallet.Code, 10, after)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, entries...)
		if !more {
			break
		}
		after = entries[len(entries)-1].TransferID
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(all) != 25 {
		t.Fatalf("%d entries, want 25", len(all))
	}
	seen := map[string]bool{}
	var sum int64
	for i, e := range all {
		if seen[e.TransferID] {
			t.Fatalf("entry %s twice", e.TransferID)
		}
		seen[e.TransferID] = true
		sum += e.CreditsPosted
		if i > 0 && e.Created.After(all[i-1].Created) {
			t.Fatalf("entries not newest first at %d", i)
		}
	}
	if sum != mustGet(t, l, wallet.ID).Balance() {
		t.Fatalf("entries sum to %d, balance %d", sum, mustGet(t, l, wallet.ID).Balance())
	}
	if _, _, err := l.Entries(ctx, wallet.ID, 0, ""); err == nil {
		t.Fatal("limit 0 accepted")
	}
	if _, _, err := l.Entries(ctx, wallet.ID, 10, "nope"); err == nil {
		t.Fatal("unknown cursor accepted")
	}
}

func TestTrialBalancePerCurrency(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	for _, cur := range []string{"CNY", "JPY"} {
		a := mustAccount(t, l, "a:"+cur, cur, ledger.DebitNormal, false)
		b := mustAccount(t, l, "b:"+cur, cur, ledger.CreditNormal, false)
		if _, err := l.Post(ctx, transfer("t:"[:1]+cur, "c", 999, a.ID, b.ID)); err != nil {
			t.Fatal(err)
		}
	}
	tb, err := l.TrialBalance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !tb.Balanced || len(tb.Currencies) != 2 || tb.Currencies[1].Currency != "JPY" || tb.Currencies[1].Debits.IntPart() != 999 {
		t.Fatalf("trial balance %+v", tb)
	}
}
