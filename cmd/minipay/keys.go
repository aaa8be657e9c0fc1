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

// keysRevokeCommand ends an admin or host key at once, for a key that
// leaked. Every replica refuses it within its authentication cache's
// 10 s, and a replica still configured with it refuses to start. App keys
// are revoked through the API: POST /v1/apps/{id}/keys/roll with
// expire_old_now.
func keysRevokeCommand(fs *flag.FlagSet, e *env) runFunc {
	cfg := newConfig(e.getenv)
	cfg.databaseFlags(fs, defaultDatabaseURL)
	key := fs.String("key", "", `the key's value, or "-" to read it from standard input (keeps it out of the shell history)`)
	keyID := fs.String("id", "", "the key's id (key_…), as request logs name it")
	force := fs.Bool("force", false, "revoke even the last valid key of its kind, locking that kind out until a replica starts with a new key")
	return noArgs("keys revoke", func(ctx context.Context) error {
		if (*key == "") == (*keyID == "") {
			return usageError("keys revoke: give exactly one of --key and --id, e.g. printenv OLD_ADMIN_KEY | minipay keys revoke --key -")
		}
		if *key == "-" {
			line, err := bufio.NewReader(os.Stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("keys revoke: read the key: %w", err)
			}
			*key = strings.TrimSpace(line)
		}
		pool, err := pgdb.Open(ctx, cfg.DatabaseURL, 2)
		if err != nil {
			return err
		}
		defer pool.Close()
		// No server secret is needed: keys are found by their hash.
		r, err := apps.New(pool, nil).RevokeOperatorKey(ctx, *key, *keyID, *force)
		switch {
		case errors.Is(err, apps.ErrLastKey):
			return fmt.Errorf("%w: set a new key in the environment of every replica and restart them first, or add --force", err)
		case err != nil:
			return err
		}
		fmt.Fprintf(e.stdout, "revoked %s key %s (%s) at %s; replicas refuse it within 10 s\n", r.Kind, r.ID, r.Hint, r.At.UTC().Format("2006-01-02T15:04:05Z"))
		return nil
	})
}
