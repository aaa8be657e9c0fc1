-- +goose Up
-- The host lists the subscriptions its user signed, with every app, so
-- that the user can see and cancel their automatic renewals in one place.
CREATE INDEX subscriptions_user ON subscriptions (user_id, id) WHERE user_id IS NOT NULL;

-- +goose Down
DROP INDEX subscriptions_user;
