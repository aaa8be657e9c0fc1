// Package null turns Go's zero values into SQL NULL and back, for the
// columns where an empty string or a zero time means "none".
package null

import "time"

// String is s, or nil (NULL) when s is empty.
func String(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Time is t, or nil (NULL) when t is the zero time.
func Time(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Value is *p, or T's zero value when p is nil (a NULL read back).
func Value[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
