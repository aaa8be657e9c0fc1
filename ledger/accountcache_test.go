package ledger

import (
	"fmt"
	"testing"
)

// The account cache stays within its two generations however many accounts
// pass through it, and keeps an account in steady use.
func TestAccountCacheBounded(t *testing.T) {
	var c accountCache
	hot := accountMeta{id: AccountID("fees:CNY"), code: "fees:CNY", currency: "CNY", normal: CreditNormal}
	c.put(hot)
	for i := 0; i < 3*accountCacheGen; i++ {
		code := fmt.Sprintf("wallet:u%d:CNY", i)
		c.put(accountMeta{id: AccountID(code), code: code, currency: "CNY", normal: CreditNormal, noOverdraft: true})
		if i%1000 == 0 {
			if _, ok := c.get(hot.code); !ok {
				t.Fatalf("after %d accounts the one in steady use is gone", i)
			}
		}
		if n := len(c.cur) + len(c.old); n > 2*accountCacheGen+2 {
			t.Fatalf("after %d accounts the cache holds %d keys, want at most %d", i, n, 2*accountCacheGen+2)
		}
	}
	if m, ok := c.get(hot.id); !ok || m != hot {
		t.Fatalf("get(%s) = %+v, %v; want %+v", hot.id, m, ok, hot)
	}
	if _, ok := c.get("wallet:u0:CNY"); ok {
		t.Fatal("an account seen once long ago is still cached")
	}
}
