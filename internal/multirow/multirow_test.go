package multirow_test

import (
	"testing"

	"github.com/minipay/minipay/internal/multirow"
)

// TestSQL holds the rendering: the row repeated with its placeholders moved
// on by the row's width, casts and literals kept, the text after the row
// kept once.
func TestSQL(t *testing.T) {
	tpl := multirow.MustParse(`INSERT INTO p (id, s, md) VALUES ($1, 'open', $2::jsonb) ON CONFLICT (id) DO NOTHING RETURNING id`, 2)
	want := `INSERT INTO p (id, s, md) VALUES ($1, 'open', $2::jsonb), ($3, 'open', $4::jsonb), ($5, 'open', $6::jsonb) ON CONFLICT (id) DO NOTHING RETURNING id`
	if got := tpl.SQL(3); got != want {
		t.Errorf("got\n %s\nwant\n %s", got, want)
	}
	if got := tpl.SQL(1); got != `INSERT INTO p (id, s, md) VALUES ($1, 'open', $2::jsonb) ON CONFLICT (id) DO NOTHING RETURNING id` {
		t.Errorf("one row: %s", got)
	}
	if tpl.MaxRows() != 32767 || tpl.Width() != 2 {
		t.Errorf("max rows %d, width %d", tpl.MaxRows(), tpl.Width())
	}
	// A placeholder used twice in the row moves with it.
	if got := multirow.MustParse(`INSERT INTO t VALUES ($2, $1, $1)`, 2).SQL(2); got != `INSERT INTO t VALUES ($2, $1, $1), ($4, $3, $3)` {
		t.Errorf("reused placeholder: %s", got)
	}
}

// TestParseRefuses statements it cannot repeat.
func TestParseRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		sql string
		n   int
	}{
		"no values":       {`INSERT INTO t SELECT $1`, 1},
		"not closed":      {`INSERT INTO t VALUES ($1, ($2)`, 2},
		"short row":       {`INSERT INTO t VALUES ($1, 'b')`, 2},
		"extra in row":    {`INSERT INTO t VALUES ($1, $3)`, 2},
		"after the row":   {`INSERT INTO t VALUES ($1) ON CONFLICT DO NOTHING RETURNING $2`, 1},
		"nothing to bind": {`INSERT INTO t VALUES (1)`, 1},
	} {
		if _, err := multirow.Parse(c.sql, c.n); err == nil {
			t.Errorf("%s: accepted %s", name, c.sql)
		}
	}
}

// BenchmarkSQL renders a group of 1,000 sessions' rows (14 values each).
func BenchmarkSQL(b *testing.B) {
	tpl := multirow.MustParse(`INSERT INTO s (a, b, c, d, e, f, g, h, i, j, k, l, m, n, o) VALUES ($1, $2, $3, 'open', $4, $5, $6, $7,
		$8, $9, $10::jsonb, $11::jsonb, $12, $13, $14) ON CONFLICT (a) DO NOTHING RETURNING a`, 14)
	for b.Loop() {
		_ = tpl.SQL(1000)
	}
}
