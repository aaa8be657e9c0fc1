// Package apps holds the tenants of minipay: developers, their mini-apps,
// the API keys that authenticate every request, and the per-app
// pseudonymous ids under which apps see users.
package apps

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/idempotency"
)

// Service is the apps store. It is safe for concurrent use.
type Service struct {
	db     *pgxpool.Pool
	secret []byte // derives pseudonymous user ids
	keys   keyCache
	apps   sync.Map // app id → cachedApp
	napps  atomic.Int64
}

// cachedApp is an app as this replica last read it.
type cachedApp struct {
	app    App
	loaded time.Time
}

// appCacheTTL is how long a replica serves an app from memory. Apps change
// rarely (the platform enables an option or a currency), and a change
// reaches every other replica within this time, as a rolled key does.
const appCacheTTL = keyCacheTTL

// appCacheMax bounds the app cache; past it the cache starts over.
const appCacheMax = 100_000

// New returns a Service over db. secret is the server secret (see
// LoadSecret); it must be the same on every replica and never change, or
// apps would see their users under new ids.
func New(db *pgxpool.Pool, secret []byte) *Service {
	return &Service{db: db, secret: secret}
}

// Errors of this package.
var (
	ErrDeveloperNotFound = minipay.NewError(minipay.KindNotFound, "developer_not_found", "no such developer")
	ErrAppNotFound       = minipay.NewError(minipay.KindNotFound, "app_not_found", "no such app")
	ErrInvalid           = minipay.NewError(minipay.KindInvalid, "parameter_invalid", "invalid parameter")
	ErrUserIDInvalid     = minipay.NewError(minipay.KindInvalid, "user_id_invalid", "user ids are 1–64 letters, digits, '_', '-' or '.'")
)

// Developer is a company or person who publishes mini-apps.
type Developer struct {
	ID      string
	Name    string
	Created time.Time
}

// App is a mini-app: what it may sell and in which currencies.
type App struct {
	ID          string
	DeveloperID string
	Name        string
	Options     []string // monetization options the platform enabled for it
	Currencies  []string
	Created     time.Time
}

func validName(field, name string) error {
	if strings.TrimSpace(name) == "" || utf8.RuneCountInString(name) > 200 || !utf8.ValidString(name) {
		return minipay.Field(field, fmt.Errorf("%w: %s must be 1–200 characters", ErrInvalid, field))
	}
	return nil
}

// DeveloperSpec describes a developer to create.
type DeveloperSpec struct {
	// ID, if not empty, is the new developer's id, derived from an
	// idempotency key: creating it again with the same RequestHash returns
	// it, with another is idempotency.ErrConflict.
	ID          string
	RequestHash []byte // idempotency.Fingerprint of the request, kept with the developer
	Name        string
}

// CreateDeveloper creates a developer.
func (s *Service) CreateDeveloper(ctx context.Context, spec DeveloperSpec) (Developer, error) {
	if err := validName("name", spec.Name); err != nil {
		return Developer{}, err
	}
	if spec.ID == "" {
		spec.ID = id.New("dev")
	}
	d := Developer{ID: spec.ID}
	var stored []byte
	err := s.db.QueryRow(ctx, `
		INSERT INTO developers (id, name, request_hash) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET name = developers.name
		RETURNING name, created_at, request_hash`, d.ID, spec.Name, spec.RequestHash).Scan(&d.Name, &d.Created, &stored)
	if err != nil {
		return Developer{}, fmt.Errorf("create developer: %w", err)
	}
	if err := idempotency.SameRequest(d.ID, stored, spec.RequestHash); err != nil {
		return Developer{}, err
	}
	return d, nil
}

// GetDeveloper returns a developer.
func (s *Service) GetDeveloper(ctx context.Context, devID string) (Developer, error) {
	d := Developer{ID: devID}
	err := s.db.QueryRow(ctx, `SELECT name, created_at FROM developers WHERE id = $1`, devID).Scan(&d.Name, &d.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return Developer{}, fmt.Errorf("%w: %s", ErrDeveloperNotFound, devID)
	}
	if err != nil {
		return Developer{}, fmt.Errorf("get developer %s: %w", devID, err)
	}
	return d, nil
}

// AppSpec describes an app to create. The caller checks Options against
// the monetization catalog and Currencies against the supported ones.
type AppSpec struct {
	ID          string // optional, as for DeveloperSpec
	RequestHash []byte // as for DeveloperSpec
	DeveloperID string
	Name        string
	Options     []string
	Currencies  []string
}

