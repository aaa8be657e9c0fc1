// Package settlement pays developers: the balance transactions behind
// every developer's balance, periodic settlement runs that move matured
// money to payouts, and the reports finance exports.
package settlement

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/ledger"
)

// Service is settlement over one database. It is safe for concurrent use.
type Service struct {
	db     *pgxpool.Pool
	ledger *ledger.Ledger
}

// New returns a Service.
func New(db *pgxpool.Pool, l *ledger.Ledger) *Service {
	return &Service{db: db, ledger: l}
}
