-- +goose Up
-- The event feed: events oldest first, after a given one, without ever
-- skipping one (GET /v1/events?order=asc, minipay listen). Event ids are
-- time-ordered but taken before commit, so a transaction that commits
-- late can add an event behind one a reader has already passed. tx_id is
-- the inserting transaction's id: the feed lists events in (tx_id, id)
-- order and only those whose transaction ids are below the oldest
-- transaction still running (of those that may write to this database),
-- so nothing can later appear behind its cursor. Owned by package
-- webhooks.
--
-- Rows written before this migration keep tx_id 0 (a constant default
-- costs no table rewrite); every insert after it gets its own.
ALTER TABLE events ADD COLUMN tx_id xid8 NOT NULL DEFAULT '0';
ALTER TABLE events ALTER COLUMN tx_id SET DEFAULT pg_current_xact_id();
CREATE INDEX events_app_feed ON events (app_id, tx_id, id);
CREATE INDEX events_developer_feed ON events (developer_id, tx_id, id) WHERE app_id IS NULL;

-- +goose Down
DROP INDEX events_developer_feed;
DROP INDEX events_app_feed;
ALTER TABLE events DROP COLUMN tx_id;
