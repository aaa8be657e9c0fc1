package api

import (
	"net/http"
	"strconv"

	"github.com/minipay/minipay/internal/ratelimit"
)

// rateLimit answers 429 with Retry-After to a key that exceeds its rate
// (bursts of twice the rate).
func (s *Server) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.RateLimit <= 0 {
			next.ServeHTTP(w, r)
			return
		}
		if ok, delay := s.limiters.Allow(principal(r).KeyID, s.RateLimit, int(2*s.RateLimit)); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(delay)))
			s.writeError(w, r, errRateLimited)
			return
		}
		next.ServeHTTP(w, r)
	})
}
