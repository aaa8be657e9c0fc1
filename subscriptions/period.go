package subscriptions

import "time"

// Intervals a plan bills by.
const (
	IntervalDay   = "day"
	IntervalWeek  = "week"
	IntervalMonth = "month"
	IntervalYear  = "year"
)

// intervalCountMax bounds a plan's interval_count per interval: a period
// is at most a year, as Stripe allows.
var intervalCountMax = map[string]int{IntervalDay: 365, IntervalWeek: 52, IntervalMonth: 12, IntervalYear: 1}

// Boundary is the start of period k of a schedule anchored at anchor
// (period 0 starts at the anchor). It is computed from the anchor, never
// from the previous period, so periods cannot drift. A month is a calendar
// month from the anchor day; when the anchor day is past the month's last
// day the boundary falls on that last day and the anchor is kept for the
// months after (31 Jan → 28 Feb → 31 Mar). Years keep 29 Feb the same way.
// Times are in UTC, at the anchor's time of day.
func Boundary(anchor time.Time, interval string, count, k int) time.Time {
	anchor = anchor.UTC()
	switch interval {
	case IntervalDay:
		return anchor.AddDate(0, 0, k*count)
	case IntervalWeek:
		return anchor.AddDate(0, 0, 7*k*count)
	case IntervalYear:
		return addMonths(anchor, 12*k*count)
	}
	return addMonths(anchor, k*count)
}

// addMonths moves t by n calendar months, clamping the day to the target
// month's last day instead of overflowing into the next month as
// time.AddDate does.
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	hh, mm, ss := t.Clock()
	return time.Date(first.Year(), first.Month(), min(d, last), hh, mm, ss, t.Nanosecond(), time.UTC)
}

// noticeLead is how long before a renewal the renewal_upcoming notice goes out.
const noticeLead = 24 * time.Hour

// noticeAt is when the notice of the renewal at end goes out: a day
// before, or at the period's start when the period is shorter.
func noticeAt(start, end time.Time) time.Time {
	at := end.Add(-noticeLead)
	if at.Before(start) {
		return start
	}
	return at
}

// retryAfterDays are the days after an invoice's due date on which a
// failed renewal is tried again (dunning); after the last, the invoice is
// void and the subscription canceled.
var retryAfterDays = []int{1, 3, 5, 7}

// incompleteTTL is how long a created subscription waits to be signed.
const incompleteTTL = 23 * time.Hour
