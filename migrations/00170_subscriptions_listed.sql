-- +goose Up
-- Plans and subscriptions are listed newest first. Their ids cannot say
-- when they were made: one derived from an Idempotency-Key is a hash, so
-- the lists order by creation time, with the id to break ties (as
-- checkout's sessions do since 00041).
CREATE INDEX subscription_plans_app_created ON subscription_plans (app_id, created_at DESC, id DESC);
DROP INDEX subscription_plans_app;
CREATE INDEX subscriptions_app_created ON subscriptions (app_id, created_at DESC, id DESC);
DROP INDEX subscriptions_app;
-- The host lists the subscriptions its user signed, with every app, so
-- that the user can see and cancel their automatic renewals in one place.
CREATE INDEX subscriptions_user ON subscriptions (user_id, created_at DESC, id DESC) WHERE user_id IS NOT NULL;

-- +goose Down
DROP INDEX subscriptions_user;
CREATE INDEX subscriptions_app ON subscriptions (app_id, id);
DROP INDEX subscriptions_app_created;
CREATE INDEX subscription_plans_app ON subscription_plans (app_id, id);
DROP INDEX subscription_plans_app_created;
