-- +goose Up
-- events_developer (developer_id, id) indexed every event, yet no query
-- reads it: a developer's events are listed per app (events_app,
-- events_app_feed) together with its app-less ones (the partial indexes
-- events_developer_appless and events_developer_feed). Each event paid
-- for one more index entry (a checkout's completion among them). Owned by
-- package webhooks.
DROP INDEX events_developer;

-- +goose Down
CREATE INDEX events_developer ON events (developer_id, id);
