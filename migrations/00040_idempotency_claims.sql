-- +goose Up
-- Each claim of an idempotency key carries a random token, so the process
-- that made a claim can remove exactly that claim when it never learned
-- whether the claim committed (the connection broke during a failover),
-- instead of leaving every retry of the request to wait out the lease.
ALTER TABLE idempotency_keys ADD COLUMN claim text;

-- +goose Down
ALTER TABLE idempotency_keys DROP COLUMN claim;