// CreateApp creates an app and its first secret key, which is returned
// here and never again. Creating an existing id again is
// idempotency.ErrSecretUnavailable (the same request: the key was shown
// once) or idempotency.ErrConflict (another request under the same key).
func (s *Service) CreateApp(ctx context.Context, spec AppSpec) (App, string, error) {
	if err := validName("name", spec.Name); err != nil {
		return App{}, "", err
	}
	if len(spec.Options) == 0 || len(spec.Currencies) == 0 {
		return App{}, "", minipay.Field("options", fmt.Errorf("%w: an app needs at least one option and one currency", ErrInvalid))
	}
	if spec.ID == "" {
		spec.ID = id.New("app")
	}
	var (
		app App
		key string
	)
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM developers WHERE id = $1)`, spec.DeveloperID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return minipay.Field("developer", fmt.Errorf("%w: %s", ErrDeveloperNotFound, spec.DeveloperID))
		}
		tag, err := tx.Exec(ctx, `INSERT INTO apps (id, developer_id, name, options, currencies, request_hash)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
			spec.ID, spec.DeveloperID, spec.Name, spec.Options, spec.Currencies, spec.RequestHash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return madeBefore(ctx, tx, "apps", spec.ID, spec.RequestHash)
		}
		if key, err = insertSecretKey(ctx, tx, spec.ID, "", nil); err != nil {
			return err
		}
		app, err = getApp(ctx, tx, spec.ID)
		return err
	})
	if err != nil {
		return App{}, "", fmt.Errorf("create app: %w", err)
	}
	return app, key, nil
}

// insertSecretKey gives an app a new secret key with id keyID (fresh when
// empty) and returns it.
func insertSecretKey(ctx context.Context, tx pgx.Tx, appID, keyID string, requestHash []byte) (string, error) {
	if keyID == "" {
		keyID = id.New("key")
	}
	key := newKey(KindSecret)
	_, err := tx.Exec(ctx, `INSERT INTO api_keys (id, kind, app_id, hash, hint, source, request_hash)
		VALUES ($1, 'secret', $2, $3, $4, 'api', $5)`, keyID, appID, hashKey(key), hint(key), requestHash)
	return key, err
}

// madeBefore explains why an object whose id derives from an idempotency
// key already exists: another request under the same key, or this one
// again, whose answer carried a key that is shown only once.
func madeBefore(ctx context.Context, tx pgx.Tx, table, objectID string, requestHash []byte) error {
	var stored []byte
	if err := tx.QueryRow(ctx, `SELECT request_hash FROM `+table+` WHERE id = $1`, objectID).Scan(&stored); err != nil {
		return err
	}
	if err := idempotency.SameRequest(objectID, stored, requestHash); err != nil {
		return err
	}
	return fmt.Errorf("%w: it made %s; the secret key was in that answer: roll a new one", idempotency.ErrSecretUnavailable, objectID)
}

// GetApp returns an app. Apps change rarely (UpdateApp), so every replica
// keeps them in memory for appCacheTTL; checkout reads one per session it
// creates.
func (s *Service) GetApp(ctx context.Context, appID string) (App, error) {
	if c, ok := s.apps.Load(appID); ok {
		if c := c.(cachedApp); time.Since(c.loaded) < appCacheTTL {
			return c.app, nil
		}
	}
	a, err := getApp(ctx, s.db, appID)
	if err != nil {
		return App{}, err
	}
	s.cacheApp(a)
	return a, nil
}

// cacheApp stores a, counting only apps new to the cache: a refresh after
// appCacheTTL replaces its entry and must not bring the bound nearer.
func (s *Service) cacheApp(a App) {
	c := cachedApp{app: a, loaded: time.Now()}
	if _, refreshed := s.apps.Swap(a.ID, c); refreshed {
		return
	}
	if s.napps.Add(1) > appCacheMax {
		s.apps.Clear()
		s.apps.Store(a.ID, c)
		s.napps.Store(1)
	}
}

// AppUpdate is what the platform changes of an app; nil fields stay as
// they are. Options and Currencies, when set, are the whole new lists.
// The caller checks them against the catalog, as for AppSpec.
type AppUpdate struct {
	Name       *string
	Options    []string
	Currencies []string
}

