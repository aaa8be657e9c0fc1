package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters holds one token bucket per API key. It is per process: with n
// replicas behind a balancer a key gets about n times the rate, which is
// what a per-key limit on a horizontally scaled service usually means.
type limiters struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// limitersMax bounds the map; when full it starts over (buckets refill
// anyway, so forgetting them only forgives a little).
const limitersMax = 100000

func (l *limiters) get(key string, perSecond float64) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) >= limitersMax {
		l.m = make(map[string]*rate.Limiter)
	}
	lim := l.m[key]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(perSecond), int(math.Max(1, 2*perSecond)))
		l.m[key] = lim
	}
	return lim
}

// rateLimit answers 429 with Retry-After to a key that exceeds its rate.
func (s *Server) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.RateLimit <= 0 {
			next.ServeHTTP(w, r)
			return
		}
		res := s.limiters.get(principal(r).KeyID, s.RateLimit).Reserve()
		if delay := res.Delay(); delay > 0 {
			res.Cancel()
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(float64(delay)/float64(time.Second)))))
			s.writeError(w, r, errRateLimited)
			return
		}
		next.ServeHTTP(w, r)
	})
}
