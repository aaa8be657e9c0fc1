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
)

// Service is the apps store. It is safe for concurrent use.
type Service struct {
	db     *pgxpool.Pool
	secret []byte // derives pseudonymous user ids
	keys   keyCache
	apps   sync.Map // app id → App: apps never change once created
	napps  atomic.Int64
}

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

// Allows reports whether the app may sell through option in currency.
func (a App) Allows(option string) bool { return contains(a.Options, option) }

// AllowsCurrency reports whether the app may charge in currency.
func (a App) AllowsCurrency(currency string) bool { return contains(a.Currencies, currency) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func validName(field, name string) error {
	if strings.TrimSpace(name) == "" || utf8.RuneCountInString(name) > 200 || !utf8.ValidString(name) {
		return minipay.Field(field, fmt.Errorf("%w: %s must be 1–200 characters", ErrInvalid, field))
	}
	return nil
}

// CreateDeveloper creates a developer. id, if not empty, is used as the new
// developer's id (derived from an idempotency key); creating an existing id
// again returns it.
func (s *Service) CreateDeveloper(ctx context.Context, devID, name string) (Developer, error) {
	if err := validName("name", name); err != nil {
		return Developer{}, err
	}
	if devID == "" {
		devID = id.New("dev")
	}
	d := Developer{ID: devID, Name: name}
	err := s.db.QueryRow(ctx, `
		INSERT INTO developers (id, name) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET name = developers.name
		RETURNING name, created_at`, d.ID, d.Name).Scan(&d.Name, &d.Created)
	if err != nil {
		return Developer{}, fmt.Errorf("create developer: %w", err)
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
	ID          string // optional, as for CreateDeveloper
	DeveloperID string
	Name        string
	Options     []string
	Currencies  []string
}

// CreateApp creates an app and its first secret key, which is returned
// here and never again. Creating an existing id again returns the app with
// an empty key.
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
		tag, err := tx.Exec(ctx, `INSERT INTO apps (id, developer_id, name, options, currencies) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (id) DO NOTHING`, spec.ID, spec.DeveloperID, spec.Name, spec.Options, spec.Currencies)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			if key, err = insertSecretKey(ctx, tx, spec.ID); err != nil {
				return err
			}
		}
		app, err = getApp(ctx, tx, spec.ID)
		return err
	})
	if err != nil {
		return App{}, "", fmt.Errorf("create app: %w", err)
	}
	return app, key, nil
}

func insertSecretKey(ctx context.Context, tx pgx.Tx, appID string) (string, error) {
	key := newKey(KindSecret)
	_, err := tx.Exec(ctx, `INSERT INTO api_keys (id, kind, app_id, hash, hint, source) VALUES ($1, 'secret', $2, $3, $4, 'api')`,
		id.New("key"), appID, hashKey(key), hint(key))
	return key, err
}

// GetApp returns an app. Apps do not change once created (only their keys
// do), so every replica may keep them in memory; checkout reads one per
// session it creates.
func (s *Service) GetApp(ctx context.Context, appID string) (App, error) {
	if a, ok := s.apps.Load(appID); ok {
		return a.(App), nil
	}
	a, err := getApp(ctx, s.db, appID)
	if err != nil {
		return App{}, err
	}
	if s.napps.Add(1) > appCacheMax {
		s.apps.Clear()
		s.napps.Store(1)
	}
	s.apps.Store(appID, a)
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
		if err := tx.QueryRow(ctx, `SELECT now() + $1::interval`, grace.String()).Scan(&oldExpire); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE api_keys SET expires_at = $2
			WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2)`, p.AppID, oldExpire); err != nil {
			return err
		}
		key, err = insertSecretKey(ctx, tx, p.AppID)
		return err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("roll key of %s: %w", p.AppID, err)
	}
	s.keys.forgetApp(p.AppID)
	return key, oldExpire, nil
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
