package apps

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
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

func hint(key string) string {
	if len(key) > 12 {
		return key[:12] + "…"
	}
	return key
}

// keysLock serializes the start-up key bootstrap across replicas.
const keysLock int64 = 0x6d696e696b657973 // "minikeys"

// EnsureOperatorKey makes sure an admin or host key exists. A key given (from
// the environment) is stored, by hash, exactly as given; other keys of its
// kind are retired after RollGrace. With no key given, a key is generated if
// none is valid, and returned so the caller can show it once; otherwise the
// result is "".
func (s *Service) EnsureOperatorKey(ctx context.Context, kind KeyKind, given string) (generated string, err error) {
	if kind != KindAdmin && kind != KindHost {
		return "", fmt.Errorf("ensure operator key: kind %q", kind)
	}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, keysLock); err != nil {
			return err
		}
		if given != "" {
			return storeGivenKey(ctx, tx, kind, given)
		}
		var valid bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys WHERE kind = $1
			AND (expires_at IS NULL OR expires_at > now()))`, kind).Scan(&valid); err != nil {
			return err
		}
		if valid {
			return nil
		}
		generated = newKey(kind)
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (id, kind, hash, hint, source) VALUES ($1, $2, $3, $4, 'generated')`,
			id.New("key"), kind, hashKey(generated), hint(generated))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("ensure %s key: %w", kind, err)
	}
	return generated, nil
}

func storeGivenKey(ctx context.Context, tx pgx.Tx, kind KeyKind, key string) error {
	h := hashKey(key)
	tag, err := tx.Exec(ctx, `UPDATE api_keys SET expires_at = NULL WHERE hash = $1 AND kind = $2`, h, kind)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO api_keys (id, kind, hash, hint, source) VALUES ($1, $2, $3, $4, 'env')`,
			id.New("key"), kind, h, hint(key)); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `UPDATE api_keys SET expires_at = now() + $3::interval
		WHERE kind = $1 AND hash <> $2 AND expires_at IS NULL`, kind, h, RollGrace.String())
	return err
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
