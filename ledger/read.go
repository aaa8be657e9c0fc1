package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
)

// Entry is one transfer's change to one account: the amounts it added to
// each of the account's four balance columns. Pending columns go down when a
// hold is posted or voided, so they may be negative here.
type Entry struct {
	TransferID     string
	Code           string
	AccountID      string
	Currency       string
	DebitsPosted   int64
	CreditsPosted  int64
	DebitsPending  int64
	CreditsPending int64
	Created        time.Time
}

// EntriesMax caps one page of entries.
const EntriesMax = 100

// Entries lists an account's entries, newest first, at most limit (1–100).
// startingAfter, if set, is the TransferID of the last entry of the previous
// page. hasMore reports whether older entries remain.
func (l *Ledger) Entries(ctx context.Context, account string, limit int, startingAfter string) (entries []Entry, hasMore bool, err error) {
	if limit < 1 || limit > EntriesMax {
		return nil, false, fieldErr("limit", fmt.Errorf("%w: limit must be 1–%d", ErrTransferInvalid, EntriesMax))
	}
	a, err := l.GetAccount(ctx, account)
	if err != nil {
		return nil, false, err
	}
	query := `
		SELECT t.id, t.code, p.debits_posted, p.credits_posted, p.debits_pending, p.credits_pending, p.created_at
		FROM ledger_postings p JOIN ledger_transfers t ON t.seq = p.transfer_seq
		WHERE p.account_seq = $1 AND p.transfer_seq < $2
		ORDER BY p.transfer_seq DESC
		LIMIT $3`
	cursor := int64(math.MaxInt64)
	if startingAfter != "" {
		err := l.db.QueryRow(ctx, `SELECT t.seq FROM ledger_transfers t
			JOIN ledger_postings p ON p.transfer_seq = t.seq AND p.account_seq = $2
			WHERE t.id = $1`, startingAfter, a.seq).Scan(&cursor)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, false, fieldErr("starting_after", fmt.Errorf("%w: no entry of this account for transfer %s", ErrTransferNotFound, startingAfter))
		}
		if err != nil {
			return nil, false, fmt.Errorf("entries cursor: %w", err)
		}
	}
	rows, err := l.db.Query(ctx, query, a.seq, cursor, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("entries of %s: %w", a.ID, err)
	}
	e := Entry{AccountID: a.ID, Currency: a.Currency}
	_, err = pgx.ForEachRow(rows, []any{&e.TransferID, &e.Code, &e.DebitsPosted, &e.CreditsPosted, &e.DebitsPending, &e.CreditsPending, &e.Created}, func() error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("entries of %s: %w", a.ID, err)
	}
	if len(entries) > limit {
		return entries[:limit], true, nil
	}
	return entries, false, nil
}

// CurrencyTotals are the summed balance columns of every account in one
// currency, in minor units. Sums are decimals: many int64 balances can
// together exceed int64.
type CurrencyTotals struct {
	Currency       string
	Debits         decimal.Decimal
	Credits        decimal.Decimal
	DebitsPending  decimal.Decimal
	CreditsPending decimal.Decimal
}

// TrialBalance is the sum of all accounts per currency. Balanced means debits
// equal credits, posted and pending, in every currency (invariant 2).
type TrialBalance struct {
	Balanced   bool
	Currencies []CurrencyTotals
}

