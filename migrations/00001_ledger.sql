-- +goose Up
-- The double-entry ledger. Owned by package ledger; nothing else writes here.
--
-- Public ids are text (acct_…, caller-chosen transfer ids) in the "C"
-- collation, compared bytewise. Postings refer to accounts and transfers by
-- internal bigint sequence numbers: their indexes are the hottest write path
-- of the system, and bigint keys make them several times cheaper than text.

CREATE TABLE ledger_accounts (
    id              text COLLATE "C" PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    code            text COLLATE "C" NOT NULL UNIQUE,
    currency        text NOT NULL,
    normal_balance  text NOT NULL CHECK (normal_balance IN ('debit', 'credit')),
    no_overdraft    boolean NOT NULL DEFAULT false,
    debits_posted   bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted  bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_pending  bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    credits_pending bigint NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Invariant 3, enforced by the database as well as by the poster: a
    -- no_overdraft account's posted balance minus its pending outflows never
    -- goes below zero.
    CONSTRAINT ledger_accounts_no_overdraft CHECK (
        NOT no_overdraft OR CASE normal_balance
            WHEN 'credit' THEN credits_posted - debits_posted - debits_pending >= 0
            ELSE debits_posted - credits_posted - credits_pending >= 0
        END)
) WITH (fillfactor = 50); -- balance updates stay HOT (no index covers them)

-- The poster takes transfer sequence numbers in bulk before writing a group.
CREATE SEQUENCE ledger_transfers_seq CACHE 100;

-- Balances of accounts without no_overdraft, split into shard rows: each
-- poster worker adds its group's totals to its own shard, so concurrent
-- groups never wait for each other on a hot account. An account's balance
-- is its own columns (used by no_overdraft accounts, which are locked and
-- checked) plus the sum of its shards. Shard columns may be negative
-- (a hold placed in one shard and released in another); sums may not.
-- Each shard column is bounded by 2^63 / 64 (there are at most 64 shards),
-- so the sum of an account's shards always fits in a bigint.
CREATE TABLE ledger_balance_shards (
    account_seq     bigint NOT NULL,
    shard           smallint NOT NULL CHECK (shard >= 0 AND shard < 64),
    debits_posted   bigint NOT NULL,
    credits_posted  bigint NOT NULL,
    debits_pending  bigint NOT NULL,
    credits_pending bigint NOT NULL,
    PRIMARY KEY (account_seq, shard),
    CONSTRAINT ledger_balance_shards_bounded CHECK (
        abs(debits_posted) <= 144115188075855872 AND abs(credits_posted) <= 144115188075855872 AND
        abs(debits_pending) <= 144115188075855872 AND abs(credits_pending) <= 144115188075855872)
) WITH (fillfactor = 50);

-- A transfer is written once and never changed (invariant 4). A pending
-- transfer is resolved by a second transfer (kind post_pending or
-- void_pending) whose pending_seq names it; the unique index makes a second
-- resolution impossible. Status is derived from that pair.
CREATE TABLE ledger_transfers (
    seq          bigint PRIMARY KEY,
    id           text COLLATE "C" NOT NULL UNIQUE,
    code         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('posted', 'pending', 'post_pending', 'void_pending')),
    pending_seq  bigint,
    reverses_seq bigint,
    expires_at   timestamptz,
    content_hash bytea NOT NULL,
    metadata     jsonb,
    created_at   timestamptz NOT NULL,
    CHECK ((kind IN ('post_pending', 'void_pending')) = (pending_seq IS NOT NULL))
);
-- Partial, so the common transfer (neither) adds no index entries.
CREATE UNIQUE INDEX ledger_transfers_pending ON ledger_transfers (pending_seq) WHERE pending_seq IS NOT NULL;
CREATE UNIQUE INDEX ledger_transfers_reverses ON ledger_transfers (reverses_seq) WHERE reverses_seq IS NOT NULL;

-- Pending transfers with a timeout that are not yet resolved. Unlike the
-- ledger's own rows this is a work queue: the poster inserts a row with the
-- pending transfer and deletes it with the resolution, so the timeout
-- sweeper reads only live holds.
CREATE TABLE ledger_expiring (
    transfer_seq bigint PRIMARY KEY,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX ledger_expiring_at ON ledger_expiring (expires_at);

-- One row per account a transfer touches, holding its change to each of the
-- account's four balance columns. Every balance column equals the sum of its
-- column here (invariant 2). Resolving a pending transfer writes negative
-- pending amounts that release the hold.
CREATE TABLE ledger_postings (
    transfer_seq    bigint NOT NULL,
    idx             smallint NOT NULL, -- the posting's position in its transfer
    account_seq     bigint NOT NULL,
    debits_posted   bigint NOT NULL,
    credits_posted  bigint NOT NULL,
    debits_pending  bigint NOT NULL,
    credits_pending bigint NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (transfer_seq, idx)
);
CREATE INDEX ledger_postings_account ON ledger_postings (account_seq, transfer_seq);

-- Invariant 4 as a database rule: ledger rows cannot be updated or deleted,
-- not even by a bug or an operator's hand-written SQL. Corrections are new
-- transfers.
-- +goose StatementBegin
CREATE FUNCTION ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger: % rows are append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
-- +goose StatementEnd

CREATE TRIGGER ledger_transfers_immutable BEFORE UPDATE OR DELETE ON ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_immutable();
CREATE TRIGGER ledger_postings_immutable BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
CREATE TRIGGER ledger_postings_no_truncate BEFORE TRUNCATE ON ledger_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_immutable();

-- +goose Down
DROP TABLE ledger_postings;
DROP TABLE ledger_expiring;
DROP TABLE ledger_transfers;
DROP TABLE ledger_balance_shards;
DROP SEQUENCE ledger_transfers_seq;
DROP TABLE ledger_accounts;
DROP FUNCTION ledger_immutable();
