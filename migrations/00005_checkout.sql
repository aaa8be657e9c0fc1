-- +goose Up
-- Checkout sessions and refunds. Owned by package checkout.

CREATE TABLE checkout_sessions (
    id                  text COLLATE "C" PRIMARY KEY,   -- cs_…
    app_id              text COLLATE "C" NOT NULL,
    developer_id        text NOT NULL,
    status              text NOT NULL CHECK (status IN ('open', 'complete', 'expired', 'canceled')),
    payment_status      text NOT NULL CHECK (payment_status IN ('unpaid', 'paid', 'partially_refunded', 'refunded')),
    capture_method      text NOT NULL CHECK (capture_method IN ('automatic', 'manual')),
    -- manual capture only: the hold placed at confirm and how it ended
    capture_status      text CHECK (capture_status IN ('requires_capture', 'captured', 'voided')),
    currency            text NOT NULL,
    amount_total        bigint NOT NULL CHECK (amount_total > 0),
    -- The database refuses to refund more than was paid, whatever the code does.
    amount_refunded     bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount_total),
    fee                 bigint CHECK (fee >= 0 AND fee <= amount_total),
    fee_refunded        bigint NOT NULL DEFAULT 0 CHECK (fee_refunded >= 0),
    option              text NOT NULL,
    option_version      text,     -- the fee schedule applied, fixed at confirm
    fee_bps             integer,
    fee_fixed           text,
    refund_until        timestamptz,
    available_on        timestamptz, -- when the payment matures for settlement
    client_reference_id text,
    client_secret       text NOT NULL,
    line_items          jsonb,
    metadata            jsonb NOT NULL DEFAULT '{}',
    user_id             text,     -- the host's user id: never shown to the app
    customer            text,     -- the app's pseudonymous id for that user (ou_…)
    expires_at          timestamptz NOT NULL,
    hold_expires_at     timestamptz,
    completed_at        timestamptz,
    captured_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    version             integer NOT NULL DEFAULT 1
);
CREATE INDEX checkout_sessions_app ON checkout_sessions (app_id, id);
CREATE INDEX checkout_sessions_expiring ON checkout_sessions (expires_at) WHERE status = 'open';
CREATE INDEX checkout_sessions_holds ON checkout_sessions (hold_expires_at) WHERE capture_status = 'requires_capture';

CREATE TABLE refunds (
    id           text COLLATE "C" PRIMARY KEY,   -- re_…
    session_id   text COLLATE "C" NOT NULL REFERENCES checkout_sessions (id),
    app_id       text COLLATE "C" NOT NULL,
    developer_id text NOT NULL,
    currency     text NOT NULL,
    amount       bigint NOT NULL CHECK (amount > 0),
    fee_refunded bigint NOT NULL CHECK (fee_refunded >= 0),
    reason       text,
    status       text NOT NULL DEFAULT 'succeeded',
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_session ON refunds (session_id);
CREATE INDEX refunds_app ON refunds (app_id, id);

-- +goose Down
DROP TABLE refunds;
DROP TABLE checkout_sessions;
