package minipay_test

import (
	"testing"
	"time"

	"github.com/minipay/minipay"
)

func TestTimestamps(t *testing.T) {
	at := time.Date(2027, 1, 31, 17, 30, 0, 123456789, time.FixedZone("CST", 8*3600))
	if got := minipay.Timestamp(at); got != "2027-01-31T09:30:00.123456Z" {
		t.Fatalf("Timestamp = %s", got)
	}
	if p := minipay.OptionalTimestamp(at); p == nil || *p != minipay.Timestamp(at) {
		t.Fatalf("OptionalTimestamp = %v", p)
	}
	if p := minipay.OptionalTimestamp(time.Time{}); p != nil {
		t.Fatalf("OptionalTimestamp of the zero time = %s, want nil (JSON null)", *p)
	}
}
