-- +goose Up
-- Subscriptions: plans, the agreements users sign to pay them every period,
-- the invoices those periods produce, and the sandbox's test clocks. Owned
-- by package subscriptions. A paid invoice is a payment (package payments,
-- id in_…) like a paid checkout session.

CREATE TABLE subscription_plans (
    id                text COLLATE "C" PRIMARY KEY,   -- plan_…
    app_id            text COLLATE "C" NOT NULL,
    developer_id      text COLLATE "C" NOT NULL,
    name              text NOT NULL,
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          text NOT NULL,
    option            text NOT NULL,
    interval          text NOT NULL CHECK (interval IN ('day', 'week', 'month', 'year')),
    interval_count    integer NOT NULL CHECK (interval_count >= 1),
    trial_period_days integer NOT NULL CHECK (trial_period_days >= 0),
    active            boolean NOT NULL DEFAULT true,
    request_hash      bytea,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_plans_app ON subscription_plans (app_id, id);

-- A test clock is a sandbox's own time: subscriptions made on it live by
-- frozen_time, which only moves when the developer advances it.
CREATE TABLE test_clocks (
    id           text COLLATE "C" PRIMARY KEY,   -- clock_…
    app_id       text COLLATE "C" NOT NULL,
    frozen_time  timestamptz NOT NULL,
    status       text NOT NULL CHECK (status IN ('ready', 'advancing')),
    -- while advancing: until when the advance holds it (a crashed advance
    -- lets go of it then)
    advancing_until timestamptz,
    request_hash bytea,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX test_clocks_app ON test_clocks (app_id, id);

CREATE TABLE subscriptions (
    id                   text COLLATE "C" PRIMARY KEY,   -- sub_…
    app_id               text COLLATE "C" NOT NULL,
    developer_id         text COLLATE "C" NOT NULL,
    plan_id              text COLLATE "C" NOT NULL REFERENCES subscription_plans (id),
    status               text NOT NULL
        CHECK (status IN ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'canceled')),
    client_secret        text NOT NULL,
    user_id              text,     -- the host's user who signed: never shown to the app
    customer             text,     -- the app's pseudonymous id for that user (ou_…)
    client_reference_id  text,
    metadata             jsonb NOT NULL DEFAULT '{}',
    test_clock_id        text COLLATE "C" REFERENCES test_clocks (id),
    -- Periods are computed from the anchor and the period's index, never
    -- from the previous period's end, so they cannot drift. Index -1 is
    -- the trial.
    billing_anchor       timestamptz,
    period_index         integer NOT NULL DEFAULT 0,
    current_period_start timestamptz,
    current_period_end   timestamptz,
    trial_end            timestamptz,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    canceled_at          timestamptz,
    cancellation_reason  text CHECK (cancellation_reason IN ('developer', 'user', 'payment_failed')),
    latest_invoice       text COLLATE "C",
    -- the period end whose renewal_upcoming notice went out
    notice_for           timestamptz,
    -- when the subscription next needs the renewer (expiry, notice,
    -- renewal, cancel at period end); null when nothing is scheduled
    next_action_at       timestamptz,
    expires_at           timestamptz NOT NULL,   -- an unsigned subscription's end
    created_at           timestamptz NOT NULL,   -- by the subscription's clock
    request_hash         bytea,
    version              integer NOT NULL DEFAULT 1
);
CREATE INDEX subscriptions_app ON subscriptions (app_id, id);
CREATE INDEX subscriptions_due ON subscriptions (next_action_at) WHERE test_clock_id IS NULL AND next_action_at IS NOT NULL;
CREATE INDEX subscriptions_clock_due ON subscriptions (test_clock_id, next_action_at) WHERE test_clock_id IS NOT NULL;

-- One invoice per subscription and period, whatever retries, crashes or
-- replicas happen: the id is derived from (subscription, period_start)
-- and the pair is unique besides.
CREATE TABLE subscription_invoices (
    id                   text COLLATE "C" PRIMARY KEY,   -- in_…
    subscription_id      text COLLATE "C" NOT NULL REFERENCES subscriptions (id),
    app_id               text COLLATE "C" NOT NULL,
    developer_id         text COLLATE "C" NOT NULL,
    test_clock_id        text COLLATE "C",
    amount               bigint NOT NULL CHECK (amount > 0),
    currency             text NOT NULL,
    status               text NOT NULL CHECK (status IN ('open', 'paid', 'void')),
    attempt_count        integer NOT NULL DEFAULT 0,
    next_payment_attempt timestamptz,
    period_start         timestamptz NOT NULL,
    period_end           timestamptz NOT NULL,
    fee                  bigint,    -- fixed when paid
    created_at           timestamptz NOT NULL,   -- by the subscription's clock
    paid_at              timestamptz,
    voided_at            timestamptz,
    version              integer NOT NULL DEFAULT 1,
    UNIQUE (subscription_id, period_start),
    CHECK ((status = 'open') = (next_payment_attempt IS NOT NULL))
);
CREATE INDEX subscription_invoices_due ON subscription_invoices (next_payment_attempt)
    WHERE status = 'open' AND test_clock_id IS NULL;
CREATE INDEX subscription_invoices_clock_due ON subscription_invoices (test_clock_id, next_payment_attempt)
    WHERE status = 'open' AND test_clock_id IS NOT NULL;
CREATE INDEX subscription_invoices_app ON subscription_invoices (app_id, subscription_id, id);

-- +goose Down
DROP TABLE subscription_invoices;
DROP TABLE subscriptions;
DROP TABLE test_clocks;
DROP TABLE subscription_plans;
