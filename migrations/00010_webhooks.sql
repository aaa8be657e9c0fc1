-- +goose Up
-- Webhook endpoints, the delivery queue and the attempt log. Owned by
-- package webhooks.

-- An endpoint belongs to one app and receives that app's events plus its
-- developer's app-less ones (payouts). Signing secrets are stored only
-- encrypted (AES-GCM under a key derived from MINIPAY_SECRET, bound to the
-- endpoint id). During a rotation the previous secret keeps signing until
-- old_secret_expires_at. Endpoints are never deleted, only marked
-- 'deleted', so no foreign key or cascade can ever make an event insert
-- (and with it a payment) fail or wait.
CREATE TABLE webhook_endpoints (
    id                    text COLLATE "C" PRIMARY KEY,   -- we_…
    app_id                text COLLATE "C" NOT NULL,
    developer_id          text NOT NULL,
    url                   text NOT NULL,
    description           text NOT NULL DEFAULT '',
    enabled_events        text[] NOT NULL,               -- event types, or {*}
    status                text NOT NULL CHECK (status IN ('enabled', 'disabled', 'deleted')),
    disabled_reason       text,                          -- 'failing' when the dispatcher disabled it
    secret_enc            bytea NOT NULL,
    old_secret_enc        bytea,
    old_secret_expires_at timestamptz,
    -- When the current run of failed attempts began; NULL after a success.
    -- An endpoint failing for five days in a row is disabled.
    failing_since         timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    version               integer NOT NULL DEFAULT 1,
    CHECK ((old_secret_enc IS NULL) = (old_secret_expires_at IS NULL))
);
CREATE INDEX webhook_endpoints_app ON webhook_endpoints (app_id, id) WHERE status <> 'deleted';
CREATE INDEX webhook_endpoints_fan_out ON webhook_endpoints (developer_id) WHERE status = 'enabled';

-- One row per (event, endpoint) to deliver, and per redelivery. This is
-- the dispatchers' work queue. A due row (pending, next_attempt_at passed)
-- is claimed with FOR UPDATE SKIP LOCKED by moving next_attempt_at one
-- lease ahead and setting lock_token; the claimer finishes it by token. A
-- claimer that dies leaves the row to come due again when the lease runs
-- out, so the lease needs no column (and no scan) of its own.
CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        text COLLATE "C" NOT NULL,
    endpoint_id     text COLLATE "C" NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'failed', 'canceled')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lock_token      bigint,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
) WITH (fillfactor = 70);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE status <> 'pending';

-- Every attempt, including those not sent because the endpoint's circuit
-- was open. Kept for the retention period (30 days by default).
CREATE TABLE webhook_attempts (
    id               text COLLATE "C" PRIMARY KEY,   -- wa_…, time-ordered
    delivery_id      bigint NOT NULL,
    endpoint_id      text COLLATE "C" NOT NULL,
    event_id         text COLLATE "C" NOT NULL,
    attempt          integer NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'skipped')),
    status_code      integer,
    latency_us       bigint NOT NULL,
    response_excerpt text NOT NULL DEFAULT '',   -- the first KiB of the response body
    error            text NOT NULL DEFAULT '',
    next_attempt_at  timestamptz,                -- when the delivery was rescheduled to, if it was
    created_at       timestamptz NOT NULL        -- when the attempt started
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);

-- Events concerning a developer as a whole, listed for each of its apps.
CREATE INDEX events_developer_appless ON events (developer_id, id) WHERE app_id IS NULL;

-- Fan-out. Every event becomes one delivery per matching enabled endpoint
-- in the transaction that inserts the event, so an event commits if and
-- only if its deliveries do: nothing depends on a process being alive at
-- insert time, and dispatchers never track a position in the event stream
-- (a high-water mark over event ids would skip events whose transactions
-- commit out of order). Endpoints created after the event do not get it.
-- A statement-level trigger sees all rows of a multi-row insert at once.
-- +goose StatementBegin
CREATE FUNCTION webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (event_id, endpoint_id)
    SELECT ev.id, w.id
    FROM new_events ev
    JOIN webhook_endpoints w ON w.developer_id = ev.developer_id
        AND (ev.app_id IS NULL OR w.app_id = ev.app_id)
    WHERE w.status = 'enabled'
      AND ('*' = ANY (w.enabled_events) OR ev.type = ANY (w.enabled_events));
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER events_fan_out AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_fan_out();

-- +goose Down
DROP TRIGGER events_fan_out ON events;
DROP FUNCTION webhook_fan_out();
DROP INDEX events_developer_appless;
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
