-- +goose Up
-- What "minipay dev" made on its first start (developer, app, keys,
-- webhook endpoint), so every later start uses the same ones and an
-- endpoint a developer registered yesterday still receives. Owned by
-- package demo; empty in every database but a dev one. The keys are a
-- local sandbox's, which dev prints at every start anyway.
CREATE TABLE demo_identity (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    admin_key      text NOT NULL,
    host_key       text NOT NULL,
    developer_id   text NOT NULL,
    app_id         text NOT NULL,
    secret_key     text NOT NULL,
    endpoint_id    text NOT NULL,
    webhook_secret text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE demo_identity;
