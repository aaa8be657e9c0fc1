package ledger_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/minipay/minipay/ledger"
)

// TestRowsOfAGroup puts transfers that attach Row statements into one
// group: each SQL runs once for the whole group, a Required row that is not
// written fails its transfer alone (several at once, and the second of two
// transfers claiming the same key), and a row the database refuses fails
// only its own transfer. The insert is set-based both ways a Row can be:
// over arrays, and as a VALUES row the group repeats (Statement.Values).
func TestRowsOfAGroup(t *testing.T) {
	t.Run("Arrays", func(t *testing.T) {
		rowsOfAGroup(t, ledger.Statement{SQL: `INSERT INTO side_effects SELECT * FROM unnest($1::text[], $2::text[])`})
	})
	t.Run("Values", func(t *testing.T) {
		rowsOfAGroup(t, ledger.Statement{SQL: `INSERT INTO side_effects (id, note) VALUES ($1, $2::text)`, Values: true})
	})
}

// rowsOfAGroup is TestRowsOfAGroup with insert as the side effects' Row
// statement (its SQL and Values; the rows are the test's).
func rowsOfAGroup(t *testing.T, insert ledger.Statement) {
	rec := &groupRecorder{}
	l, db := newLedger(t, ledger.Options{Observe: rec.observe, Workers: 1})
	ctx := ctxT(t)
	for _, sql := range []string{
		`CREATE TABLE side_effects (id text PRIMARY KEY CHECK (id <> 'refused'), note text)`,
		`CREATE TABLE slots (id text PRIMARY KEY, taken_by text)`,
		`CREATE TABLE statement_runs (n int)`,
		`CREATE FUNCTION count_run() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN INSERT INTO statement_runs VALUES (1); RETURN NULL; END $$`,
		`CREATE TRIGGER side_effects_runs AFTER INSERT ON side_effects FOR EACH STATEMENT EXECUTE FUNCTION count_run()`,
		`INSERT INTO slots SELECT 'slot' || i FROM generate_series(0, 19) i`,
		`INSERT INTO slots VALUES ('shared', NULL), ('gone1', 'someone'), ('gone2', 'someone')`,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	wallet := mustAccount(t, l, "wallet", "CNY", ledger.CreditNormal, true)
	shop := mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, false)
	lock := mustAccount(t, l, "lock", "CNY", ledger.DebitNormal, true)
	if _, err := l.Post(ctx, transfer("fund", "topup", 1000, bank.ID, wallet.ID)); err != nil {
		t.Fatal(err)
	}
	errTaken := errors.New("slot taken")
	const claimSQL = `UPDATE slots s SET taken_by = u.by FROM unnest($1::text[], $2::text[]) AS u(id, by)
			WHERE s.id = u.id AND s.taken_by IS NULL RETURNING s.id`
	effect := func(id string) ledger.Statement {
		return ledger.Statement{SQL: insert.SQL, Values: insert.Values, Args: []any{id, "row"}, Row: true}
	}
	// Each job inserts its side effect and claims a slot.
	job := func(id, slot string) []ledger.Statement {
		return []ledger.Statement{
			effect(id),
			{SQL: claimSQL, Args: []any{slot, id}, Row: true, Required: errTaken},
		}
	}
	type post struct {
		id     string
		attach []ledger.Statement
		want   error // errRefused: the database's check violation
	}
	errRefused := errors.New("refused by a constraint")
	var posts []post
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("good%d", i)
		posts = append(posts, post{id: id, attach: job(id, fmt.Sprintf("slot%d", i))})
	}
	posts = append(posts,
		post{id: "late1", attach: job("late1", "gone1"), want: errTaken},
		post{id: "late2", attach: job("late2", "gone2"), want: errTaken},
		post{id: "mixed", attach: append([]ledger.Statement{
			{SQL: `INSERT INTO side_effects VALUES ('mixed-single', 'statement')`}}, job("mixed", "unused2")...)},
	)
	if _, err := db.Pool.Exec(ctx, `INSERT INTO slots VALUES ('unused', NULL), ('unused2', NULL), ('unused3', NULL)`); err != nil {
		t.Fatal(err)
	}
	// Two transfers claim one slot: the first in arrival order gets it.
	posts = append(posts, post{id: "shared-a", attach: job("shared-a", "shared")})
	posts = append(posts, post{id: "shared-b", attach: job("shared-b", "shared"), want: errTaken})

	together := func(posts []post) []error {
		rec.mu.Lock()
		rec.groups = nil // judge only this round's groups
		rec.mu.Unlock()
		release := blockPoster(t, db.Pool, l, lock.ID, bank.ID)
		errs := make([]error, len(posts))
		var wg sync.WaitGroup
		for i, p := range posts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if p.id == "shared-b" {
					time.Sleep(100 * time.Millisecond) // after shared-a
				}
				_, errs[i] = l.Post(ctx, transfer(p.id, "payment", 10, wallet.ID, shop.ID), p.attach...)
			}()
		}
		time.Sleep(300 * time.Millisecond) // let every post reach the queue
		release()
		wg.Wait()
		if g := rec.waitLargest(len(posts) / 2); g.Ops < len(posts)/2 {
			t.Fatalf("largest group had %d transfers; the posts were not committed together", g.Ops)
		}
		return errs
	}
	errs := together(posts)
	// The insert ran once per group, not once per transfer.
	var runs int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM statement_runs`).Scan(&runs); err != nil {
		t.Fatal(err)
	}
	if runs > 2 {
		t.Fatalf("the Row insert ran %d times for %d transfers; it should run once per group", runs, len(posts))
	}
	// A row the database refuses fails its transfer alone.
	more := []post{{id: "refused", attach: job("refused", "unused3"), want: errRefused}}
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("more%d", i)
		more = append(more, post{id: id, attach: []ledger.Statement{effect(id),
			{SQL: claimSQL, Args: []any{"more-slot" + id, id}, Row: true}}})
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO slots SELECT 'more-slot' || id FROM unnest(ARRAY['more0','more1','more2','more3','more4']) id`); err != nil {
		t.Fatal(err)
	}
	posts = append(posts, more...)
	errs = append(errs, together(more)...)

	wrote := 0
	for i, p := range posts {
		var pgErr *pgconn.PgError
		switch {
		case p.want == nil:
			wrote++
			if errs[i] != nil {
				t.Errorf("%s: %v", p.id, errs[i])
			}
		case p.want == errRefused:
			if !errors.As(errs[i], &pgErr) || pgErr.Code != "23514" {
				t.Errorf("%s: err = %v, want the check violation", p.id, errs[i])
			}
		case !errors.Is(errs[i], p.want):
			t.Errorf("%s: err = %v, want %v", p.id, errs[i], p.want)
		}
	}
	// Rows commit exactly with their transfers.
	var effects, claimed, transfers int
	q := `SELECT (SELECT count(*) FROM side_effects WHERE note = 'row'),
		(SELECT count(*) FROM slots WHERE taken_by IS NOT NULL AND taken_by <> 'someone'),
		(SELECT count(*) FROM ledger_transfers WHERE code = 'payment')`
	if err := db.Pool.QueryRow(ctx, q).Scan(&effects, &claimed, &transfers); err != nil {
		t.Fatal(err)
	}
	if effects != wrote || claimed != wrote || transfers != wrote {
		t.Fatalf("%d side effects, %d claims and %d payments committed, want %d of each", effects, claimed, transfers, wrote)
	}
	var by string
	if err := db.Pool.QueryRow(ctx, `SELECT taken_by FROM slots WHERE id = 'shared'`).Scan(&by); err != nil || by != "shared-a" {
		t.Fatalf("shared slot taken by %q (%v), want shared-a", by, err)
	}
	if w := mustGet(t, l, wallet.ID); w.Balance() != 1000-10*int64(wrote) {
		t.Fatalf("wallet = %d, want %d", w.Balance(), 1000-10*wrote)
	}
	mustAudit(t, l)
}

