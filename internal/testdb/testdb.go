// Package testdb gives each test its own freshly migrated PostgreSQL
// database, copied from a migrated template so it takes milliseconds, and
// drops it when the test ends.
//
// The server is the one in DATABASE_URL, or the local one at
// 127.0.0.1:5432 as user postgres. There is no fallback and no skipping: a
// test that needs a database fails when there is none.
//
// A test that calls WithCitus gets, in itself and its subtests, databases
// on a Citus cluster of its own instead (a coordinator and two workers,
// package pgcluster), migrated and distributed as `minipay migrate` does:
// the same tests then run on both.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/internal/pgcluster"
	"github.com/minipay/minipay/internal/pgdb"
	"github.com/minipay/minipay/migrations"
)

// serverURL returns the URL of the server's maintenance database.
func serverURL() (*pgx.ConnConfig, error) {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		url = pgdb.DefaultURL
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	cfg.Database = "postgres"
	return cfg, nil
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// templateLock serializes template creation across test processes (go test
// runs packages in parallel).
const templateLock int64 = 0x6d696e6974657374 // "minitest"

// ensureTemplate creates, once per schema version, a migrated database
// marked as a template.
func ensureTemplate(ctx context.Context, cfg *pgx.ConnConfig) (string, error) {
	name := "minipay_tmpl_" + migrations.Fingerprint()
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("connect to test server: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock($1)`, templateLock); err != nil {
		return "", fmt.Errorf("lock template: %w", err)
	}
	defer admin.Exec(ctx, `SELECT pg_advisory_unlock($1)`, templateLock)
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for template: %w", err)
	}
	if exists {
		return name, nil
	}
	// A half-made template (a crash during migration) is of no use. Templates
	// of other schema versions are left alone: a test process with other
	// migrations may be copying one right now.
	if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
		return "", fmt.Errorf("drop half-made template: %w", err)
	}
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+ident); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	if err := migrateDatabase(ctx, cfg, name); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+ident+` WITH is_template true`); err != nil {
		return "", fmt.Errorf("mark template: %w", err)
	}
	return name, nil
}

func migrateDatabase(ctx context.Context, cfg *pgx.ConnConfig, name string) error {
	pool, err := pgdb.Open(ctx, urlFor(cfg, name), 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pgdb.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	return nil
}

func urlFor(cfg *pgx.ConnConfig, db string) string {
	u := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, db)
	if cfg.Password != "" {
		u = fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Password, cfg.Host, cfg.Port, db)
	}
	return u
}

// DB is one test's database.
type DB struct {
	// URL connects to the test's database; give it to a minipay process
	// under test as DATABASE_URL.
	URL  string
	Pool *pgxpool.Pool
	// Citus is the cluster the database lives on, or nil on the single
	// server.
	Citus *pgcluster.Citus
}

// citusTests maps the names of tests that called WithCitus to their
// clusters.
var citusTests sync.Map

// WithCitus starts a Citus cluster (a coordinator and two workers) for t,
// or skips t with NOT RUN when Citus is missing (fails it when
// MINIPAY_REQUIRE_CITUS=1), and makes New and NewWithConns, called by t or
// any of its subtests, create their databases on it. The cluster is
// removed when t ends.
func WithCitus(t *testing.T) *pgcluster.Citus {
	t.Helper()
	c := pgcluster.NewCitus(t, 2)
	citusTests.Store(t.Name(), c)
	t.Cleanup(func() { citusTests.Delete(t.Name()) })
	return c
}

// citusFor returns the cluster of t or of a test t runs under.
func citusFor(t testing.TB) *pgcluster.Citus {
	var found *pgcluster.Citus
	citusTests.Range(func(k, v any) bool {
		name := k.(string)
		if t.Name() == name || strings.HasPrefix(t.Name(), name+"/") {
			found = v.(*pgcluster.Citus)
			return false
		}
		return true
	})
	return found
}

// New creates a fresh migrated database for t, with a pool of up to 16
// connections, and drops it when t ends.
func New(t testing.TB) *DB { return NewWithConns(t, 16) }

// NewWithConns is New with a pool size.
func NewWithConns(t testing.TB, maxConns int32) *DB {
	return create(t, maxConns, true)
}

// NewEmpty creates an empty database (no schema) for t, for tests of
// migrations themselves, and drops it when t ends.
func NewEmpty(t testing.TB) *DB {
	return create(t, 4, false)
}

func create(t testing.TB, maxConns int32, migrated bool) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if c := citusFor(t); c != nil {
		return createOnCitus(ctx, t, c, maxConns, migrated)
	}
	cfg, err := serverURL()
	if err != nil {
		t.Fatal(err)
	}
	from := ""
	if migrated {
		templateOnce.Do(func() { templateName, templateErr = ensureTemplate(ctx, cfg) })
		if templateErr != nil {
			t.Fatalf("testdb: %v", templateErr)
		}
		from = ` TEMPLATE ` + pgx.Identifier{templateName}.Sanitize()
	}
	name := "minipay_test_" + randomSuffix()
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("testdb: connect: %v", err)
	}
	defer admin.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+ident+from); err != nil {
		t.Fatalf("testdb: create %s: %v", name, err)
	}
	db := &DB{URL: urlFor(cfg, name)}
	db.Pool, err = pgdb.Open(ctx, db.URL, maxConns)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		db.Pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		admin, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Errorf("testdb: connect to drop %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+ident+` WITH (FORCE)`); err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
		}
	})
	return db
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// createOnCitus makes a database on every node of c, migrates (and so
// distributes) it unless migrated is false, and drops it when t ends.
// There is no template: a copy would have to be made on every node at
// once, with no session open in the original on any of them, and Citus
// keeps a maintenance process connected to each of its databases.
func createOnCitus(ctx context.Context, t testing.TB, c *pgcluster.Citus, maxConns int32, migrated bool) *DB {
	name := "minipay_test_" + randomSuffix()
	if err := c.CreateDatabase(ctx, name); err != nil {
		t.Fatalf("testdb: %v\n%s", err, c.Logs())
	}
	db := &DB{URL: c.URL(name), Citus: c}
	var err error
	db.Pool, err = pgdb.Open(ctx, db.URL, maxConns)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		db.Pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.DropDatabase(ctx, name); err != nil {
			t.Errorf("testdb: %v", err)
		}
	})
	if migrated {
		if _, err := pgdb.Migrate(ctx, db.Pool); err != nil {
			t.Fatalf("testdb: migrate on Citus: %v\n%s", err, c.Logs())
		}
	}
	return db
}
