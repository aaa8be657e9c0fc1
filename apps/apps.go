// Package apps holds the tenants of minipay: developers, their mini-apps,
// the API keys that authenticate every request, and the per-app
// pseudonymous ids under which apps see users.
package apps

import (
	"github.com/jackc/pgx/v5/pgxpool"
)

// Service is the apps store. It is safe for concurrent use.
type Service struct {
	db   *pgxpool.Pool
	keys keyCache
}

// New returns a Service over db.
func New(db *pgxpool.Pool) *Service {
	return &Service{db: db}
}
