-- +goose Up
-- Disputes: a user's complaint about a payment, opened by the host, answered
-- by the developer with evidence by a deadline, and ruled by the platform.
-- Owned by package disputes. The money a dispute holds is recorded on its
-- payment (payments.amount_disputed, package payments) and in the ledger's
-- disputes account; this table records the complaint and its course.
CREATE TABLE disputes (
    id              text COLLATE "C" PRIMARY KEY,   -- dp_…
    payment_id      text COLLATE "C" NOT NULL REFERENCES payments (id),   -- cs_… or in_…
    app_id          text COLLATE "C" NOT NULL,
    developer_id    text COLLATE "C" NOT NULL,
    user_id         text NOT NULL,     -- the payer, as the host knows them: never shown to the app
    customer        text NOT NULL,     -- the app's pseudonymous id for the payer (ou_…)
    currency        text NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    -- the platform's fee returned when lost (pro rata, as for a refund)
    fee_refunded    bigint NOT NULL DEFAULT 0 CHECK (fee_refunded >= 0 AND fee_refunded <= amount),
    reason          text NOT NULL
        CHECK (reason IN ('not_received', 'not_as_described', 'unauthorized', 'duplicate', 'other')),
    description     text,
    status          text NOT NULL CHECK (status IN ('needs_response', 'under_review', 'won', 'lost')),
    evidence        jsonb,             -- {"text", "files"}, as the developer answered
    outcome         text CHECK (outcome IN ('won', 'lost')),
    closed_by       text CHECK (closed_by IN ('ruling', 'acceptance', 'deadline')),
    -- A closed dispute has its outcome, which is its status, and says what
    -- closed it; an open one has neither.
    CHECK (coalesce(outcome = status, status IN ('needs_response', 'under_review'))
           AND (outcome IS NULL) = (closed_by IS NULL) AND (outcome IS NULL) = (closed_at IS NULL)),
    evidence_due_by timestamptz NOT NULL,
    responded_at    timestamptz,
    closed_at       timestamptz,
    created_at      timestamptz NOT NULL,
    version         integer NOT NULL DEFAULT 1
);
-- One open dispute per payment, whatever the code does.
CREATE UNIQUE INDEX disputes_open_payment ON disputes (payment_id) WHERE status IN ('needs_response', 'under_review');
CREATE INDEX disputes_payment ON disputes (payment_id, created_at);
CREATE INDEX disputes_created ON disputes (created_at DESC, id DESC);
CREATE INDEX disputes_app_created ON disputes (app_id, created_at DESC, id DESC);
-- The deadline job's queue: disputes waiting for the developer's answer.
CREATE INDEX disputes_due ON disputes (evidence_due_by) WHERE status = 'needs_response';

-- +goose Down
DROP TABLE disputes;
