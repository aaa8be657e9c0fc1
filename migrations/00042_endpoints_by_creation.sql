-- +goose Up
-- Endpoints are listed newest first; an id derived from an Idempotency-Key
-- is a hash, so the list orders by creation time, with the id for ties.
CREATE INDEX webhook_endpoints_app_created ON webhook_endpoints (app_id, created_at DESC, id DESC) WHERE status <> 'deleted';
DROP INDEX webhook_endpoints_app;

-- +goose Down
CREATE INDEX webhook_endpoints_app ON webhook_endpoints (app_id, id) WHERE status <> 'deleted';
DROP INDEX webhook_endpoints_app_created;
