package apps

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/internal/id"
)

// KeyKind is what a key may do.
type KeyKind string

// The three kinds of API keys.
const (
	KindAdmin  KeyKind = "admin"  // the platform's operators and finance
	KindHost   KeyKind = "host"   // the super-app's wallet service
	KindSecret KeyKind = "secret" // one mini-app's backend
)

// prefixes of generated keys, by kind.
var prefixes = map[KeyKind]string{KindAdmin: "admin_", KindHost: "host_", KindSecret: "sk_"}

// RollGrace is how long a secret key keeps working after it is rolled, so a
// developer can deploy the new key without downtime. Operator keys replaced
// through the environment get the same grace.
const RollGrace = 24 * time.Hour

// Principal is who made a request.
type Principal struct {
	Kind        KeyKind
	KeyID       string
	AppID       string // secret keys only
	DeveloperID string // secret keys only
	expiresAt   time.Time
}

// Scope names the owner of a principal's idempotency keys and rate limit:
// the app for secret keys (so a rolled key keeps its idempotency keys), the
// kind for operator keys.
func (p Principal) Scope() string {
	if p.Kind == KindSecret {
		return p.AppID
	}
	return string(p.Kind)
}

// newKey returns a random key: the kind's prefix and 40 base62 characters
// (about 238 bits).
func newKey(kind KeyKind) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := make([]byte, 40)
	buf := make([]byte, 64)
	for i := 0; i < len(out); {
		if _, err := rand.Read(buf); err != nil {
			panic("apps: crypto/rand: " + err.Error())
		}
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62: reject to keep the alphabet uniform
				continue
			}
			out[i] = alphabet[b%62]
			i++
			if i == len(out) {
				break
			}
		}
	}
	return prefixes[kind] + string(out)
}

func hashKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// hint tells keys apart in logs and listings without giving much of them
// away: the kind's prefix, if the key has one, and the last four
// characters. Operator keys from the environment may be short or chosen
// by hand, so no more of them is kept.
func hint(key string) string {
	prefix := ""
	for _, p := range prefixes {
		if strings.HasPrefix(key, p) {
			prefix = p
		}
	}
	if len(key)-len(prefix) < 12 {
		return prefix + "…"
	}
	return prefix + "…" + key[len(key)-4:]
}

// keysLock serializes the start-up key bootstrap across replicas.
const keysLock int64 = 0x6d696e696b657973 // "minikeys"

// OperatorKey is what EnsureOperatorKey found or did.
type OperatorKey struct {
	// Generated is a key it made because none was given or valid: shown
	// once, never stored in clear.
	Generated string
	// RetiresAt is set when the given key was replaced by a newer one (or
	// revoked to expire then): it keeps working until then, but this
	// process's configuration is out of date.
	RetiresAt time.Time
}

// ErrKeyRetired: the operator key given in the environment expired or was
// revoked. It is never brought back: configure a new key.
var ErrKeyRetired = errors.New("the key was retired (replaced or revoked); configure a new one")

// EnsureOperatorKey makes sure an admin or host key exists. A key given (from
// the environment) is stored, by hash, exactly as given; other keys of its
// kind are retired after RollGrace. A given key that a newer one has
// replaced keeps its expiry (a replica not yet reconfigured must not undo a
// rotation), and one that has expired or was revoked is ErrKeyRetired. With
// no key given, a key is generated if none is valid.
func (s *Service) EnsureOperatorKey(ctx context.Context, kind KeyKind, given string) (OperatorKey, error) {
	if kind != KindAdmin && kind != KindHost {
		return OperatorKey{}, fmt.Errorf("ensure operator key: kind %q", kind)
	}
	var out OperatorKey
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, keysLock); err != nil {
			return err
		}
		if given != "" {
			var err error
			out.RetiresAt, err = storeGivenKey(ctx, tx, kind, given)
			return err
		}
		var valid bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys WHERE kind = $1
			AND (expires_at IS NULL OR expires_at > now()))`, kind).Scan(&valid); err != nil {
			return err
		}
		if valid {
			return nil
		}
		out.Generated = newKey(kind)
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (id, kind, hash, hint, source) VALUES ($1, $2, $3, $4, 'generated')`,
			id.New("key"), kind, hashKey(out.Generated), hint(out.Generated))
		return err
	})
	if err != nil {
		return OperatorKey{}, fmt.Errorf("ensure %s key: %w", kind, err)
	}
	return out, nil
}

// storeGivenKey stores a key from the environment and retires the other
// keys of its kind, unless it was itself retired: then it changes nothing
// and says until when the key works, or that it no longer does.
func storeGivenKey(ctx context.Context, tx pgx.Tx, kind KeyKind, key string) (time.Time, error) {
	h := hashKey(key)
	var (
		expires *time.Time
		expired bool
	)
	err := tx.QueryRow(ctx, `SELECT expires_at, coalesce(expires_at <= now(), false) FROM api_keys WHERE hash = $1 AND kind = $2`, h, kind).
		Scan(&expires, &expired)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := tx.Exec(ctx, `INSERT INTO api_keys (id, kind, hash, hint, source) VALUES ($1, $2, $3, $4, 'env')`,
			id.New("key"), kind, h, hint(key)); err != nil {
			return time.Time{}, err
		}
	case err != nil:
		return time.Time{}, err
	case expires != nil && expired:
		return time.Time{}, fmt.Errorf("%w: it stopped working at %s", ErrKeyRetired, expires.UTC().Format(time.RFC3339))
	case expires != nil:
		return *expires, nil
	}
	_, err = tx.Exec(ctx, `UPDATE api_keys SET expires_at = now() + $3::interval
		WHERE kind = $1 AND hash <> $2 AND expires_at IS NULL`, kind, h, RollGrace.String())
	return time.Time{}, err
}

