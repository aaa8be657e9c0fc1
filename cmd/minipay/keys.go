package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/internal/pgdb"
)

// keysUsage is the one line "minipay help" shows for this command.
const keysUsage = "minipay keys revoke (--key KEY | --key - | --id ID) [--force]   revoke an operator key now"

// keysCommand manages operator keys: "revoke" ends an admin or host key at
// once, for a key that leaked. App keys are rolled through the API
// (POST /v1/apps/{id}/keys/roll with expire_old_now).
func keysCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "revoke" {
		fmt.Fprintln(stderr, "usage: "+keysUsage)
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("keys revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: "+keysUsage)
		fmt.Fprintln(stderr, "\nEnds an admin or host key now. Replicas stop accepting it within 10 s; a replica")
		fmt.Fprintln(stderr, "still configured with it refuses to start. Example:\n  printenv OLD_ADMIN_KEY | minipay keys revoke --key -")
		fs.PrintDefaults()
	}
	dbURL := fs.String("database-url", envOr(getenv, "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/minipay?sslmode=disable"), "PostgreSQL URL (DATABASE_URL)")
	key := fs.String("key", "", `the key's value, or "-" to read it from standard input (keeps it out of the shell history)`)
	keyID := fs.String("id", "", "the key's id (key_…), as request logs name it")
	force := fs.Bool("force", false, "revoke even the last valid key of its kind, locking that kind out until a restart with a new key")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if (*key == "") == (*keyID == "") {
		fs.Usage()
		return errors.New("keys revoke: give exactly one of --key and --id")
	}
	if *key == "-" {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("keys revoke: read the key: %w", err)
		}
		*key = strings.TrimSpace(line)
	}
	pool, err := pgdb.Open(ctx, *dbURL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	// The server secret is not needed to revoke: keys are found by hash.
	r, err := apps.New(pool, nil).RevokeOperatorKey(ctx, *key, *keyID, *force)
	switch {
	case errors.Is(err, apps.ErrLastKey):
		return fmt.Errorf("%w: set a new key in the environment of every replica and restart them first, or add --force", err)
	case err != nil:
		return err
	}
	fmt.Fprintf(stdout, "revoked %s key %s (%s) at %s; replicas refuse it within 10 s\n", r.Kind, r.ID, r.Hint, r.At.UTC().Format("2006-01-02T15:04:05Z"))
	return nil
}