// TestRowStatementsValidated: contradictory statements are refused before
// anything is written.
func TestRowStatementsValidated(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	bank := mustAccount(t, l, "bank", "CNY", ledger.DebitNormal, false)
	shop := mustAccount(t, l, "shop", "CNY", ledger.CreditNormal, false)
	guard := errors.New("guard")
	for name, s := range map[string]ledger.Statement{
		"row with check":     {SQL: "SELECT 1", Args: []any{"a"}, Row: true, Check: ledger.ExpectRows(1, guard)},
		"required not a row": {SQL: "SELECT 1", Required: guard},
		"row without values": {SQL: "SELECT 1", Row: true},
		"required int key":   {SQL: "SELECT 1", Args: []any{7}, Row: true, Required: guard},
		"values not a row":   {SQL: "INSERT INTO t VALUES ($1)", Args: []any{"a"}, Values: true},
		"values without row": {SQL: "INSERT INTO t SELECT $1", Args: []any{"a"}, Row: true, Values: true},
		"values short":       {SQL: "INSERT INTO t VALUES ($1, 'b')", Args: []any{"a", "b"}, Row: true, Values: true},
		"values after row":   {SQL: "INSERT INTO t VALUES ($1) ON CONFLICT DO NOTHING RETURNING $2", Args: []any{"a", "b"}, Row: true, Values: true},
	} {
		if _, err := l.Post(ctx, transfer("v-"+name, "topup", 1, bank.ID, shop.ID), s); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := l.GetTransfer(ctx, "v-"+name); !errors.Is(err, ledger.ErrTransferNotFound) {
			t.Errorf("%s: transfer written or unexpected error: %v", name, err)
		}
	}
}
