package apps

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// LoadSecret returns the server secret: derived from given (MINIPAY_SECRET)
// when set, otherwise generated on first start and kept in the settings
// table, so every replica uses the same one. generated reports whether this
// call made it.
//
// A secret kept in the database protects webhook secrets at rest only as
// well as the database itself; production deployments set MINIPAY_SECRET.
func LoadSecret(ctx context.Context, db *pgxpool.Pool, given string) (secret []byte, generated bool, err error) {
	if given != "" {
		sum := sha256.Sum256([]byte("minipay/secret/v1\x00" + given))
		return sum[:], false, nil
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, false, fmt.Errorf("generate secret: %w", err)
	}
	candidate := base64.StdEncoding.EncodeToString(raw[:])
	var stored string
	err = db.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO settings (name, value) VALUES ('server_secret', $1)
			ON CONFLICT (name) DO NOTHING RETURNING value)
		SELECT value FROM ins UNION ALL SELECT value FROM settings WHERE name = 'server_secret' LIMIT 1`, candidate).Scan(&stored)
	if err != nil {
		return nil, false, fmt.Errorf("load server secret: %w", err)
	}
	b, err := base64.StdEncoding.DecodeString(stored)
	if err != nil || len(b) != 32 {
		return nil, false, fmt.Errorf("load server secret: stored value is not 32 bytes of base64")
	}
	return b, stored == candidate, nil
}
