package minipay

import "time"

// Timestamp renders a time as every minipay object carries it (API
// responses, event bodies, reports): RFC 3339 in UTC to the microsecond,
// what PostgreSQL keeps, so a time read back compares equal.
func Timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
}

// OptionalTimestamp is Timestamp(t), or nil (JSON null) for the zero time:
// a time an object may not have yet, such as when it was canceled.
func OptionalTimestamp(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := Timestamp(t)
	return &s
}
