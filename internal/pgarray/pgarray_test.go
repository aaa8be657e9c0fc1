package pgarray_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/pgarray"
)

func TestColumn(t *testing.T) {
	s := "x"
	now := time.Now()
	for _, c := range []struct {
		col  []any
		want any
	}{
		{[]any{"a", "b"}, []string{"a", "b"}},
		{[]any{int64(1), int64(2)}, []int64{1, 2}},
		{[]any{&s, (*string)(nil)}, []*string{&s, nil}},
		{[]any{true}, []bool{true}},
		{[]any{now}, []time.Time{now}},
		{[]any{[]byte("k")}, [][]byte{[]byte("k")}},
		// Mixed or unknown types stay as they are.
		{[]any{"a", int64(1)}, []any{"a", int64(1)}},
		{[]any{&s, nil}, []any{&s, nil}},
		{[]any{1.5}, []any{1.5}},
		{[]any{}, []any{}},
	} {
		if got := pgarray.Column(c.col); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Column(%v) = %#v, want %#v", c.col, got, c.want)
		}
	}
}
