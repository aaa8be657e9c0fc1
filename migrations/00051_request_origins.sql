-- +goose Up
-- Objects whose ids derive from an Idempotency-Key remember the
-- fingerprint of the request that made them (idempotency.Fingerprint), so
-- a request that reuses the key with other parameters is a conflict even
-- after the key's record is purged (7 days) or was never stored (the
-- first attempt failed after its commit). NULL: made without a key, or
-- before this migration.
ALTER TABLE developers ADD COLUMN request_hash bytea;
ALTER TABLE apps ADD COLUMN request_hash bytea;
ALTER TABLE api_keys ADD COLUMN request_hash bytea;
ALTER TABLE webhook_endpoints ADD COLUMN request_hash bytea;
-- Which request made the endpoint's current (and previous) signing secret:
-- the id derived from the Idempotency-Key of the creation or rotation, and
-- the request's fingerprint. A retried rotation finds its own secret
-- there and answers with it instead of rotating again.
ALTER TABLE webhook_endpoints ADD COLUMN secret_origin text;
ALTER TABLE webhook_endpoints ADD COLUMN secret_request_hash bytea;
ALTER TABLE webhook_endpoints ADD COLUMN old_secret_origin text;

-- +goose Down
ALTER TABLE webhook_endpoints DROP COLUMN old_secret_origin;
ALTER TABLE webhook_endpoints DROP COLUMN secret_request_hash;
ALTER TABLE webhook_endpoints DROP COLUMN secret_origin;
ALTER TABLE webhook_endpoints DROP COLUMN request_hash;
ALTER TABLE api_keys DROP COLUMN request_hash;
ALTER TABLE apps DROP COLUMN request_hash;
ALTER TABLE developers DROP COLUMN request_hash;
