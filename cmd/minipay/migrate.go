package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/minipay/minipay/internal/pgdb"
)

func migrateCommand(fs *flag.FlagSet, e *env) runFunc {
	cfg := newConfig(e.getenv)
	cfg.databaseFlags(fs, defaultDatabaseURL)
	return func(ctx context.Context, args []string) error {
		action := "up"
		if len(args) > 0 {
			action = args[0]
		}
		if len(args) > 1 || (action != "up" && action != "status") {
			return usageError("migrate: want \"up\" or \"status\", got %q", strings.Join(args, " "))
		}
		return migrate(ctx, cfg, action, e.stdout)
	}
}

// migrate applies migrations ("up") or lists them ("status").
func migrate(ctx context.Context, cfg *config, action string, stdout io.Writer) error {
	if err := pgdb.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	pool, err := pgdb.Open(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	if action == "up" {
		applied, err := pgdb.Migrate(ctx, pool)
		for _, a := range applied {
			fmt.Fprintf(stdout, "applied %s (%s)\n", a.Name, a.Duration.Round(1e6))
		}
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(stdout, "schema is up to date")
		}
		return nil
	}
	states, err := pgdb.Status(ctx, pool)
	if err != nil {
		return err
	}
	for _, s := range states {
		when := "pending"
		if s.Applied {
			when = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(stdout, "%05d  %-40s %s\n", s.Version, s.Name, when)
	}
	return nil
}
