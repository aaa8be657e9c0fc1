// Package ratelimit keeps one token bucket per caller (an API key, a
// client address), for the API's per-key limit and the console's sign-in
// limit alike.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Set holds one token bucket per key. It is per process: with n replicas
// behind a balancer a key gets about n times the rate, which is what a
// per-key limit on a horizontally scaled service usually means. The zero
// value is ready to use and safe for concurrent use.
type Set struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// keysMax bounds the map; when full it starts over (buckets refill
// anyway, so forgetting them only forgives a little).
const keysMax = 100000

// Allow takes one token from key's bucket, which refills at perSecond with
// room for burst tokens. When the bucket is empty it takes nothing and
// returns how long until a token is there.
func (s *Set) Allow(key string, perSecond float64, burst int) (ok bool, retryAfter time.Duration) {
	res := s.get(key, perSecond, burst).Reserve()
	if delay := res.Delay(); delay > 0 {
		res.Cancel()
		return false, delay
	}
	return true, 0
}

func (s *Set) get(key string, perSecond float64, burst int) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= keysMax {
		s.m = make(map[string]*rate.Limiter)
	}
	lim := s.m[key]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(perSecond), max(1, burst))
		s.m[key] = lim
	}
	return lim
}

// RetryAfterSeconds is d as the whole seconds of a Retry-After header,
// rounded up.
func RetryAfterSeconds(d time.Duration) int {
	return int(math.Ceil(float64(d) / float64(time.Second)))
}