// TrialBalance sums the balance columns of all accounts now.
func (l *Ledger) TrialBalance(ctx context.Context) (TrialBalance, error) {
	citus, err := l.poster.citus.get(ctx, l.db)
	if err != nil {
		return TrialBalance{}, fmt.Errorf("trial balance: %w", err)
	}
	if !citus {
		return l.trialBalanceWith(ctx, l.db)
	}
	// The sums span the coordinator and the workers: read them in one
	// snapshot of every node (fence.go).
	tx, err := l.BeginWhole(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return TrialBalance{}, fmt.Errorf("trial balance: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	return l.trialBalanceWith(ctx, tx)
}

// trialBalanceSQL sums every account's own columns and balance shards.
const trialBalanceSQL = `
	SELECT currency, sum(dp)::text, sum(cp)::text, sum(dpe)::text, sum(cpe)::text FROM (
		SELECT currency, debits_posted dp, credits_posted cp, debits_pending dpe, credits_pending cpe FROM ledger_accounts
		UNION ALL
		SELECT a.currency, s.debits_posted, s.credits_posted, s.debits_pending, s.credits_pending
		FROM ledger_balance_shards s JOIN ledger_accounts a ON a.seq = s.account_seq) b
	GROUP BY currency ORDER BY currency`

func (l *Ledger) trialBalanceWith(ctx context.Context, q querier) (TrialBalance, error) {
	return trialBalanceQuery(ctx, q, trialBalanceSQL)
}

// TrialBalanceAt sums all postings made up to time at.
func (l *Ledger) TrialBalanceAt(ctx context.Context, at time.Time) (TrialBalance, error) {
	return l.trialBalance(ctx, `
		SELECT a.currency, sum(p.debits_posted)::text, sum(p.credits_posted)::text,
		       sum(p.debits_pending)::text, sum(p.credits_pending)::text
		FROM ledger_postings p JOIN ledger_accounts a ON a.seq = p.account_seq
		WHERE p.created_at <= $1 GROUP BY a.currency ORDER BY a.currency`, at)
}

func (l *Ledger) trialBalance(ctx context.Context, sql string, args ...any) (TrialBalance, error) {
	return trialBalanceQuery(ctx, l.db, sql, args...)
}

func trialBalanceQuery(ctx context.Context, q querier, sql string, args ...any) (TrialBalance, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return TrialBalance{}, fmt.Errorf("trial balance: %w", err)
	}
	tb := TrialBalance{Balanced: true}
	var cur string
	var d, c, dpe, cpe string
	_, err = pgx.ForEachRow(rows, []any{&cur, &d, &c, &dpe, &cpe}, func() error {
		t := CurrencyTotals{Currency: cur}
		t.Debits, t.Credits = decimal.RequireFromString(d), decimal.RequireFromString(c)
		t.DebitsPending, t.CreditsPending = decimal.RequireFromString(dpe), decimal.RequireFromString(cpe)
		if !t.Debits.Equal(t.Credits) || !t.DebitsPending.Equal(t.CreditsPending) {
			tb.Balanced = false
		}
		tb.Currencies = append(tb.Currencies, t)
		return nil
	})
	if err != nil {
		return TrialBalance{}, fmt.Errorf("trial balance: %w", err)
	}
	return tb, nil
}

// Audit is the result of checking the whole ledger against its invariants.
type Audit struct {
	Transfers int
	Accounts  int
	// Unbalanced lists transfers whose postings do not sum to zero in some
	// currency (invariant 1), at most 100.
	Unbalanced []string
	// Mismatched lists accounts whose balance columns differ from the sums of
	// their postings (invariant 2), at most 100.
	Mismatched []string
	// Overdrawn lists no_overdraft accounts below zero (invariant 3), at most 100.
	Overdrawn []string
	// TrialBalanced reports whether all accounts together balance.
	TrialBalanced bool
}

// OK reports whether the audit found nothing wrong.
func (a Audit) OK() bool {
	return len(a.Unbalanced) == 0 && len(a.Mismatched) == 0 && len(a.Overdrawn) == 0 && a.TrialBalanced
}

// Audit checks invariants 1–3 over every transfer and account, reading one
// consistent snapshot (on Citus, of every node: BeginWhole). It reads every posting, so it is for tests, the
// settlement reconciliation and operators, not for request paths.
func (l *Ledger) Audit(ctx context.Context) (Audit, error) {
	var a Audit
	tx, err := l.BeginWhole(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return a, fmt.Errorf("audit: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	b := &pgx.Batch{}
	b.Queue(`SELECT (SELECT count(*) FROM ledger_transfers), (SELECT count(*) FROM ledger_accounts)`).
		QueryRow(func(row pgx.Row) error { return row.Scan(&a.Transfers, &a.Accounts) })
	b.Queue(`
		SELECT t.id FROM ledger_transfers t WHERE t.seq IN (
			SELECT p.transfer_seq FROM ledger_postings p JOIN ledger_accounts a ON a.seq = p.account_seq
			GROUP BY p.transfer_seq, a.currency
			HAVING sum(p.debits_posted) <> sum(p.credits_posted) OR sum(p.debits_pending) <> sum(p.credits_pending))
		LIMIT 100`).Query(collectStrings(&a.Unbalanced))
	b.Queue(`
		SELECT a.id FROM ledger_accounts a
		LEFT JOIN (
			SELECT account_seq, sum(debits_posted) dp, sum(credits_posted) cp, sum(debits_pending) dpe, sum(credits_pending) cpe
			FROM ledger_postings GROUP BY account_seq) p ON p.account_seq = a.seq
		LEFT JOIN (
			SELECT account_seq, sum(debits_posted) dp, sum(credits_posted) cp, sum(debits_pending) dpe, sum(credits_pending) cpe
			FROM ledger_balance_shards GROUP BY account_seq) s ON s.account_seq = a.seq
		WHERE a.debits_posted + coalesce(s.dp, 0) <> coalesce(p.dp, 0)
		   OR a.credits_posted + coalesce(s.cp, 0) <> coalesce(p.cp, 0)
		   OR a.debits_pending + coalesce(s.dpe, 0) <> coalesce(p.dpe, 0)
		   OR a.credits_pending + coalesce(s.cpe, 0) <> coalesce(p.cpe, 0)
		   OR (NOT a.no_overdraft AND (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending) <> (0, 0, 0, 0))
		   OR (a.no_overdraft AND s.account_seq IS NOT NULL)
		LIMIT 100`).Query(collectStrings(&a.Mismatched))
	b.Queue(`
		SELECT id FROM ledger_accounts WHERE no_overdraft AND CASE normal_balance
			WHEN 'credit' THEN credits_posted - debits_posted - debits_pending
			ELSE debits_posted - credits_posted - credits_pending END < 0
		LIMIT 100`).Query(collectStrings(&a.Overdrawn))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return a, fmt.Errorf("audit: %w", err)
	}
	tb, err := l.trialBalanceWith(ctx, tx)
	if err != nil {
		return a, fmt.Errorf("audit: %w", err)
	}
	a.TrialBalanced = tb.Balanced
	return a, nil
}

func collectStrings(out *[]string) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		var s string
		_, err := pgx.ForEachRow(rows, []any{&s}, func() error {
			*out = append(*out, s)
			return nil
		})
		return err
	}
}

