-- +goose Up
-- Tenancy and API keys. Owned by package apps.

CREATE TABLE developers (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE apps (
    id           text PRIMARY KEY,
    developer_id text NOT NULL REFERENCES developers (id),
    name         text NOT NULL,
    options      text[] NOT NULL,
    currencies   text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX apps_developer ON apps (developer_id, id);

-- Keys are stored only as SHA-256 hashes: they are 190+ bits of randomness,
-- so a fast hash is enough and lets a request find its key by index.
CREATE TABLE api_keys (
    id         text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('admin', 'host', 'secret')),
    app_id     text REFERENCES apps (id),
    hash       bytea NOT NULL UNIQUE,
    hint       text NOT NULL,            -- the first characters, to tell keys apart in logs
    source     text NOT NULL CHECK (source IN ('env', 'generated', 'api')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,              -- set when the key is rolled or replaced
    CHECK ((kind = 'secret') = (app_id IS NOT NULL))
);
CREATE INDEX api_keys_app ON api_keys (app_id) WHERE app_id IS NOT NULL;

-- Server-wide settings that must be shared by every replica, such as the
-- generated secret when MINIPAY_SECRET is not configured.
CREATE TABLE settings (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE settings;
DROP TABLE api_keys;
DROP TABLE apps;
DROP TABLE developers;
