-- +goose Up
-- Settlement runs, what each run found per developer and currency, and the
-- payouts it made. Owned by package settlement.

-- One run per cutoff, whoever starts it: the unique constraint is what makes
-- "exactly one run per cutoff" hold across replicas. step records how far a
-- run got, so a run interrupted at any point resumes where it stopped.
CREATE TABLE settlement_runs (
    id           text COLLATE "C" PRIMARY KEY,   -- sr_…
    cutoff       timestamptz NOT NULL UNIQUE,
    status       text NOT NULL CHECK (status IN ('running', 'completed', 'mismatch')),
    step         text NOT NULL CHECK (step IN ('created', 'planned', 'completed')),
    mismatch     jsonb,                          -- what differed, when status is mismatch
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    version      integer NOT NULL DEFAULT 1
);
CREATE INDEX settlement_runs_running ON settlement_runs (cutoff) WHERE status = 'running';

-- Per developer and currency, the money a run took: matured payments and
-- refunds not settled before. payout_id is chosen when the run is planned
-- (NULL: below the minimum or negative, carried forward); the payout row
-- appears with the ledger transfer that pays it.
CREATE TABLE settlement_items (
    run_id        text COLLATE "C" NOT NULL,
    developer_id  text COLLATE "C" NOT NULL,
    currency      text NOT NULL,
    apps          text NOT NULL,      -- the apps whose money it is, ';'-separated
    gross         bigint NOT NULL,    -- payments
    refunds       bigint NOT NULL,    -- refunded, positive
    fees          bigint NOT NULL,    -- fees kept, net of fees returned with refunds
    net           bigint NOT NULL CHECK (net = gross - refunds - fees),
    payment_count integer NOT NULL,
    refund_count  integer NOT NULL,
    payout_id     text COLLATE "C" UNIQUE,
    PRIMARY KEY (run_id, developer_id, currency),
    CHECK (payout_id IS NULL OR net > 0)
);

CREATE TABLE payouts (
    id               text COLLATE "C" PRIMARY KEY,   -- po_…
    run_id           text COLLATE "C" NOT NULL REFERENCES settlement_runs (id),
    developer_id     text COLLATE "C" NOT NULL,
    currency         text NOT NULL,
    amount           bigint NOT NULL CHECK (amount > 0),
    status           text NOT NULL CHECK (status IN ('in_transit', 'paid')),
    transfer_id      text NOT NULL UNIQUE,   -- ledger: pending balance to payouts in transit
    paid_transfer_id text UNIQUE,            -- ledger: payouts in transit to funding
    created_at       timestamptz NOT NULL DEFAULT now(),
    paid_at          timestamptz,
    version          integer NOT NULL DEFAULT 1
);
CREATE INDEX payouts_developer ON payouts (developer_id, id);
CREATE INDEX payouts_run ON payouts (run_id, id);

-- +goose Down
DROP TABLE payouts;
DROP TABLE settlement_items;
DROP TABLE settlement_runs;
