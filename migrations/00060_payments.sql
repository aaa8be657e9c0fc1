-- +goose Up
-- Payments: the money state of every captured payment, whatever it paid
-- for (a checkout session today, an invoice of a subscription next), and
-- the refunds of payments. Owned by package payments. Refunds and (later)
-- disputes change a payment through its one row here, so one row's check
-- keeps them together within what was captured.
CREATE TABLE payments (
    id                  text COLLATE "C" PRIMARY KEY,   -- the object paid for: cs_… or in_…
    app_id              text COLLATE "C" NOT NULL,
    developer_id        text COLLATE "C" NOT NULL,
    user_id             text NOT NULL,     -- the host's user id: never shown to the app
    customer            text NOT NULL,     -- the app's pseudonymous id for that user (ou_…)
    currency            text NOT NULL,
    amount              bigint NOT NULL CHECK (amount > 0),
    fee                 bigint NOT NULL CHECK (fee >= 0 AND fee <= amount),
    -- the fee rule applied, fixed when the payment was posted
    option              text NOT NULL,
    option_version      text NOT NULL,
    fee_bps             integer NOT NULL,
    fee_fixed           text NOT NULL,
    amount_refunded     bigint NOT NULL DEFAULT 0,
    fee_refunded        bigint NOT NULL DEFAULT 0 CHECK (fee_refunded >= 0 AND fee_refunded <= fee),
    -- held by an open dispute; a dispute lost becomes amount_refunded
    amount_disputed     bigint NOT NULL DEFAULT 0,
    -- The database refuses to give back more than was paid, whatever the code does.
    CHECK (amount_refunded >= 0 AND amount_disputed >= 0 AND amount_refunded + amount_disputed <= amount),
    client_reference_id text,
    metadata            jsonb NOT NULL DEFAULT '{}',
    refund_until        timestamptz,       -- null: the option is not refundable
    available_on        timestamptz NOT NULL,  -- when it matures for settlement
    captured_at         timestamptz NOT NULL,
    -- counts changes after capture; the paid object's version adds it
    version             integer NOT NULL DEFAULT 0
);
CREATE INDEX payments_app_captured ON payments (app_id, captured_at DESC, id DESC);

-- Every captured session becomes a payment, with what it carried.
INSERT INTO payments (id, app_id, developer_id, user_id, customer, currency, amount, fee, option, option_version,
    fee_bps, fee_fixed, amount_refunded, fee_refunded, client_reference_id, metadata, refund_until, available_on,
    captured_at)
SELECT id, app_id, developer_id, user_id, customer, currency, amount_total, fee, option, option_version,
    fee_bps, fee_fixed, amount_refunded, fee_refunded, client_reference_id, metadata, refund_until, available_on,
    coalesce(captured_at, completed_at)
FROM checkout_sessions WHERE payment_status <> 'unpaid';

-- The session keeps its lifecycle; the money after capture lives in payments.
ALTER TABLE checkout_sessions DROP COLUMN payment_status, DROP COLUMN amount_refunded, DROP COLUMN fee_refunded,
    DROP COLUMN refund_until, DROP COLUMN available_on, DROP COLUMN captured_at;

-- Refunds are of payments, not of sessions.
ALTER TABLE refunds DROP CONSTRAINT refunds_session_id_fkey;
ALTER TABLE refunds RENAME COLUMN session_id TO payment_id;
ALTER INDEX refunds_session RENAME TO refunds_payment;
ALTER TABLE refunds ADD CONSTRAINT refunds_payment_id_fkey FOREIGN KEY (payment_id) REFERENCES payments (id);

ALTER TABLE balance_transactions RENAME COLUMN session_id TO payment_id;

-- +goose Down
ALTER TABLE balance_transactions RENAME COLUMN payment_id TO session_id;
ALTER TABLE refunds DROP CONSTRAINT refunds_payment_id_fkey;
ALTER INDEX refunds_payment RENAME TO refunds_session;
ALTER TABLE refunds RENAME COLUMN payment_id TO session_id;
ALTER TABLE checkout_sessions ADD COLUMN payment_status text NOT NULL DEFAULT 'unpaid'
        CHECK (payment_status IN ('unpaid', 'paid', 'partially_refunded', 'refunded')),
    ADD COLUMN amount_refunded bigint NOT NULL DEFAULT 0, ADD COLUMN fee_refunded bigint NOT NULL DEFAULT 0,
    ADD COLUMN refund_until timestamptz, ADD COLUMN available_on timestamptz, ADD COLUMN captured_at timestamptz;
UPDATE checkout_sessions s SET amount_refunded = p.amount_refunded, fee_refunded = p.fee_refunded,
    refund_until = p.refund_until, available_on = p.available_on, captured_at = p.captured_at,
    payment_status = CASE WHEN p.amount_refunded = 0 THEN 'paid'
                          WHEN p.amount_refunded < p.amount THEN 'partially_refunded' ELSE 'refunded' END
FROM payments p WHERE p.id = s.id;
ALTER TABLE refunds ADD CONSTRAINT refunds_session_id_fkey FOREIGN KEY (session_id) REFERENCES checkout_sessions (id);
DROP TABLE payments;
