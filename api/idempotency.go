package api

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/idempotency"
)

type idemKey struct{}

// recorder captures a response so it can be stored for replay.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// idempotent implements Idempotency-Key on POST: the first request with a
// key runs and its response is stored; a retry with the same key and body
// replays it (status and body, with Idempotent-Replayed: true); a concurrent
// duplicate waits for the first and replays it; the same key with another
// body is 409 idempotency_conflict naming the differing fields.
//
// Responses that a retry should not see again are not stored: server errors
// (5xx), rate limiting and idempotency errors themselves. Objects created
// under a key get ids derived from it (objectID), so a request whose first
// attempt died half-way creates the same object when retried.
func (s *Server) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if r.Method != http.MethodPost || key == "" {
			next.ServeHTTP(w, r)
			return
		}
		req := idempotency.Request{
			Scope: principal(r).Scope(), Key: key,
			Method: r.Method, Path: r.URL.Path, Body: bodyOf(r),
		}
		claimed, replay, err := s.Idem.Begin(r.Context(), req)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if replay != nil {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(replay.Status)
			_, _ = w.Write(replay.Body)
			return
		}
		if !claimed {
			s.writeError(w, r, idempotency.ErrInProgress)
			return
		}
		rec := &recorder{ResponseWriter: w}
		// Finish the bookkeeping even if the client goes away.
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
			defer cancel()
			var err error
			if storable(rec) {
				err = s.Idem.Complete(ctx, req, idempotency.Response{Status: rec.status, Body: rec.body.Bytes()})
			} else {
				err = s.Idem.Release(ctx, req)
			}
			if err != nil {
				s.Log.Error("idempotency bookkeeping", "request_id", requestID(r.Context()), "err", err)
			}
		}()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), idemKey{}, req)))
	})
}

func storable(rec *recorder) bool {
	if rec.status == 0 || rec.status >= 500 || rec.status == http.StatusTooManyRequests {
		return false
	}
	if rec.status == http.StatusConflict && bytes.Contains(rec.body.Bytes(), []byte(`"idempotency_error"`)) {
		return false
	}
	return true
}

// objectID returns the id for an object a POST creates: derived from the
// Idempotency-Key when there is one, fresh otherwise.
func objectID(r *http.Request, prefix string) string {
	if derived := idempotentID(r, prefix); derived != "" {
		return derived
	}
	return id.New(prefix)
}

// idempotentID is the id derived from the request's Idempotency-Key, or ""
// without one (the domain package then makes a fresh id).
func idempotentID(r *http.Request, prefix string) string {
	if req, ok := r.Context().Value(idemKey{}).(idempotency.Request); ok {
		return idempotency.DeriveID(prefix, req.Scope, req.Key)
	}
	return ""
}
