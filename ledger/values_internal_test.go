package ledger

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/minipay/minipay/internal/multirow"
)

// TestValuesStatement holds the multi-row rendering of a Values set: the
// row of placeholders is repeated with its numbers moved on by the row's
// width, casts and what follows the row kept, and the values in row order.
func TestValuesStatement(t *testing.T) {
	rs := &rowSet{
		sql:    `INSERT INTO p (id, md) VALUES ($1, $2::jsonb) ON CONFLICT (id) DO NOTHING RETURNING id`,
		cols:   [][]any{{"a", "b", "c"}, {"{}", `{"k":1}`, "{}"}},
		ops:    []int{0, 1, 2},
		values: true,
	}
	sql, args := rs.statement()
	want := `INSERT INTO p (id, md) VALUES ($1, $2::jsonb), ($3, $4::jsonb), ($5, $6::jsonb) ON CONFLICT (id) DO NOTHING RETURNING id`
	if sql != want {
		t.Errorf("sql:\n %s\nwant\n %s", sql, want)
	}
	if wantArgs := []any{"a", "{}", "b", `{"k":1}`, "c", "{}"}; !reflect.DeepEqual(args, wantArgs) {
		t.Errorf("args %v, want %v", args, wantArgs)
	}
}

// TestValuesSetsSplitAtTheParameterLimit: a group whose VALUES rows would
// pass the protocol's 65,535 parameters sends them as several statements.
func TestValuesSetsSplitAtTheParameterLimit(t *testing.T) {
	const width = 100 // values a row
	row := make([]any, width)
	sql := `INSERT INTO t VALUES (`
	for k := range width {
		if k > 0 {
			sql += ", "
		}
		sql += "$" + strconv.Itoa(k+1)
		row[k] = k
	}
	sql += ")"
	var ops []*op
	var written []int
	for i := range 1000 {
		ops = append(ops, &op{attach: []Statement{{SQL: sql, Args: row, Row: true, Values: true}}})
		written = append(written, i)
	}
	sets, err := gatherRows(ops, written)
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, rs := range sets {
		if n := len(rs.ops) * width; n > multirow.MaxParams {
			t.Errorf("a set of %d rows has %d parameters", len(rs.ops), n)
		}
		rows += len(rs.ops)
	}
	if len(sets) != 2 || rows != 1000 {
		t.Errorf("%d sets holding %d rows, want 2 holding 1000", len(sets), rows)
	}
}
