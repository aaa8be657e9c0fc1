-- +goose Up
-- The event outbox. Owned by package webhooks. Domain packages insert
-- events in the same transaction as the change they describe (through
-- webhooks.Insert / webhooks.Emit); rows are never updated.
CREATE TABLE events (
    id             text COLLATE "C" PRIMARY KEY,   -- evt_…, time-ordered
    type           text NOT NULL,
    developer_id   text NOT NULL,
    app_id         text,                          -- NULL: concerns every app of the developer
    object_id      text NOT NULL,
    object_version integer NOT NULL,
    data           jsonb NOT NULL,                -- {"object": {...}}
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_app ON events (app_id, id);
CREATE INDEX events_developer ON events (developer_id, id);

-- +goose Down
DROP TABLE events;
