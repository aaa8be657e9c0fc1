// Package migrations holds minipay's database schema as ordered SQL files,
// embedded in the binary, and applies them with goose.
//
// Each file belongs to the package that owns its tables (00001_ledger.sql to
// package ledger, and so on). Files are append-only once released: a change
// to the schema is a new file.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"
)

//go:embed *.sql
var files embed.FS

// FS returns the embedded migration files.
func FS() fs.FS { return files }

// lockID is the advisory lock that serializes migrations across processes, so
// replicas starting together apply each migration exactly once.
const lockID = 0x6d696e6970617901 // "minipay\x01"

func provider(db *sql.DB) (*goose.Provider, error) {
	locker := &xactLocker{id: lockID, poll: time.Second, wait: 5 * time.Minute}
	p, err := goose.NewProvider(goose.DialectPostgres, db, files,
		goose.WithLocker(locker),
		goose.WithTableName("schema_migrations"),
	)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Applied is one migration applied by Up.
type Applied struct {
	Version  int64
	Name     string
	Duration time.Duration
}

// Up applies every pending migration, holding a PostgreSQL advisory lock so
// that concurrent callers wait for each other instead of racing.
func Up(ctx context.Context, db *sql.DB) ([]Applied, error) {
	p, err := provider(db)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	var out []Applied
	for _, r := range results {
		out = append(out, Applied{Version: r.Source.Version, Name: r.Source.Path, Duration: r.Duration})
	}
	if err != nil {
		return out, fmt.Errorf("apply migrations: %w", err)
	}
	return out, nil
}

// UpTo applies the pending migrations up to and including version, under
// the same lock as Up. Tests of a migration use it to build the schema as it
// was before, fill it, and then apply the rest.
func UpTo(ctx context.Context, db *sql.DB, version int64) error {
	p, err := provider(db)
	if err != nil {
		return err
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("apply migrations up to %d: %w", version, err)
	}
	return nil
}

// State is one migration and whether it is applied.
type State struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// Status lists every migration with its state.
func Status(ctx context.Context, db *sql.DB) ([]State, error) {
	p, err := provider(db)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]State, 0, len(st))
	for _, s := range st {
		out = append(out, State{
			Version: s.Source.Version, Name: s.Source.Path,
			Applied: s.State == goose.StateApplied, AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}

// Fingerprint is a hash of all migration files. Test helpers name their
// template database after it, so a changed schema gets a fresh template.
func Fingerprint() string {
	h := fnv.New64a()
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		b, _ := fs.ReadFile(files, e.Name())
		h.Write([]byte(e.Name()))
		h.Write(b)
	}
	return fmt.Sprintf("%016x", h.Sum64())
}
