package demo

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Identity is what "minipay dev" made on its first start and uses on every
// later one: the operator keys, the demo developer and app with its secret
// key, and the webhook endpoint of the demo backend with its secret.
type Identity struct {
	AdminKey, HostKey         string
	DeveloperID, AppID        string
	SecretKey                 string
	EndpointID, WebhookSecret string
}

// LoadIdentity returns the stored identity; ok is false before the first
// start (or after --reset).
func LoadIdentity(ctx context.Context, db *pgxpool.Pool) (id Identity, ok bool, err error) {
	err = db.QueryRow(ctx, `SELECT admin_key, host_key, developer_id, app_id, secret_key, endpoint_id, webhook_secret
		FROM demo_identity`).Scan(&id.AdminKey, &id.HostKey, &id.DeveloperID, &id.AppID, &id.SecretKey, &id.EndpointID, &id.WebhookSecret)
	if errors.Is(err, pgx.ErrNoRows) {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, fmt.Errorf("load the dev identity: %w", err)
	}
	return id, true, nil
}

// SaveIdentity stores id for the next start.
func SaveIdentity(ctx context.Context, db *pgxpool.Pool, id Identity) error {
	_, err := db.Exec(ctx, `INSERT INTO demo_identity (admin_key, host_key, developer_id, app_id, secret_key, endpoint_id, webhook_secret)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (singleton) DO UPDATE SET admin_key = $1, host_key = $2, developer_id = $3, app_id = $4,
			secret_key = $5, endpoint_id = $6, webhook_secret = $7, updated_at = now()`,
		id.AdminKey, id.HostKey, id.DeveloperID, id.AppID, id.SecretKey, id.EndpointID, id.WebhookSecret)
	if err != nil {
		return fmt.Errorf("save the dev identity: %w", err)
	}
	return nil
}
