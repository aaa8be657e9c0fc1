-- +goose Up
-- Idempotency keys of the HTTP API. Owned by package internal/idempotency.
-- A row is claimed (status NULL, leased until locked_until) when a request
-- starts and completed with the response; a retry replays it. Rows older than
-- seven days are deleted.
CREATE TABLE idempotency_keys (
    scope         text NOT NULL,          -- whose key: an app id, "admin" or "host"
    key           text NOT NULL,
    method        text NOT NULL,
    path          text NOT NULL,
    request_hash  bytea NOT NULL,
    request_body  bytea NOT NULL,
    status        int,
    response_body bytea,
    locked_until  timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
