-- +goose Up
-- The poster reads the balances of a group's no_overdraft accounts without
-- locking them and updates them only where they are still what it read
-- (package ledger, readGroupState). This function turns "some account
-- moved meanwhile" into an error that aborts the group's transaction, so
-- that the pipelined COMMIT behind the update is refused and nothing of the
-- group is written; the poster then runs the group again with the accounts
-- locked.
-- +goose StatementBegin
CREATE FUNCTION ledger_balances_unmoved(expected integer, updated bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF updated <> expected THEN
        RAISE EXCEPTION 'ledger: % of % no_overdraft accounts moved since the group read them',
            expected - updated, expected USING ERRCODE = 'LB001';
    END IF;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION ledger_balances_unmoved(integer, bigint);
