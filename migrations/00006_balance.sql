-- +goose Up
-- Developers' balance transactions: every payment, refund and payout, as
-- settlement sees them. Owned by package settlement; checkout writes
-- payments and refunds through settlement.InsertBalanceTxn in the
-- transaction of the ledger transfer that moves the money.
CREATE TABLE balance_transactions (
    id           text COLLATE "C" PRIMARY KEY,   -- txn_…, time-ordered
    developer_id text COLLATE "C" NOT NULL,
    app_id       text,
    type         text NOT NULL CHECK (type IN ('payment', 'refund', 'payout')),
    currency     text NOT NULL,
    amount       bigint NOT NULL,   -- gross, signed: a refund is negative
    fee          bigint NOT NULL,   -- the platform's fee, signed like amount
    net          bigint NOT NULL CHECK (net = amount - fee),
    source_id    text NOT NULL,     -- cs_…, re_… or po_…
    session_id   text,              -- the checkout session behind a payment or refund
    available_on timestamptz NOT NULL,
    payout_id    text,              -- set once, by the settlement run that pays it out
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX balance_transactions_developer ON balance_transactions (developer_id, id);
CREATE INDEX balance_transactions_unsettled ON balance_transactions (developer_id, currency, available_on)
    WHERE payout_id IS NULL AND type <> 'payout';
CREATE INDEX balance_transactions_payout ON balance_transactions (payout_id) WHERE payout_id IS NOT NULL;

-- +goose Down
DROP TABLE balance_transactions;
