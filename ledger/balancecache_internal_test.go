package ledger

import (
	"fmt"
	"testing"
)

// TestBalanceCacheBounds checks the cache's bookkeeping: nothing is used
// before something was stored, a stale hit rests it for cacheRest groups,
// and a full cache starts again rather than growing.
func TestBalanceCacheBounds(t *testing.T) {
	var nilCache *balanceCache
	if _, ok := nilCache.get("a"); ok {
		t.Fatal("a nil cache found an account")
	}
	var c balanceCache
	if c.usable() {
		t.Fatal("an empty cache is usable")
	}
	c.store(map[string]balances{"a": {cp: 5}})
	if b, ok := c.get("a"); !ok || b.cp != 5 || !c.usable() {
		t.Fatalf("stored a: %+v %v, usable %v", b, ok, c.usable())
	}
	c.stale(map[string]balances{"a": {}})
	if _, ok := c.get("a"); ok {
		t.Fatal("a stale account stayed")
	}
	c.store(map[string]balances{"b": {cp: 1}})
	for i := range cacheRest {
		if c.usable() {
			t.Fatalf("usable %d groups after a stale hit, want %d", i, cacheRest)
		}
	}
	if !c.usable() {
		t.Fatal("not usable after its rest")
	}
	for i := range cacheMax + 10 {
		c.store(map[string]balances{fmt.Sprint(i): {}})
	}
	if len(c.m) > cacheMax {
		t.Fatalf("cache holds %d accounts, more than %d", len(c.m), cacheMax)
	}
}