// ErrUnauthenticated: the key is missing, unknown or expired.
var ErrUnauthenticated = minipay.NewError(minipay.KindUnauthenticated, "invalid_api_key", "invalid or expired API key")

// Authenticate returns the principal a key belongs to. Results are cached
// for a few seconds, so a rolled key's expiry takes effect within that time.
func (s *Service) Authenticate(ctx context.Context, key string) (Principal, error) {
	if key == "" || len(key) > 200 {
		return Principal{}, ErrUnauthenticated
	}
	h := string(hashKey(key))
	if p, ok := s.keys.get(h); ok {
		return checkExpiry(p)
	}
	var (
		p       Principal
		appID   *string
		devID   *string
		expires *time.Time
	)
	err := s.db.QueryRow(ctx, `
		SELECT k.id, k.kind, k.app_id, a.developer_id, k.expires_at
		FROM api_keys k LEFT JOIN apps a ON a.id = k.app_id WHERE k.hash = $1`, []byte(h)).
		Scan(&p.KeyID, &p.Kind, &appID, &devID, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if appID != nil {
		p.AppID, p.DeveloperID = *appID, *devID
	}
	if expires != nil {
		p.expiresAt = *expires
	}
	s.keys.put(h, p)
	return checkExpiry(p)
}

func checkExpiry(p Principal) (Principal, error) {
	if !p.expiresAt.IsZero() && !time.Now().Before(p.expiresAt) {
		return Principal{}, ErrUnauthenticated
	}
	return p, nil
}

// keyCache remembers recent authentications so most requests cost no query.
type keyCache struct {
	mu      sync.Mutex
	entries map[string]cachedKey
}

type cachedKey struct {
	p     Principal
	until time.Time
}

const (
	keyCacheTTL = 10 * time.Second
	keyCacheMax = 100000
)

func (c *keyCache) get(h string) (Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[h]
	if !ok || time.Now().After(e.until) {
		return Principal{}, false
	}
	return e.p, true
}

// forgetApp drops the cached authentications of one app's keys, after
// they changed, so this replica sees the change at once.
func (c *keyCache) forgetApp(appID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.entries {
		if e.p.AppID == appID {
			delete(c.entries, h)
		}
	}
}

func (c *keyCache) put(h string, p Principal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= keyCacheMax {
		c.entries = make(map[string]cachedKey)
	}
	c.entries[h] = cachedKey{p: p, until: time.Now().Add(keyCacheTTL)}
}

// Revoked is an operator key that RevokeOperatorKey ended.
type Revoked struct {
	ID   string
	Kind KeyKind
	Hint string
	At   time.Time
}

// Errors of revocation.
var (
	// ErrKeyNotFound: no operator key has this value or id.
	ErrKeyNotFound = errors.New("no operator key with this value or id")
	// ErrLastKey: revoking the key would leave its kind without a valid
	// key, locking operators (or the host) out until a restart with a new
	// one. Configure the new key first, or revoke with force.
	ErrLastKey = errors.New("it is the last valid key of its kind")
)

// RevokeOperatorKey ends an admin or host key now, found by its value or by
// its id (as request logs name it). A revoked key is never brought back,
// not even by a process still configured with it (see EnsureOperatorKey).
// Replicas stop accepting it within keyCacheTTL. Unless force is set, the
// last valid key of a kind is not revoked.
func (s *Service) RevokeOperatorKey(ctx context.Context, key, keyID string, force bool) (Revoked, error) {
	var r Revoked
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, keysLock); err != nil {
			return err
		}
		var hash []byte
		if key != "" {
			hash = hashKey(key)
		}
		err := tx.QueryRow(ctx, `SELECT id, kind, hint FROM api_keys
			WHERE kind IN ('admin', 'host') AND (hash = $1 OR id = $2)`, hash, keyID).Scan(&r.ID, &r.Kind, &r.Hint)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrKeyNotFound
		}
		if err != nil {
			return err
		}
		var others int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE kind = $1 AND id <> $2
			AND (expires_at IS NULL OR expires_at > now())`, r.Kind, r.ID).Scan(&others); err != nil {
			return err
		}
		if others == 0 && !force {
			return fmt.Errorf("%w (%s)", ErrLastKey, r.Kind)
		}
		return tx.QueryRow(ctx, `UPDATE api_keys SET expires_at = least(coalesce(expires_at, now()), now())
			WHERE id = $1 RETURNING expires_at`, r.ID).Scan(&r.At)
	})
	if err != nil {
		return Revoked{}, fmt.Errorf("revoke operator key: %w", err)
	}
	return r, nil
}
