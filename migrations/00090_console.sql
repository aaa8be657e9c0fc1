-- +goose Up
-- The console (package console) signs people in with an API key and keeps
-- them signed in with a session. Sessions are owned by package apps, with
-- the keys they stand for. The browser holds the session's random id in a
-- cookie; the database keeps only its SHA-256, so a copy of this table
-- signs nobody in. A session ends when signed out, after 12 hours without
-- a request, or when its key stops working (rolled, replaced).
CREATE TABLE console_sessions (
    hash         bytea PRIMARY KEY,
    key_id       text NOT NULL REFERENCES api_keys (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_sessions_idle ON console_sessions (last_seen_at);

-- The console lists developers newest first (package apps).
CREATE INDEX developers_created ON developers (created_at DESC, id DESC);

-- A payment's page lists the events of the payment and of its refunds
-- (package webhooks owns events).
CREATE INDEX events_object ON events (object_id, id);

-- +goose Down
DROP INDEX events_object;
DROP INDEX developers_created;
DROP TABLE console_sessions;
