-- +goose Up
-- Checkout sessions and refunds, whose ids derive from Idempotency-Keys,
-- remember the fingerprint of the request that made them, as 00051 does
-- for developers, apps, keys and endpoints.
ALTER TABLE checkout_sessions ADD COLUMN request_hash bytea;
ALTER TABLE refunds ADD COLUMN request_hash bytea;

-- +goose Down
ALTER TABLE refunds DROP COLUMN request_hash;
ALTER TABLE checkout_sessions DROP COLUMN request_hash;
