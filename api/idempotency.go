package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/idempotency"
)

type idemKey struct{}

// recorderKey finds the request's recorder, so writeError can mark an
// answer that must not be replayed.
type recorderKey struct{}

// recorder captures a response so it can be stored for replay.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
	// transient: the answer is an error that a retry of the same request
	// may not meet (minipay.IsTransient).
	transient bool
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
// (5xx), rate limiting, idempotency errors themselves and transient errors
// (minipay.IsTransient: a collision with concurrent work that the retry
// the error asks for may not meet). Objects created under a key get ids
// derived from it (objectID), so a request whose first attempt died
// half-way creates the same object when retried, and keep the request's
// fingerprint (requestHash), so a reused key with other parameters is a
// conflict even once the record is gone.
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
		if idempotency.ValidKey(key) {
			req.Hash = idempotency.Fingerprint(req)
		}
		claim, replay, err := s.Idem.Begin(r.Context(), req)
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
		if claim == nil {
			s.writeError(w, r, idempotency.ErrInProgress)
			return
		}
		claimedAt := time.Now()
		rec := &recorder{ResponseWriter: w}
		// Finish the bookkeeping even if the client goes away.
		defer s.finishIdempotent(r, claim, rec, claimedAt)
		ctx := context.WithValue(context.WithValue(r.Context(), idemKey{}, req), recorderKey{}, rec)
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// finishIdempotent stores the response of a claimed request, or releases
// the key when the response is not to be replayed. When the database
// cannot be reached (it is failing over), it keeps trying in the
// background until shortly before the claim's lease ends: a claim left
// behind would make every retry of the request wait for the whole lease,
// although nothing holds it any more. Past the lease another request may
// own the key, so it stops there and leaves the rest to the lease; the
// claim's token keeps a late finish from touching that request's claim.
func (s *Server) finishIdempotent(r *http.Request, claim *idempotency.Claim, rec *recorder, claimedAt time.Time) {
	finish := func(ctx context.Context) error {
		if storable(rec) {
			return s.Idem.Complete(ctx, claim, idempotency.Response{Status: rec.status, Body: rec.body.Bytes()})
		}
		return s.Idem.Release(ctx, claim)
	}
	base := context.WithoutCancel(r.Context())
	ctx, cancel := context.WithTimeout(base, 10*time.Second)
	err := finish(ctx)
	cancel()
	if err == nil {
		return
	}
	if errors.Is(err, idempotency.ErrClaimLost) {
		s.Log.Warn("idempotency key taken over by a retry before this request finished; its answer is not stored",
			"request_id", requestID(r.Context()))
		return
	}
	s.Log.Warn("idempotency bookkeeping failed; retrying", "request_id", requestID(r.Context()), "err", err)
	go func() {
		ctx, cancel := context.WithDeadline(base, claimedAt.Add(idempotency.Lease-5*time.Second))
		defer cancel()
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
			select {
			case <-ctx.Done():
				s.Log.Error("idempotency bookkeeping", "request_id", requestID(r.Context()), "err", err)
				return
			case <-time.After(wait):
			}
			if err = finish(ctx); err == nil || errors.Is(err, idempotency.ErrClaimLost) {
				return
			}
		}
	}()
}

func storable(rec *recorder) bool {
	if rec.transient || rec.status == 0 || rec.status >= 500 || rec.status == http.StatusTooManyRequests {
		return false
	}
	if rec.status == http.StatusConflict && bytes.Contains(rec.body.Bytes(), []byte(`"idempotency_error"`)) {
		return false
	}
	return true
}

// markTransient notes that the request is answered with a transient error,
// which its idempotency record must not keep.
func markTransient(r *http.Request, err error) {
	if rec, ok := r.Context().Value(recorderKey{}).(*recorder); ok && minipay.IsTransient(err) {
		rec.transient = true
	}
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

// requestHash is the fingerprint of a request made under an
// Idempotency-Key, which the object it creates keeps beside the id derived
// from the key (idempotency.SameRequest); nil without a key.
func requestHash(r *http.Request) []byte {
	if req, ok := r.Context().Value(idemKey{}).(idempotency.Request); ok {
		return req.Hash
	}
	return nil
}
