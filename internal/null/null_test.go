package null_test

import (
	"testing"
	"time"

	"github.com/minipay/minipay/internal/null"
)

func TestRoundTrip(t *testing.T) {
	if null.String("") != nil || null.Time(time.Time{}) != nil {
		t.Fatal("a zero value is not NULL")
	}
	now := time.Now()
	if s := null.String("x"); s == nil || *s != "x" || null.Value(s) != "x" {
		t.Fatalf("String(x) = %v", s)
	}
	if p := null.Time(now); p == nil || !p.Equal(now) || !null.Value(p).Equal(now) {
		t.Fatalf("Time(now) = %v", p)
	}
	if null.Value((*string)(nil)) != "" || !null.Value((*time.Time)(nil)).IsZero() {
		t.Fatal("NULL does not read back as the zero value")
	}
}
