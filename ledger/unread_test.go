package ledger_test

import (
	"testing"
	"time"

	"github.com/minipay/minipay/ledger"
)

// TestSmallGroupOnCachedBalancesReadsNothing: once a worker holds a
// wallet's balances, a small group of plain transfers on it begins its
// transaction in the round trip that writes it, and the transfers it
// returns carry the time the database gave them. A group with anything to
// read (an uncached wallet, a hold with a timeout to date) reads first.
func TestSmallGroupOnCachedBalancesReadsNothing(t *testing.T) {
	rec := &groupRecorder{}
	l, _ := newLedger(t, ledger.Options{Workers: 1, Observe: rec.observe})
	ctx := ctxT(t)
	bank, wallet, shop := walletBook(t, l)
	// Transfers are posted one at a time on one worker: the k-th is the
	// k-th group (a group is reported just after its callers are answered,
	// so wait for the report by number, not by count).
	group := 0
	next := func() ledger.BatchStats {
		t.Helper()
		group++
		return rec.after(t, group-1)
	}

	if _, err := l.Post(ctx, transfer("fund", "topup", 1000, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	if g := next(); g.Unread != 0 {
		t.Fatalf("the wallet's first group read nothing (%+v): its balance was not cached", g)
	}
	for i, id := range []string{"pay1", "pay2"} {
		got, err := l.Post(ctx, transfer(id, "payment", 100, wallet.ID, shop.ID))
		if err != nil {
			t.Fatal(err)
		}
		if g := next(); g.Unread != 1 || g.Attempts != 1 {
			t.Fatalf("%s: group %+v; want one attempt that read nothing", id, g)
		}
		stored, err := l.GetTransfer(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Created.IsZero() || !got.Created.Equal(stored.Created) {
			t.Fatalf("%s: Post returned created %v, the ledger holds %v", id, got.Created, stored.Created)
		}
		if want := int64(1000 - 100*(i+1)); mustGet(t, l, wallet.ID).Balance() != want {
			t.Fatalf("wallet = %d, want %d", mustGet(t, l, wallet.ID).Balance(), want)
		}
	}
	hold := transfer("hold", "hold", 50, wallet.ID, shop.ID)
	hold.Pending, hold.Timeout = true, time.Hour
	h, err := l.Post(ctx, hold)
	if err != nil {
		t.Fatal(err)
	}
	if g := next(); g.Unread != 0 {
		t.Fatalf("a hold with a timeout was written without reading the group's time first: %+v", g)
	}
	if !h.ExpiresAt.Equal(h.Created.Add(time.Hour)) {
		t.Fatalf("hold created %v expires %v; want an hour later", h.Created, h.ExpiresAt)
	}
	mustAudit(t, l)
}

// TestUnreadGroupReplayAndRefusal: a group that read nothing still finds a
// replayed id (its insert fails, and the group runs again with checks) and
// never refuses on its cached balance alone.
func TestUnreadGroupReplayAndRefusal(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{Workers: 1})
	ctx := ctxT(t)
	bank, wallet, shop := walletBook(t, l)
	if _, err := l.Post(ctx, transfer("fund", "topup", 1000, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	first, err := l.Post(ctx, transfer("pay", "payment", 300, wallet.ID, shop.ID))
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.Post(ctx, transfer("pay", "payment", 300, wallet.ID, shop.ID))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if !again.Created.Equal(first.Created) {
		t.Fatalf("replay created %v, first %v", again.Created, first.Created)
	}
	if _, err := l.Post(ctx, transfer("too-much", "payment", 800, wallet.ID, shop.ID)); err == nil {
		t.Fatal("800 from a wallet holding 700 was written")
	}
	if got := mustGet(t, l, wallet.ID).Balance(); got != 700 {
		t.Fatalf("wallet = %d, want 700", got)
	}
	mustAudit(t, l)
}
