package minipay

import "time"

// Timestamp renders a time as every minipay object carries it (API
// responses, event bodies, reports): RFC 3339 in UTC to the microsecond,
// what PostgreSQL keeps, so a time read back compares equal.
func Timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
}