// UpdateApp changes an app's name, enabled options or currencies. The
// change governs what the app may sell from now on: sessions, plans and
// agreements made under an option or currency it no longer has stay valid
// (their refunds, captures and renewals go on; the user agreed to them),
// and new ones need what it has now. This replica sees the change at once,
// the others within appCacheTTL.
func (s *Service) UpdateApp(ctx context.Context, appID string, u AppUpdate) (App, error) {
	if u.Name != nil {
		if err := validName("name", *u.Name); err != nil {
			return App{}, err
		}
	}
	if u.Options != nil && len(u.Options) == 0 {
		return App{}, minipay.Field("options", fmt.Errorf("%w: an app needs at least one option", ErrInvalid))
	}
	if u.Currencies != nil && len(u.Currencies) == 0 {
		return App{}, minipay.Field("currencies", fmt.Errorf("%w: an app needs at least one currency", ErrInvalid))
	}
	a := App{ID: appID}
	err := s.db.QueryRow(ctx, `UPDATE apps SET name = coalesce($2, name), options = coalesce($3, options),
			currencies = coalesce($4, currencies)
		WHERE id = $1 RETURNING developer_id, name, options, currencies, created_at`,
		appID, u.Name, u.Options, u.Currencies).Scan(&a.DeveloperID, &a.Name, &a.Options, &a.Currencies, &a.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return App{}, fmt.Errorf("%w: %s", ErrAppNotFound, appID)
	}
	if err != nil {
		return App{}, fmt.Errorf("update app %s: %w", appID, err)
	}
	s.cacheApp(a)
	return a, nil
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func getApp(ctx context.Context, q queryRower, appID string) (App, error) {
	a := App{ID: appID}
	err := q.QueryRow(ctx, `SELECT developer_id, name, options, currencies, created_at FROM apps WHERE id = $1`, appID).
		Scan(&a.DeveloperID, &a.Name, &a.Options, &a.Currencies, &a.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return App{}, fmt.Errorf("%w: %s", ErrAppNotFound, appID)
	}
	if err != nil {
		return App{}, fmt.Errorf("get app %s: %w", appID, err)
	}
	return a, nil
}

// RollParams describe a key roll.
type RollParams struct {
	AppID string
	// KeyID, if not empty, is the new key's id, derived from an idempotency
	// key, and RequestHash the request's fingerprint: rolling again under
	// the same key never makes a second key.
	KeyID       string
	RequestHash []byte
	// ExpireOldNow ends the app's current keys at once, for a key that
	// leaked, instead of after RollGrace.
	ExpireOldNow bool
}

// RollKey gives an app a new secret key, returned here and never again.
// Its current keys keep working for RollGrace, so the developer can deploy
// the new one without downtime, or stop at once with ExpireOldNow; rolling
// again never extends them. This replica refuses the old keys at once,
// others within keyCacheTTL.
func (s *Service) RollKey(ctx context.Context, p RollParams) (key string, oldExpire time.Time, err error) {
	grace := RollGrace
	if p.ExpireOldNow {
		grace = 0
	}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := getApp(ctx, tx, p.AppID); err != nil {
			return err
		}
		if err := rolledBefore(ctx, tx, p); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT now() + $1::interval`, grace.String()).Scan(&oldExpire); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE api_keys SET expires_at = $2
			WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2)`, p.AppID, oldExpire); err != nil {
			return err
		}
		key, err = insertSecretKey(ctx, tx, p.AppID, p.KeyID, p.RequestHash)
		return err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("roll key of %s: %w", p.AppID, err)
	}
	s.keys.forgetApp(p.AppID)
	return key, oldExpire, nil
}

// rolledBefore fails when the roll's idempotency key already made a key:
// for another request, a conflict; for this one, the key was shown once.
func rolledBefore(ctx context.Context, tx pgx.Tx, p RollParams) error {
	if p.KeyID == "" {
		return nil
	}
	var app *string
	var stored []byte
	err := tx.QueryRow(ctx, `SELECT app_id, request_hash FROM api_keys WHERE id = $1`, p.KeyID).Scan(&app, &stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if app == nil || *app != p.AppID {
		return fmt.Errorf("%w: it rolled the key of another app", idempotency.ErrConflict)
	}
	return madeBefore(ctx, tx, "api_keys", p.KeyID, p.RequestHash)
}

// ValidUserID reports whether s can be a host user id.
func ValidUserID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

var ouEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// Pseudonym returns the id under which app sees the host's user: "ou_"
// and 26 characters of an HMAC of the app and user under the server
// secret. It is stable for one (app, user), differs between apps, and
// cannot be turned back into the user id without the secret.
func (s *Service) Pseudonym(appID, userID string) string {
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte("minipay/ou/v1\x00" + appID + "\x00" + userID))
	return "ou_" + strings.ToLower(ouEncoding.EncodeToString(mac.Sum(nil)[:16]))
}
