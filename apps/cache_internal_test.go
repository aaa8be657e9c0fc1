package apps

import (
	"fmt"
	"testing"
)

// TestAppCacheCountsApps refreshes one app as often as the cache may hold
// apps, then caches a second: the first must still be cached (counting
// every refresh emptied a busy replica's cache every appCacheMax
// refreshes), and the cache must still start over once it holds more than
// appCacheMax different apps.
func TestAppCacheCountsApps(t *testing.T) {
	s := &Service{}
	for range appCacheMax {
		s.cacheApp(App{ID: "app_1"})
	}
	s.cacheApp(App{ID: "app_2"})
	if n := s.napps.Load(); n != 2 {
		t.Fatalf("two apps, one refreshed %d times, count %d", appCacheMax, n)
	}
	if _, ok := s.apps.Load("app_1"); !ok {
		t.Fatal("the refreshed app left the cache when a second came")
	}
	for i := range appCacheMax {
		s.cacheApp(App{ID: fmt.Sprint("other_", i)})
	}
	if n := s.napps.Load(); n > appCacheMax {
		t.Fatalf("cache counts %d apps, more than %d", n, appCacheMax)
	}
	if _, ok := s.apps.Load("app_1"); ok {
		t.Fatal("a cache past its bound did not start over")
	}
}
