package apps

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ListDevelopers pages through developers, newest first, after the one
// with id startingAfter.
func (s *Service) ListDevelopers(ctx context.Context, limit int, startingAfter string) ([]Developer, bool, error) {
	rows, err := s.db.Query(ctx, `SELECT id, name, created_at FROM developers
		WHERE $1 = '' OR (created_at, id) < (SELECT created_at, id FROM developers WHERE id = $1)
		ORDER BY created_at DESC, id DESC LIMIT $2`, startingAfter, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list developers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Developer, error) {
		var d Developer
		return d, r.Scan(&d.ID, &d.Name, &d.Created)
	})
	if err != nil {
		return nil, false, fmt.Errorf("list developers: %w", err)
	}
	return page(out, limit)
}

// ListApps pages through a developer's apps, newest first, after the one
// with id startingAfter.
func (s *Service) ListApps(ctx context.Context, developerID string, limit int, startingAfter string) ([]App, bool, error) {
	rows, err := s.db.Query(ctx, `SELECT id, developer_id, name, options, currencies, created_at FROM apps
		WHERE developer_id = $1
		  AND ($2 = '' OR (created_at, id) < (SELECT created_at, id FROM apps WHERE id = $2 AND developer_id = $1))
		ORDER BY created_at DESC, id DESC LIMIT $3`, developerID, startingAfter, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list apps of %s: %w", developerID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (App, error) {
		var a App
		return a, r.Scan(&a.ID, &a.DeveloperID, &a.Name, &a.Options, &a.Currencies, &a.Created)
	})
	if err != nil {
		return nil, false, fmt.Errorf("list apps of %s: %w", developerID, err)
	}
	return page(out, limit)
}

// page trims a list fetched with limit+1 rows and says whether there is more.
func page[T any](rows []T, limit int) ([]T, bool, error) {
	if len(rows) > limit {
		return rows[:limit], true, nil
	}
	return rows, false, nil
}
