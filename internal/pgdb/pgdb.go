// Package pgdb opens minipay's PostgreSQL database: it creates the database
// when it is missing, applies migrations, and returns a connection pool.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/minipay/minipay/citus"
	"github.com/minipay/minipay/migrations"
)

// DefaultURL is used when DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/minipay?sslmode=disable"

// EnsureDatabase creates the database named in url if it does not exist,
// connecting to the server's "postgres" database to do so. Concurrent
// callers are fine: losing the race to create it is success.
func EnsureDatabase(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("parse database url: %w", err)
	}
	name := cfg.Database
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return fmt.Errorf("connect to %s: %w", name, err)
	}
	cfg.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to create %s: %w", name, err)
	}
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") { // duplicate_database, or lost the race
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops the database of url, if it exists, disconnecting
// whoever is connected to it.
func DropDatabase(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("parse database url: %w", err)
	}
	name := cfg.Database
	cfg.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to drop %s: %w", name, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// Open connects a pool to url. maxConns of 0 keeps pgx's default.
func Open(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	// Statements are prepared and cached per connection (pgx's default,
	// cache_statement) unless the URL says otherwise. Behind a transaction
	// pooler such as PgBouncer that cannot work, since consecutive
	// transactions of one client run on different server connections: the
	// URL then names another default_query_exec_mode (cache_describe), whose
	// statements are parsed anew each time and so planned for their
	// parameters anyway.
	prepared := cfg.ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement
	if prepared {
		// Plan every statement for its actual parameters. PostgreSQL
		// switches a prepared statement to a generic plan chosen while a
		// table was small (a sequential scan) and keeps it as the table
		// grows, until something analyzes it. Lookups such as id = ANY($1)
		// on ledger_transfers turned from 0.2 ms into 10 ms that way.
		// Planning our statements costs far less than one bad plan.
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		if refusedStartupParameter(err) {
			return nil, fmt.Errorf("ping database: %w: %s", err, poolerHint)
		}
		return nil, fmt.Errorf("ping database: %w", err)
	}
	if prepared {
		if err := checkNotPooled(ctx, pool); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
}

// poolerHint says what to do when DATABASE_URL goes through a transaction
// pooler without the setting that pooler needs.
const poolerHint = "is the database URL a connection pooler such as PgBouncer? " +
	"Then add default_query_exec_mode=cache_describe to it (see docs/operations.md)"

// ErrPooled is returned by Open when the URL leads through a connection
// pooler while statements would be prepared per connection.
var ErrPooled = errors.New("pgdb: the server ignored the startup parameter plan_cache_mode")

// checkNotPooled makes sure the startup parameter plan_cache_mode took
// effect. PgBouncer refuses unknown startup parameters, or drops those
// listed in its ignore_startup_parameters: in the second case the
// connection works until two clients' prepared statements meet on one
// server connection, so Open refuses it at once rather than fail under load.
func checkNotPooled(ctx context.Context, pool *pgxpool.Pool) error {
	var mode string
	if err := pool.QueryRow(ctx, `SELECT current_setting('plan_cache_mode')`).Scan(&mode); err != nil {
		return fmt.Errorf("read plan_cache_mode: %w", err)
	}
	if mode != "force_custom_plan" {
		return fmt.Errorf("%w (it is %q): %s", ErrPooled, mode, poolerHint)
	}
	return nil
}

// refusedStartupParameter reports whether the server (in practice a
// pooler) refused a parameter of the startup message.
func refusedStartupParameter(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.Contains(pgErr.Message, "startup parameter")
}

// Migrate applies pending migrations through pool, then, on a database
// with the citus extension, distributes the tables as package citus plans
// (on any other database that is one query).
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]migrations.Applied, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	applied, err := migrations.Up(ctx, db)
	if err != nil {
		return applied, err
	}
	on, err := citus.Enabled(ctx, pool)
	if err != nil || !on {
		return applied, err
	}
	if _, err := citus.Distribute(ctx, pool); err != nil {
		return applied, err
	}
	// The connections open now predate the database settings Distribute
	// makes; new ones start with them.
	pool.Reset()
	return applied, nil
}

// Status reports the state of every migration.
func Status(ctx context.Context, pool *pgxpool.Pool) ([]migrations.State, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return migrations.Status(ctx, db)
}

// Setup creates the database if missing, opens a pool and migrates it: what
// every command that touches data does first.
func Setup(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, []migrations.Applied, error) {
	if err := EnsureDatabase(ctx, url); err != nil {
		return nil, nil, err
	}
	pool, err := Open(ctx, url, maxConns)
	if err != nil {
		return nil, nil, err
	}
	applied, err := Migrate(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, applied, nil
}
