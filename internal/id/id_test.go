package id

import (
	"sort"
	"testing"
	"time"
)

func TestNewIsValidAndUnique(t *testing.T) {
	seen := make(map[string]bool)
	for i := 0; i < 10000; i++ {
		s := New("tr")
		if !Valid("tr", s) {
			t.Fatalf("New made invalid id %q", s)
		}
		if seen[s] {
			t.Fatalf("duplicate id %q", s)
		}
		seen[s] = true
	}
}

func TestNewSortsByTime(t *testing.T) {
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, New("cs"))
		time.Sleep(2 * time.Millisecond)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatalf("ids made over time are not sorted: %v", ids)
	}
}

func TestValidRejects(t *testing.T) {
	good := New("acct")
	for _, s := range []string{"", "acct_", "tr_" + good[5:], good + "X", good[:len(good)-1] + "U", "acct-" + good[5:]} {
		if Valid("acct", s) {
			t.Errorf("Valid(%q) = true", s)
		}
	}
}
