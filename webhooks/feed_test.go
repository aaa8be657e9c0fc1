package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/testdb"
)

// follow reads the feed from after to its current end and returns the ids.
func (f *fixture) follow(o Owner, after string) []string {
	f.t.Helper()
	var ids []string
	for {
		page, more, err := f.svc.ListEvents(context.Background(), o, EventFilter{OldestFirst: true, Limit: 3, StartingAfter: after})
		if err != nil {
			f.t.Fatal(err)
		}
		for _, raw := range page {
			var e struct{ ID string }
			if err := json.Unmarshal(raw, &e); err != nil {
				f.t.Fatal(err)
			}
			ids = append(ids, e.ID)
			after = e.ID
		}
		if !more {
			return ids
		}
	}
}

func (f *fixture) event(o Owner) Event {
	return Event{ID: id.New("evt"), Type: CheckoutSessionCompleted, DeveloperID: o.DeveloperID, AppID: o.AppID,
		Object: map[string]any{"id": "cs_feed", "version": 1}, ObjectID: "cs_feed", ObjectVersion: 1}
}

// TestFeedWaitsForALateCommit: event a is written first (smaller id) by a
// transaction that stays open while b commits. A reader that saw b and
// moved its cursor past it would never see a; the feed holds b back until
// a's transaction ends, then lists both, a first.
func TestFeedWaitsForALateCommit(t *testing.T) {
	f := newFixture(t, quick())
	ctx := context.Background()
	tx, err := f.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	a := f.event(f.app)
	if err := Emit(ctx, tx, a); err != nil {
		t.Fatal(err)
	}
	b := f.emit(f.app, CheckoutSessionCompleted, 1)[0]
	if got := f.follow(f.app, ""); len(got) != 0 {
		t.Fatalf("the feed listed %v while an older transaction was open", got)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	f.waitFor("both events in the feed", func() bool { got = f.follow(f.app, ""); return len(got) == 2 })
	if !slices.Equal(got, []string{a.ID, b}) {
		t.Fatalf("feed %v, want [%s %s]", got, a.ID, b)
	}
	if rest := f.follow(f.app, b); len(rest) != 0 {
		t.Fatalf("after the last event: %v", rest)
	}
}

// TestFeedConcurrentWriters attacks the feed's promise: writers commit and
// roll back transactions of random lengths while a reader follows the feed
// with its cursor. The reader ends with every committed event exactly
// once, none rolled back, and never an event behind its cursor.
func TestFeedConcurrentWriters(t *testing.T) {
	f := newFixture(t, quick())
	ctx := context.Background()
	const writers, txPerWriter = 6, 25
	var (
		mu        sync.Mutex
		committed = map[string]bool{}
		wg        sync.WaitGroup
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range txPerWriter {
				var evs []Event
				for range 1 + rng.IntN(3) {
					evs = append(evs, f.event(f.app))
				}
				rollback := rng.IntN(5) == 0
				err := pgx.BeginFunc(ctx, f.db.Pool, func(tx pgx.Tx) error {
					for _, e := range evs {
						if err := Emit(ctx, tx, e); err != nil {
							return err
						}
						time.Sleep(time.Duration(rng.IntN(4)) * time.Millisecond)
					}
					if rollback {
						return errRollback
					}
					return nil
				})
				if err != nil && !errors.Is(err, errRollback) {
					t.Error(err)
					return
				}
				if !rollback {
					mu.Lock()
					for _, e := range evs {
						committed[e.ID] = true
					}
					mu.Unlock()
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var seen []string
	after := ""
	read := func() {
		got := f.follow(f.app, after)
		seen = append(seen, got...)
		if len(got) > 0 {
			after = got[len(got)-1]
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			read()
			time.Sleep(time.Millisecond)
		}
	}
	f.waitFor("the reader to catch up", func() bool { read(); return len(seen) >= len(committed) })
	read()
	dup := map[string]bool{}
	for _, id := range seen {
		if dup[id] {
			t.Fatalf("event %s listed twice", id)
		}
		dup[id] = true
		if !committed[id] {
			t.Fatalf("event %s was rolled back but listed", id)
		}
	}
	if len(seen) != len(committed) {
		t.Fatalf("the reader saw %d of %d committed events: the feed skipped some", len(seen), len(committed))
	}
}

var errRollback = errors.New("roll back")

// TestFeedScope: an app's feed has its own events and its developer's
// app-less ones, never another app's; a cursor from another app is refused.
func TestFeedScope(t *testing.T) {
	f := newFixture(t, quick())
	other := Owner{AppID: "app_two", DeveloperID: "dev_two"}
	mine := f.emit(f.app, CheckoutSessionCompleted, 2)
	theirs := f.emit(other, CheckoutSessionCompleted, 1)
	payout := f.emit(Owner{DeveloperID: f.app.DeveloperID}, PayoutCreated, 1)
	slices.Sort(mine) // one transaction: in id order
	var got []string
	f.waitFor("the feed", func() bool { got = f.follow(f.app, ""); return len(got) == 3 })
	if !slices.Equal(got, append(mine, payout...)) {
		t.Fatalf("feed %v, want %v then %v", got, mine, payout)
	}
	_, _, err := f.svc.ListEvents(context.Background(), f.app, EventFilter{OldestFirst: true, Limit: 10, StartingAfter: theirs[0]})
	if !errors.Is(err, ErrEventNotFound) {
		t.Fatalf("another app's event as cursor: %v", err)
	}
}

// TestFeedIgnoresOtherDatabases: a long transaction in another database of
// the same server (transaction ids are server-wide) does not hold the feed
// back, while one in this database does (TestFeedWaitsForALateCommit).
func TestFeedIgnoresOtherDatabases(t *testing.T) {
	f := newFixture(t, quick())
	ctx := context.Background()
	other := testdb.New(t)
	tx, err := other.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil { // takes a transaction id, as a write would
		t.Fatal(err)
	}
	ev := f.emit(f.app, CheckoutSessionCompleted, 1)
	var got []string
	f.waitFor("the event despite the other database's transaction", func() bool { got = f.follow(f.app, ""); return len(got) == 1 })
	if got[0] != ev[0] {
		t.Fatalf("feed %v, want %v", got, ev)
	}
}
