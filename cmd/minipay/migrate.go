package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/minipay/minipay/internal/pgdb"
)

// migrate applies migrations ("up", the default) or lists them ("status").
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := configFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	action := "up"
	if fs.NArg() > 0 {
		action = fs.Arg(0)
	}
	if action != "up" && action != "status" {
		return fmt.Errorf("migrate: unknown action %q (want up or status)", action)
	}
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
