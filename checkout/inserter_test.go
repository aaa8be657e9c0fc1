package checkout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
)

func testSession(id string, amount int64) Session {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return Session{ID: id, AppID: "app_x", DeveloperID: "dev_x", CaptureMethod: CaptureAutomatic, Currency: "CNY",
		Option: "goods", AmountTotal: amount, ClientSecret: id + "_secret", Metadata: map[string]string{"k": "v"},
		LineItems: []LineItem{{Name: "gem", UnitAmount: amount, Quantity: 1}},
		ExpiresAt: now.Add(time.Hour), Created: now}
}

// TestInserterGroups writes many sessions at once, the same ids from
// several callers and one row the database refuses among them: each id is
// created once and told to exactly one caller, the bad row fails alone, and
// every row is stored as given.
func TestInserterGroups(t *testing.T) {
	db := testdb.New(t)
	w := newInserter(db.Pool)
	defer w.close()
	ctx := context.Background()
	const ids, callers = 200, 3
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created = map[string]int{}
		errs    []error
	)
	for i := 0; i < ids; i++ {
		for c := 0; c < callers; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				amount := int64(100 + i)
				if i == 7 {
					amount = -1 // refused by the table's CHECK
				}
				ok, err := w.insert(ctx, testSession(fmt.Sprintf("cs_test_%03d", i), amount))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				if ok {
					created[fmt.Sprintf("cs_test_%03d", i)]++
				}
			}()
		}
	}
	wg.Wait()
	if len(errs) != callers {
		t.Fatalf("%d errors, want %d (the bad row, once per caller): %v", len(errs), callers, errs)
	}
	if len(created) != ids-1 {
		t.Fatalf("%d ids created, want %d", len(created), ids-1)
	}
	for id, n := range created {
		if n != 1 {
			t.Fatalf("%s: %d callers told they created it", id, n)
		}
	}
	var rows, sum int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), sum(amount_total) FROM checkout_sessions
		WHERE metadata = '{"k": "v"}' AND line_items->0->>'name' = 'gem' AND status = 'open'`).Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	if want := int64(ids*(200+ids-1)/2 - 107); rows != ids-1 || sum != want {
		t.Fatalf("stored %d rows summing %d, want %d summing %d", rows, sum, ids-1, want)
	}
}

// TestInserterClose writes what was queued before close and refuses what
// comes after.
func TestInserterClose(t *testing.T) {
	db := testdb.New(t)
	w := newInserter(db.Pool)
	ok, err := w.insert(context.Background(), testSession("cs_before", 100))
	if err != nil || !ok {
		t.Fatalf("insert before close: %v %v", ok, err)
	}
	w.close()
	if _, err := w.insert(context.Background(), testSession("cs_after", 100)); !errors.Is(err, ErrClosed) {
		t.Fatalf("insert after close: %v", err)
	}
	w.close() // twice is fine
}

// TestInserterFreshIDs writes sessions whose ids were made here, which
// skip ON CONFLICT, together with keyed ones in the same groups: each is
// created and told so, and a fresh id that collides all the same (it
// cannot by chance) is never told it was created (an error, or not
// inserted when its group took the keyed path).
func TestInserterFreshIDs(t *testing.T) {
	db := testdb.New(t)
	w := newInserter(db.Pool)
	defer w.close()
	ctx := context.Background()
	if ok, err := w.insert(ctx, testSession("cs_taken", 100)); err != nil || !ok {
		t.Fatalf("keyed insert: %v %v", ok, err)
	}
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n+1)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sess := testSession(fmt.Sprintf("cs_fresh_%03d", i), 100)
			sess.freshID = i%4 != 0 // some keyed ones among them
			if ok, err := w.insert(ctx, sess); err != nil || !ok {
				errs <- fmt.Errorf("%s: %v %v", sess.ID, ok, err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		dup := testSession("cs_taken", 100)
		dup.freshID = true
		if ok, err := w.insert(ctx, dup); ok {
			errs <- fmt.Errorf("a fresh id that exists was told it was created (err %v)", err)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var rows int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM checkout_sessions WHERE id LIKE 'cs_fresh_%'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != n {
		t.Fatalf("%d sessions stored, want %d", rows, n)
	}
}

// TestInserterPlansOnce inserts sessions one group at a time over one
// connection: the insert must be planned once for the connection (a
// generic plan), not again for every group, as PostgreSQL chose to do
// when left to choose, at a third of the insert's cost.
func TestInserterPlansOnce(t *testing.T) {
	db := testdb.NewWithConns(t, 1)
	w := newInserter(db.Pool)
	defer w.close()
	ctx := context.Background()
	for i := range 8 {
		sess := testSession(fmt.Sprintf("cs_plan_%d", i), 100)
		sess.freshID = i%2 == 0 // both forms of the insert
		if ok, err := w.insert(ctx, sess); err != nil || !ok {
			t.Fatalf("insert %d: %v %v", i, ok, err)
		}
	}
	var statements, custom int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(custom_plans), 0) FROM pg_prepared_statements
		WHERE statement LIKE '%INSERT INTO checkout_sessions%' AND statement NOT LIKE '%pg_prepared_statements%'`).Scan(&statements, &custom); err != nil {
		t.Fatal(err)
	}
	if statements != 2 || custom != 0 {
		t.Fatalf("%d insert statements planned %d times for their parameters; want 2 statements, never", statements, custom)
	}
}

// TestInserterOnCitus runs the inserter's tests on a Citus cluster, where a
// group is one multi-row INSERT that Citus splits by shard: the same ids
// from several callers, a refused row, fresh and keyed ids together.
func TestInserterOnCitus(t *testing.T) {
	testdb.WithCitus(t)
	t.Run("Groups", TestInserterGroups)
	t.Run("FreshIDs", TestInserterFreshIDs)
}
