-- +goose Up
-- Sessions are listed newest first. Their ids cannot say when they were
-- made: one derived from an Idempotency-Key is a hash, so the list orders
-- by creation time, with the id to break ties.
CREATE INDEX checkout_sessions_app_created ON checkout_sessions (app_id, created_at DESC, id DESC);
DROP INDEX checkout_sessions_app;

-- +goose Down
CREATE INDEX checkout_sessions_app ON checkout_sessions (app_id, id);
DROP INDEX checkout_sessions_app_created;
