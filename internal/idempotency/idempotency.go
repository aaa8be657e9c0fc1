// Package idempotency stores the Idempotency-Key records of the HTTP API:
// the first request with a key claims it and stores its response; a retry
// with the same key and body replays that response; the same key with a
// different body is a conflict; a concurrent duplicate waits for the first
// to finish. Records are kept for seven days.
//
// Stored request bodies and answers are encrypted with a key derived from
// the server secret: answers carry new API keys and webhook signing
// secrets, which minipay otherwise keeps only as hashes or encrypted, and
// requests carry client secrets and the host's user ids. A retry within the
// retention still gets the answer, secret included; a copy of the database
// without MINIPAY_SECRET does not.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/seal"
)

// Retention is how long keys are kept.
const Retention = 7 * 24 * time.Hour

// Lease is how long a claim holds before another request may take over a
// key whose first request died. Requests must finish well within it.
const Lease = 60 * time.Second

// WaitMax is how long a duplicate waits for the first request to finish.
const WaitMax = 30 * time.Second

// KeyLenMax bounds a key's length.
const KeyLenMax = 255

var (
	// ErrConflict: the key was used with a different request. The message
	// names the differing fields.
	ErrConflict = minipay.NewError(minipay.KindConflict, "idempotency_conflict",
		"this Idempotency-Key was already used with a different request")
	// ErrInProgress: the first request with this key is still running after
	// WaitMax. Retry later with the same key.
	ErrInProgress = minipay.NewError(minipay.KindConflict, "idempotency_in_progress",
		"a request with this Idempotency-Key is still in progress; retry later")
	// ErrInvalidKey: the key is empty, too long or not printable ASCII.
	ErrInvalidKey = minipay.NewError(minipay.KindInvalid, "idempotency_key_invalid",
		"Idempotency-Key must be 1–255 printable ASCII characters")
	// ErrSecretUnavailable: the key already made what the request asks
	// for, and the answer carried a secret (an API key, a signing secret)
	// that minipay does not keep in a form it can show again, and the
	// answer's record is gone. Make a new key or secret with a new
	// Idempotency-Key.
	ErrSecretUnavailable = minipay.NewError(minipay.KindConflict, "idempotency_secret_unavailable",
		"this Idempotency-Key already did what the request asks; its answer carried a secret that is shown only once")
	// ErrClaimLost: Complete or Release of a claim that is no longer held:
	// its lease ran out and a retry took the key over. The retry's answer
	// is the one kept; the late request's is dropped.
	ErrClaimLost = errors.New("idempotency: the claim's lease ran out and a retry took the key over")
)

// Store keeps idempotency records in PostgreSQL.
type Store struct {
	db     *pgxpool.Pool
	sealer *seal.Sealer

	// onCitus: the database is a Citus coordinator (see Purge), learnt by
	// the first Purge.
	citusOnce sync.Once
	onCitus   bool
}

// sealPurpose derives the key that encrypts stored requests and answers.
const sealPurpose = "minipay idempotency: stored requests and answers v1"

// New returns a Store over db. secret is the server secret; it must be the
// same on every replica, or one replica cannot replay another's answers.
func New(db *pgxpool.Pool, secret []byte) *Store {
	return &Store{db: db, sealer: seal.New(secret, sealPurpose)}
}

// aad binds a sealed body to its record and its role, so a body copied to
// another record, or a request swapped for an answer, does not open.
func aad(role, scope, key string) []byte { return []byte(role + "\x00" + scope + "\x00" + key) }

func (s *Store) open(role string, r Request, body []byte, sealed bool) ([]byte, error) {
	if !sealed || body == nil {
		return body, nil // written before answers were sealed
	}
	out, err := s.sealer.Open(body, aad(role, r.Scope, r.Key))
	if err != nil {
		return nil, fmt.Errorf("idempotency key %q: stored %s: %w", r.Key, role, err)
	}
	return out, nil
}

// Request identifies one use of a key.
type Request struct {
	Scope  string // whose key (an app id, "admin", "host")
	Key    string
	Method string
	Path   string
	Body   []byte
	// Hash is Fingerprint of the request; Begin computes it when nil.
	Hash []byte
}

// Fingerprint identifies what a request asks for: method, path and the
// body in canonical form, so formatting and key order do not matter. An
// object created under an Idempotency-Key stores it (see SameRequest).
func Fingerprint(r Request) []byte {
	if r.Hash != nil {
		return r.Hash
	}
	return requestHash(r)
}

// SameRequest is what every object whose id derives from an
// Idempotency-Key checks when that id already exists: stored is the
// Fingerprint kept with the object, hash the current request's. Ids derive
// from keys forever, while records are purged after Retention (and a first
// attempt that failed after its commit stores none), so the object itself
// must tell a retry, which gets the object, from a reused key with other
// parameters, which is ErrConflict. Objects made without a key, or before
// fingerprints were kept, have none and match any request.
func SameRequest(id string, stored, hash []byte) error {
	if stored == nil || hash == nil || bytes.Equal(stored, hash) {
		return nil
	}
	return fmt.Errorf("%w: it made %s with other parameters", ErrConflict, id)
}

