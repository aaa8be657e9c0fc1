package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// NormalBalance is the side on which an account's balance grows: assets and
// expenses are debit-normal, liabilities, equity and income credit-normal.
type NormalBalance string

// The two normal balances.
const (
	DebitNormal  NormalBalance = "debit"
	CreditNormal NormalBalance = "credit"
)

// AccountSpec describes an account to create.
type AccountSpec struct {
	// Code is the readable, unique address of the account, such as
	// "wallet:usr_42:CNY". 1–128 characters of letters, digits and "_:.-".
	Code          string
	Currency      string
	NormalBalance NormalBalance
	// NoOverdraft forbids any transfer that would take the available balance
	// (posted balance minus pending outflows) below zero.
	NoOverdraft bool
}

// Account is an account with its balances in minor units of its currency.
// The four totals only ever grow, except the pending ones, which shrink when a
// pending transfer is posted or voided.
type Account struct {
	ID             string
	Code           string
	Currency       string
	NormalBalance  NormalBalance
	NoOverdraft    bool
	DebitsPosted   int64
	CreditsPosted  int64
	DebitsPending  int64
	CreditsPending int64
	Created        time.Time

	seq int64 // internal key of the account in ledger_postings
}

// Balance is the posted balance, positive on the account's normal side.
func (a Account) Balance() int64 {
	if a.NormalBalance == CreditNormal {
		return a.CreditsPosted - a.DebitsPosted
	}
	return a.DebitsPosted - a.CreditsPosted
}

// Available is the posted balance minus pending outflows: what can still be
// spent. A no_overdraft account's Available is never negative.
func (a Account) Available() int64 {
	if a.NormalBalance == CreditNormal {
		return a.Balance() - a.DebitsPending
	}
	return a.Balance() - a.CreditsPending
}

// accountMeta is the immutable part of an account, cached forever.
type accountMeta struct {
	id          string
	seq         int64
	code        string
	currency    string
	normal      NormalBalance
	noOverdraft bool
}

// idEncoding is Crockford base32, as in every other minipay id.
var idEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// AccountID returns the id of the account with the given code. Ids are
// derived from codes (codes are unique and never change), so a caller that
// knows a code knows the id without asking the database.
func AccountID(code string) string {
	sum := sha256.Sum256([]byte(code))
	return "acct_" + idEncoding.EncodeToString(sum[:16])
}

