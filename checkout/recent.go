package checkout

import "sync"

// recentMax bounds the sessions a replica remembers; a session is usually
// confirmed seconds after it is created, so a short memory is enough.
const recentMax = 20_000

// recent remembers the sessions this replica created and that may still
// be open, so a confirm need not read its session back. What it remembers
// never goes stale in a way that matters: the fields a confirm uses
// (amount, currency, option, app, client secret, expiry) never change, and
// the confirm's guarded update (status open, not expired) commits with the
// transfer or fails it, so a session canceled or expired meanwhile is
// caught there, and read from the database then.
type recent struct {
	mu   sync.Mutex
	m    map[string]Session
	ring [recentMax]string // ids in insertion order, to forget the oldest
	next int
}

func (r *recent) put(s Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]Session, recentMax)
	}
	delete(r.m, r.ring[r.next])
	r.ring[r.next] = s.ID
	r.next = (r.next + 1) % recentMax
	r.m[s.ID] = s
}

func (r *recent) get(id string) (Session, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.m[id]
	return s, ok
}

func (r *recent) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
}
