package ledger

// balanceCache is what one poster worker knows of the no_overdraft balances
// its own groups committed, so that the next group on those accounts can
// skip reading them. The poster routes a wallet's transfers to one worker,
// so after a worker's commit it usually holds the wallet's balances exactly;
// reading them again was about a tenth of the database's work per transfer.
//
// The cache never decides anything alone:
//   - a group that writes on cached balances writes through the same guard as
//     one that read them (updateBalancesSQL): if another worker or replica
//     moved a balance since, the write fails as a whole and the poster runs
//     it again, locking and reading the accounts;
//   - a refusal (insufficient funds) is never made on cached balances: an
//     optimistic group that would refuse a transfer runs again with checks
//     (errIDsTaken), and checked or locking groups read every balance.
//
// A cache found stale is set aside for a while (cacheRest groups): a
// deployment where wallets move under every worker (replicas spending the
// same wallets) would otherwise pay a failed group for each stale hit.
// Only the worker that owns a cache touches it, so it has no lock.
type balanceCache struct {
	m    map[string]balances
	rest int // groups left before the cache is used again
}

const (
	// cacheMax bounds a worker's cache; when full it starts again empty,
	// which costs one read per account and nothing else.
	cacheMax = 1 << 16
	// cacheRest is how many groups a worker reads every balance after its
	// cache was found stale.
	cacheRest = 1000
)

// usable reports whether the next group may take balances from the cache,
// counting down a rest after a stale hit.
func (c *balanceCache) usable() bool {
	if c.rest > 0 {
		c.rest--
		return false
	}
	return c.m != nil
}

// get is safe on a nil cache, which holds nothing.
func (c *balanceCache) get(id string) (balances, bool) {
	if c == nil {
		return balances{}, false
	}
	b, ok := c.m[id]
	return b, ok
}

// store records balances as committed (or read) by the worker's group.
func (c *balanceCache) store(committed map[string]balances) {
	if c.m == nil || len(c.m)+len(committed) > cacheMax {
		c.m = make(map[string]balances, len(committed))
	}
	for id, b := range committed {
		c.m[id] = b
	}
}

// forget drops accounts whose balances are no longer known: a group
// written on them failed its guard, or its commit's outcome is unknown.
func (c *balanceCache) forget(ids map[string]balances) {
	for id := range ids {
		delete(c.m, id)
	}
}

// stale sets the cache aside after a group written on cached balances
// found one of them moved.
func (c *balanceCache) stale(ids map[string]balances) {
	c.forget(ids)
	c.rest = cacheRest
}