func validCode(s string, maxLen int) bool {
	if len(s) == 0 || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == ':' || c == '.' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func (s AccountSpec) validate() error {
	if !validCode(s.Code, 128) {
		return fieldErr("code", fmt.Errorf("%w: code must be 1–128 letters, digits or \"_:.-\"", ErrAccountInvalid))
	}
	if _, err := Exponent(s.Currency); err != nil {
		return fieldErr("currency", err)
	}
	if s.NormalBalance != DebitNormal && s.NormalBalance != CreditNormal {
		return fieldErr("normal_balance", fmt.Errorf("%w: normal_balance must be \"debit\" or \"credit\"", ErrAccountInvalid))
	}
	return nil
}

const accountColumns = `id, seq, code, currency, normal_balance, no_overdraft,
	debits_posted, credits_posted, debits_pending, credits_pending, created_at`

// accountWithShards reads accounts with their balances: their own columns
// plus the sums of their balance shards.
const accountWithShards = `
	SELECT a.id, a.seq, a.code, a.currency, a.normal_balance, a.no_overdraft,
		a.debits_posted + coalesce(s.dp, 0), a.credits_posted + coalesce(s.cp, 0),
		a.debits_pending + coalesce(s.dpe, 0), a.credits_pending + coalesce(s.cpe, 0), a.created_at
	FROM ledger_accounts a LEFT JOIN LATERAL (
		SELECT sum(debits_posted)::bigint dp, sum(credits_posted)::bigint cp,
		       sum(debits_pending)::bigint dpe, sum(credits_pending)::bigint cpe
		FROM ledger_balance_shards WHERE account_seq = a.seq) s ON true`

func scanAccount(row pgx.Row) (Account, error) {
	var a Account
	err := row.Scan(&a.ID, &a.seq, &a.Code, &a.Currency, &a.NormalBalance, &a.NoOverdraft,
		&a.DebitsPosted, &a.CreditsPosted, &a.DebitsPending, &a.CreditsPending, &a.Created)
	return a, err
}

// CreateAccount creates an account. An account with the same code is
// ErrAccountExists, whatever its attributes.
func (l *Ledger) CreateAccount(ctx context.Context, spec AccountSpec) (Account, error) {
	a, created, err := l.insertAccount(ctx, spec)
	if err != nil {
		return Account{}, err
	}
	if !created {
		return Account{}, fmt.Errorf("%w: %s", ErrAccountExists, spec.Code)
	}
	return a, nil
}

// EnsureAccount returns the account with spec's code, creating it if it does
// not exist. An existing account with other attributes is ErrAccountExists.
// Safe to call concurrently for the same code.
func (l *Ledger) EnsureAccount(ctx context.Context, spec AccountSpec) (Account, error) {
	if m, ok := l.accounts.get(spec.Code); ok {
		if m.matches(spec) {
			return Account{ID: m.id, Code: m.code, Currency: m.currency, NormalBalance: m.normal, NoOverdraft: m.noOverdraft, seq: m.seq}, nil
		}
		return Account{}, fmt.Errorf("%w: %s has other attributes", ErrAccountExists, spec.Code)
	}
	a, created, err := l.insertAccount(ctx, spec)
	if err != nil {
		return Account{}, err
	}
	if !created && !a.meta().matches(spec) {
		return Account{}, fmt.Errorf("%w: %s has other attributes", ErrAccountExists, spec.Code)
	}
	return a, nil
}

func (a Account) meta() accountMeta {
	return accountMeta{id: a.ID, seq: a.seq, code: a.Code, currency: a.Currency, normal: a.NormalBalance, noOverdraft: a.NoOverdraft}
}

func (m accountMeta) matches(s AccountSpec) bool {
	return m.currency == s.Currency && m.normal == s.NormalBalance && m.noOverdraft == s.NoOverdraft
}

// insertAccount inserts the account unless its code exists, and returns the
// account as stored and whether this call created it.
func (l *Ledger) insertAccount(ctx context.Context, spec AccountSpec) (Account, bool, error) {
	if err := spec.validate(); err != nil {
		return Account{}, false, err
	}
	// No conflict target: the id is derived from the code, so a concurrent
	// insert of the same code may collide on either unique index first, and
	// "ON CONFLICT (code)" would turn a collision on the id into an error.
	row := l.db.QueryRow(ctx, `
		INSERT INTO ledger_accounts (id, code, currency, normal_balance, no_overdraft)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING
		RETURNING `+accountColumns,
		AccountID(spec.Code), spec.Code, spec.Currency, spec.NormalBalance, spec.NoOverdraft)
	a, err := scanAccount(row)
	if err == nil {
		l.accounts.put(a.meta())
		return a, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Account{}, false, fmt.Errorf("create account %s: %w", spec.Code, err)
	}
	a, err = l.GetAccount(ctx, spec.Code)
	if err != nil {
		return Account{}, false, err
	}
	return a, false, nil
}

// GetAccount returns the account with the given id or code, with its current
// balances.
func (l *Ledger) GetAccount(ctx context.Context, idOrCode string) (Account, error) {
	out, err := l.readAccounts(ctx, ` WHERE a.id = $1 OR a.code = $1`, idOrCode)
	if err != nil {
		return Account{}, fmt.Errorf("get account %s: %w", idOrCode, err)
	}
	if len(out) == 0 {
		return Account{}, fmt.Errorf("%w: %s", ErrAccountNotFound, idOrCode)
	}
	l.accounts.put(out[0].meta())
	return out[0], nil
}

// readAccounts reads the accounts a WHERE clause (and ORDER BY) picks, with
// their balances. On Citus the balance shards are on the workers, which
// Citus cannot join laterally with the coordinator's accounts: their sums
// are read next, by account. The two reads need no common snapshot: an
// account's balance is either its own columns (no_overdraft) or the sum of
// its shards, never both.
func (l *Ledger) readAccounts(ctx context.Context, where string, args ...any) ([]Account, error) {
	citus, err := l.poster.citus.get(ctx, l.db)
	if err != nil {
		return nil, err
	}
	sql := accountWithShards
	if citus {
		sql = `SELECT ` + accountColumns + ` FROM ledger_accounts a`
	}
	rows, err := l.db.Query(ctx, sql+where, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Account, error) { return scanAccount(r) })
	if err != nil || !citus {
		return out, err
	}
	return out, l.addShardSums(ctx, out)
}