// VoidExpired voids up to limit pending transfers whose timeout has passed,
// and returns how many it voided. Several processes may run it at once: a
// hold is voided once whoever gets there first.
func (l *Ledger) VoidExpired(ctx context.Context, limit int) (int, error) {
	rows, err := l.db.Query(ctx, `
		SELECT t.id FROM ledger_expiring e JOIN ledger_transfers t ON t.seq = e.transfer_seq
		WHERE e.expires_at <= now() ORDER BY e.expires_at LIMIT $1`, limit)
	if err != nil {
		return 0, fmt.Errorf("find expired holds: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("find expired holds: %w", err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		n     int
		first error
	)
	for _, id := range ids {
		wg.Add(1)
		go func() { // concurrently, so the voids share group commits
			defer wg.Done()
			_, err := l.VoidPending(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				n++
			case errors.Is(err, ErrAlreadyPosted), errors.Is(err, ErrAlreadyVoided):
			case first == nil:
				first = err
			}
		}()
	}
	wg.Wait()
	return n, first
}

// RunTimeouts voids expired holds every interval until ctx ends.
func (l *Ledger) RunTimeouts(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			n, err := l.VoidExpired(ctx, 500)
			if err != nil && ctx.Err() == nil {
				log.Error("void expired holds", "err", err)
			}
			if n > 0 {
				log.Info("voided expired holds", "count", n)
			}
			if n < 500 || err != nil {
				break
			}
		}
	}
}
