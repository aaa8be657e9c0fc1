-- +goose Up
-- Settlement counts disputes (package settlement owns these tables): a
-- dispute's withdrawal from the developer and, when it is ruled, its
-- reinstatement (won) or the platform's fee share returned (lost) are
-- balance transactions of their own types, and each settlement item sums
-- them in a disputes column of its own.

-- Every existing row passed the narrower check, so the new one need not
-- scan the table (and lock it) to be sure; it holds for every row written
-- from now on.
ALTER TABLE balance_transactions DROP CONSTRAINT balance_transactions_type_check,
    ADD CONSTRAINT balance_transactions_type_check
        CHECK (type IN ('payment', 'refund', 'payout', 'dispute', 'dispute_reversal', 'dispute_fee_return')) NOT VALID;

-- disputes: withdrawn by disputes less reinstated, positive when withdrawn.
ALTER TABLE settlement_items ADD COLUMN disputes bigint NOT NULL DEFAULT 0,
    DROP CONSTRAINT settlement_items_check,
    ADD CONSTRAINT settlement_items_net_check CHECK (net = gross - refunds - disputes - fees);

-- +goose Down
ALTER TABLE settlement_items DROP CONSTRAINT settlement_items_net_check, DROP COLUMN disputes,
    ADD CONSTRAINT settlement_items_check CHECK (net = gross - refunds - fees);
ALTER TABLE balance_transactions DROP CONSTRAINT balance_transactions_type_check,
    ADD CONSTRAINT balance_transactions_type_check CHECK (type IN ('payment', 'refund', 'payout')) NOT VALID;
