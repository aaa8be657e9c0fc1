-- +goose Up
-- Stored requests and answers of idempotency keys are encrypted (AES-GCM
-- under a key derived from MINIPAY_SECRET): answers carry new API keys and
-- webhook signing secrets, which are otherwise stored only hashed or
-- encrypted. Rows written before this migration are sealed by the hourly
-- purge pass; sealed tells the two apart.
ALTER TABLE idempotency_keys ADD COLUMN sealed boolean NOT NULL DEFAULT false;
CREATE INDEX idempotency_keys_unsealed ON idempotency_keys (created_at) WHERE NOT sealed;

-- +goose Down
DROP INDEX idempotency_keys_unsealed;
ALTER TABLE idempotency_keys DROP COLUMN sealed;
