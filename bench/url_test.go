package bench

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestWithDatabase: the benchmark's fresh database replaces the one the
// URL names, whatever else in the URL looks like the old name.
func TestWithDatabase(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/fresh?sslmode=disable"},
		{"postgres://minipay:pw@db:5432/minipay", "postgres://minipay:pw@db:5432/fresh"},
		{"postgresql://u@h", "postgresql://u@h/fresh"},
		{"postgres://u@h/?sslmode=disable", "postgres://u@h/fresh?sslmode=disable"},
		{"postgres://postgres@/minipay?host=/var/run/postgresql", "postgres://postgres@/fresh?host=/var/run/postgresql"},
		{"host=127.0.0.1 user=postgres dbname=postgres", "host=127.0.0.1 user=postgres dbname=postgres dbname=fresh"},
	} {
		got := withDatabase(c.in, "fresh")
		if got != c.want {
			t.Errorf("withDatabase(%q) = %q, want %q", c.in, got, c.want)
			continue
		}
		if cfg, err := pgx.ParseConfig(got); err != nil || cfg.Database != "fresh" {
			t.Errorf("%q does not parse to database fresh: %+v %v", got, cfg, err)
		}
	}
}

// TestConnection: a result says whether the benchmark reached PostgreSQL
// over a Unix socket or TCP, however the URL names the socket.
func TestConnection(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://postgres@127.0.0.1:5432/minipay?sslmode=disable": "tcp",
		"postgres://postgres@db.internal/minipay":                    "tcp",
		"postgres://postgres@/minipay?host=/var/run/postgresql":      "unix socket",
		"postgres://postgres@%2Fvar%2Frun%2Fpostgresql/minipay":      "unix socket",
		"host=/tmp user=postgres dbname=minipay":                     "unix socket",
		"postgres://postgres@127.0.0.1:notaport/minipay":             "",
	} {
		if got := connection(in); got != want {
			t.Errorf("connection(%q) = %q, want %q", in, got, want)
		}
	}
}
