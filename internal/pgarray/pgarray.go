// Package pgarray turns the values of one column of many rows into an
// array parameter for a set-based statement (`INSERT … SELECT * FROM
// unnest($1::text[], …)`).
package pgarray

import "time"

// Column returns col as a slice of its values' type when they all share
// one of the common ones, which pgx encodes without reflection; any other
// column, or one of mixed types (nil among pointers included), stays
// []any, which pgx encodes value by value.
func Column(col []any) any {
	if len(col) == 0 {
		return col
	}
	switch col[0].(type) {
	case string:
		return as[string](col)
	case *string:
		return as[*string](col)
	case int64:
		return as[int64](col)
	case *int64:
		return as[*int64](col)
	case int32:
		return as[int32](col)
	case int:
		return as[int](col)
	case bool:
		return as[bool](col)
	case time.Time:
		return as[time.Time](col)
	case *time.Time:
		return as[*time.Time](col)
	case []byte:
		return as[[]byte](col)
	}
	return col
}

func as[T any](col []any) any {
	out := make([]T, len(col))
	for i, v := range col {
		t, ok := v.(T)
		if !ok {
			return col
		}
		out[i] = t
	}
	return out
}