// Claim is a key held by one request until it calls Complete or Release.
// Only the request that made a claim can finish it: a request that outlived
// its lease cannot touch the claim of the retry that took the key over.
type Claim struct {
	req   Request
	token string
}

// Response is what a completed request answered.
type Response struct {
	Status int
	Body   []byte
}

// ValidKey reports whether key may be used as an Idempotency-Key.
func ValidKey(key string) bool {
	if len(key) == 0 || len(key) > KeyLenMax {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

// Begin claims the key for r, or returns the response stored for it. With
// a claim the caller must run the request and then call Complete or
// Release. A concurrent request with the same key waits, up to WaitMax, for
// the first to finish and then replays it.
func (s *Store) Begin(ctx context.Context, r Request) (*Claim, *Response, error) {
	if !ValidKey(r.Key) {
		return nil, nil, ErrInvalidKey
	}
	hash := Fingerprint(r)
	deadline := time.Now().Add(WaitMax)
	wait := 10 * time.Millisecond
	for {
		claim, replay, err := s.try(ctx, r, hash)
		if err != nil || claim != nil || replay != nil {
			return claim, replay, err
		}
		if time.Now().After(deadline) {
			return nil, nil, ErrInProgress
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// try makes one attempt: claim a new key, take over an abandoned one, or
// read a completed one. All nil means "still in progress".
func (s *Store) try(ctx context.Context, r Request, hash []byte) (*Claim, *Response, error) {
	claim := id.New("claim")
	tag, err := s.db.Exec(ctx, `
		INSERT INTO idempotency_keys (scope, key, method, path, request_hash, request_body, locked_until, claim, sealed)
		VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval, $8, true)
		ON CONFLICT (scope, key) DO NOTHING`,
		r.Scope, r.Key, r.Method, r.Path, hash, s.sealer.Seal(r.Body, aad("request", r.Scope, r.Key)), Lease.String(), claim)
	if err != nil {
		go s.dropClaim(r, claim)
		return nil, nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return &Claim{req: r, token: claim}, nil, nil
	}
	var (
		method, path string
		storedHash   []byte
		storedBody   []byte
		status       *int
		respBody     []byte
		abandoned    bool
		sealed       bool
	)
	err = s.db.QueryRow(ctx, `
		SELECT method, path, request_hash, request_body, status, response_body, locked_until < now(), sealed
		FROM idempotency_keys WHERE scope = $1 AND key = $2`, r.Scope, r.Key).
		Scan(&method, &path, &storedHash, &storedBody, &status, &respBody, &abandoned, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, nil // released meanwhile: try to claim again
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read idempotency key: %w", err)
	}
	if !bytes.Equal(storedHash, hash) {
		if storedBody, err = s.open("request", r, storedBody, sealed); err != nil {
			return nil, nil, err
		}
		return nil, nil, conflict(method, path, storedBody, r)
	}
	if status != nil {
		if respBody, err = s.open("response", r, respBody, sealed); err != nil {
			return nil, nil, err
		}
		return nil, &Response{Status: *status, Body: respBody}, nil
	}
	if !abandoned {
		return nil, nil, nil
	}
	tag, err = s.db.Exec(ctx, `
		UPDATE idempotency_keys SET locked_until = now() + $3::interval, claim = $4
		WHERE scope = $1 AND key = $2 AND status IS NULL AND locked_until < now()`, r.Scope, r.Key, Lease.String(), claim)
	if err != nil {
		go s.dropClaim(r, claim)
		return nil, nil, fmt.Errorf("take over idempotency key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil, nil, nil
	}
	return &Claim{req: r, token: claim}, nil, nil
}

// dropClaim removes the claim with token claim, if it exists and is still
// unfinished. It is for a claim whose statement failed without saying
// whether it committed (the connection broke, as in a database failover):
// the request fails, so nobody holds the claim, but if it committed every
// retry would wait the whole Lease for it. The database may be away for a
// while, so it keeps trying, in the background, until the lease would have
// freed the key anyway. The token makes it remove only that claim, never
// one a retry made meanwhile.
func (s *Store) dropClaim(r Request, claim string) {
	ctx, cancel := context.WithTimeout(context.Background(), Lease)
	defer cancel()
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		_, err := s.db.Exec(ctx, `DELETE FROM idempotency_keys
			WHERE scope = $1 AND key = $2 AND claim = $3 AND status IS NULL`, r.Scope, r.Key, claim)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Complete stores the response of a claimed request for replay. It is
// ErrClaimLost when the claim was taken over meanwhile: the answer of the
// request now holding the key is the one to keep.
func (s *Store) Complete(ctx context.Context, c *Claim, resp Response) error {
	tag, err := s.db.Exec(ctx, `UPDATE idempotency_keys SET status = $4, response_body = $5
		WHERE scope = $1 AND key = $2 AND claim = $3 AND status IS NULL AND sealed`,
		c.req.Scope, c.req.Key, c.token, resp.Status, s.sealer.Seal(resp.Body, aad("response", c.req.Scope, c.req.Key)))
	if err != nil {
		return fmt.Errorf("complete idempotency key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrClaimLost
	}
	return nil
}

// Release forgets a claimed key whose request failed in a way that should
// not be replayed (a server error), so a retry runs it again. A claim taken
// over meanwhile is left to the request holding it.
func (s *Store) Release(ctx context.Context, c *Claim) error {
	_, err := s.db.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND claim = $3 AND status IS NULL`,
		c.req.Scope, c.req.Key, c.token)
	if err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// Purge deletes keys older than Retention, at most limit of them, and
// returns how many it deleted.
func (s *Store) Purge(ctx context.Context, limit int) (int64, error) {
	s.citusOnce.Do(func() {
		_ = s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')`).Scan(&s.onCitus)
	})
	sql := `DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
		SELECT ctid FROM idempotency_keys WHERE created_at < now() - $1::interval LIMIT $2))`
	if s.onCitus {
		// A row's ctid means nothing across the shards of a distributed
		// table: there the rows are named by their key, which holds the
		// distribution column (the scope).
		sql = `DELETE FROM idempotency_keys WHERE (scope, key) IN (
			SELECT scope, key FROM idempotency_keys WHERE created_at < now() - $1::interval LIMIT $2)`
	}
	tag, err := s.db.Exec(ctx, sql, Retention.String(), limit)
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// SealLegacy encrypts up to limit records stored in clear before answers
// were sealed and returns how many it sealed. Claims still in flight are
// left for a later pass.
func (s *Store) SealLegacy(ctx context.Context, limit int) (int, error) {
	rows, err := s.db.Query(ctx, `SELECT scope, key, request_body, response_body FROM idempotency_keys
		WHERE NOT sealed AND status IS NOT NULL ORDER BY created_at LIMIT $1`, limit)
	if err != nil {
		return 0, fmt.Errorf("seal idempotency records: %w", err)
	}
	type record struct {
		scope, key string
		req, resp  []byte
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (record, error) {
		var rec record
		return rec, r.Scan(&rec.scope, &rec.key, &rec.req, &rec.resp)
	})
	if err != nil {
		return 0, fmt.Errorf("seal idempotency records: %w", err)
	}
	b := &pgx.Batch{}
	for _, rec := range recs {
		b.Queue(`UPDATE idempotency_keys SET request_body = $3, response_body = $4, sealed = true
			WHERE scope = $1 AND key = $2 AND NOT sealed`, rec.scope, rec.key,
			s.sealer.Seal(rec.req, aad("request", rec.scope, rec.key)), s.sealer.Seal(rec.resp, aad("response", rec.scope, rec.key)))
	}
	if err := s.db.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("seal idempotency records: %w", err)
	}
	return len(recs), nil
}

// DeriveID returns an object id determined by an idempotency key, so that a
// request retried after a crash creates the same object instead of a second
// one. The same scope and key always give the same id.
func DeriveID(prefix, scope, key string) string {
	sum := sha256.Sum256([]byte(scope + "\x00" + key))
	return prefix + "_" + idEncoding.EncodeToString(sum[:16])
}

var idEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// requestHash fingerprints a request: method, path and the body in
// canonical form, so formatting and key order do not matter.
func requestHash(r Request) []byte {
	h := sha256.New()
	h.Write([]byte(r.Method + "\n" + r.Path + "\n"))
	h.Write(canonical(r.Body))
	return h.Sum(nil)
}

// canonical re-encodes JSON with sorted keys and no spaces; anything that
// is not exactly one JSON value is used as it is. Text after the value, or
// invalid UTF-8 (which decoding replaces with U+FFFD), would otherwise make
// two different bodies look the same, and a retry with the other body
// would replay the first response instead of being a conflict.
func canonical(body []byte) []byte {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if !utf8.Valid(body) {
		return body
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	if _, err := dec.Token(); err != io.EOF {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// conflict builds the error for a key reused with another request, naming
// what differs.
func conflict(method, path string, storedBody []byte, r Request) error {
	if method != r.Method || path != r.Path {
		return fmt.Errorf("%w: it was first used for %s %s", ErrConflict, method, path)
	}
	fields := differingFields(storedBody, r.Body)
	if len(fields) == 0 {
		return ErrConflict
	}
	return minipay.Field(fields[0], fmt.Errorf("%w; differing fields: %s", ErrConflict, strings.Join(fields, ", ")))
}

// differingFields lists the top-level JSON fields whose values differ
// between two bodies, sorted.
func differingFields(a, b []byte) []string {
	var ma, mb map[string]json.RawMessage
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		return []string{"body"}
	}
	var out []string
	for k, va := range ma {
		if vb, ok := mb[k]; !ok || !bytes.Equal(canonical(va), canonical(vb)) {
			out = append(out, k)
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