// addShardSums adds to accounts without no_overdraft the sums of their
// balance shards.
func (l *Ledger) addShardSums(ctx context.Context, accts []Account) error {
	at := make(map[int64]int, len(accts))
	seqs := make([]int64, 0, len(accts))
	for i, a := range accts {
		if !a.NoOverdraft {
			at[a.seq] = i
			seqs = append(seqs, a.seq)
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	rows, err := l.db.Query(ctx, `
		SELECT account_seq, sum(debits_posted)::bigint, sum(credits_posted)::bigint,
			sum(debits_pending)::bigint, sum(credits_pending)::bigint
		FROM ledger_balance_shards WHERE account_seq = ANY($1) GROUP BY account_seq`, seqs)
	if err != nil {
		return fmt.Errorf("read balance shards: %w", err)
	}
	var (
		seq              int64
		dp, cp, dpe, cpe int64
	)
	_, err = pgx.ForEachRow(rows, []any{&seq, &dp, &cp, &dpe, &cpe}, func() error {
		a := &accts[at[seq]]
		a.DebitsPosted, a.CreditsPosted = a.DebitsPosted+dp, a.CreditsPosted+cp
		a.DebitsPending, a.CreditsPending = a.DebitsPending+dpe, a.CreditsPending+cpe
		return nil
	})
	if err != nil {
		return fmt.Errorf("read balance shards: %w", err)
	}
	return nil
}

// AccountAt returns the account with its balances as they were at time at,
// computed from its postings. Transfers committing at the moment of the call
// may still appear later with an earlier timestamp, so ask about times at
// least a few seconds in the past for a stable answer.
func (l *Ledger) AccountAt(ctx context.Context, idOrCode string, at time.Time) (Account, error) {
	a, err := l.GetAccount(ctx, idOrCode)
	if err != nil {
		return Account{}, err
	}
	err = l.db.QueryRow(ctx, `
		SELECT coalesce(sum(debits_posted), 0)::bigint, coalesce(sum(credits_posted), 0)::bigint,
		       coalesce(sum(debits_pending), 0)::bigint, coalesce(sum(credits_pending), 0)::bigint
		FROM ledger_postings WHERE account_seq = $1 AND created_at <= $2`, a.seq, at).
		Scan(&a.DebitsPosted, &a.CreditsPosted, &a.DebitsPending, &a.CreditsPending)
	if err != nil {
		return Account{}, fmt.Errorf("account %s at %s: %w", a.ID, at.Format(time.RFC3339), err)
	}
	return a, nil
}

// accountCache maps ids and codes to the immutable part of accounts, so
// validating a transfer usually costs no query. It is bounded by two
// generations of at most accountCacheGen keys each: entries go into the
// current one; when it is full it becomes the old one (the previous old one
// is dropped) and a new current one begins. A hit in the old generation is
// copied into the current one, so accounts in steady use (a platform's fee
// and funding accounts, busy developers') survive while the ones seen once
// (a million subscribers' wallets, each charged once a month) age out. At
// most 2*accountCacheGen keys, two per account: about 17 MB.
type accountCache struct {
	mu  sync.RWMutex
	cur map[string]accountMeta // keyed by id and by code
	old map[string]accountMeta
}

const accountCacheGen = 1 << 16

func (c *accountCache) get(ref string) (accountMeta, bool) {
	c.mu.RLock()
	m, ok := c.cur[ref]
	if ok {
		c.mu.RUnlock()
		return m, true
	}
	m, ok = c.old[ref]
	c.mu.RUnlock()
	if ok {
		c.put(m)
	}
	return m, ok
}

func (c *accountCache) put(m accountMeta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || len(c.cur) >= accountCacheGen {
		c.old, c.cur = c.cur, make(map[string]accountMeta)
	}
	c.cur[m.id] = m
	c.cur[m.code] = m
}

// lookupAccounts resolves ids or codes to accounts, from the cache when it
// can and with one query for the rest. A reference that matches no account is
// reported with the index of its posting.
func (l *Ledger) lookupAccounts(ctx context.Context, refs []string) ([]accountMeta, error) {
	out := make([]accountMeta, len(refs))
	var missing []string
	for i, ref := range refs {
		m, ok := l.accounts.get(ref)
		if !ok {
			missing = append(missing, ref)
			continue
		}
		out[i] = m
	}
	if len(missing) == 0 {
		return out, nil
	}
	loaded, err := l.loadAccounts(ctx, missing)
	if err != nil {
		return nil, err
	}
	for i, ref := range refs {
		if out[i].id != "" {
			continue
		}
		m, ok := loaded[ref]
		if !ok {
			return nil, fieldErr(fmt.Sprintf("postings[%d].account", i), fmt.Errorf("%w: %s", ErrAccountNotFound, ref))
		}
		out[i] = m
	}
	return out, nil
}

// Preload reads into the account cache, with one query, those of the given
// ids or codes that it lacks, so that the transfers a caller is about to
// post find their accounts there instead of each asking the database on its
// own. A batch job that moves money for many accounts seen once (renewals:
// one wallet each) saves a query per transfer. Unknown references are
// ignored here; the transfers report them.
func (l *Ledger) Preload(ctx context.Context, refs []string) error {
	var missing []string
	for _, ref := range refs {
		if _, ok := l.accounts.get(ref); !ok {
			missing = append(missing, ref)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err := l.loadAccounts(ctx, missing)
	return err
}

// loadAccounts reads accounts by id or code, caches them, and returns them
// keyed by both.
func (l *Ledger) loadAccounts(ctx context.Context, refs []string) (map[string]accountMeta, error) {
	rows, err := l.db.Query(ctx, `
		SELECT id, seq, code, currency, normal_balance, no_overdraft FROM ledger_accounts
		WHERE id = ANY($1) OR code = ANY($1)`, refs)
	if err != nil {
		return nil, fmt.Errorf("look up accounts: %w", err)
	}
	loaded := make(map[string]accountMeta, 2*len(refs))
	var m accountMeta
	_, err = pgx.ForEachRow(rows, []any{&m.id, &m.seq, &m.code, &m.currency, &m.normal, &m.noOverdraft}, func() error {
		l.accounts.put(m)
		loaded[m.id], loaded[m.code] = m, m
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up accounts: %w", err)
	}
	return loaded, nil
}

// GetAccounts returns the accounts that exist among the given ids or codes,
// with their balances, ordered by code. Missing ones are left out.
func (l *Ledger) GetAccounts(ctx context.Context, idsOrCodes []string) ([]Account, error) {
	out, err := l.readAccounts(ctx, ` WHERE a.id = ANY($1) OR a.code = ANY($1) ORDER BY a.code`, idsOrCodes)
	if err != nil {
		return nil, fmt.Errorf("get accounts: %w", err)
	}
	return out, nil
}
