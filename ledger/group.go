package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/minipay/minipay/internal/multirow"
	"github.com/minipay/minipay/internal/pgarray"
)

// balances are an account's four columns, locked for the group.
type balances struct {
	dp, cp, dpe, cpe int64
}

// groupState is what a group needs to know before deciding each transfer:
// the locked balances of the no_overdraft accounts it touches and what is
// already written.
type groupState struct {
	now        time.Time
	balances   map[string]balances
	existing   map[string][]byte // transfer id -> content hash
	resolvedBy map[int64]kind    // pending transfer seq -> kind of its resolution
	reversed   map[int64]bool    // seqs of transfers that have a reversal
	seqs       []int64           // sequence numbers for the group's new transfers
	checked    bool              // existing was read
	// read holds the no_overdraft accounts' balances as read (or taken from
	// the worker's cache), before apply changed balances: the write succeeds
	// only if they are still so.
	read map[string]balances
	// cached counts the accounts of read taken from the cache.
	cached int
	// deferred: the group sent nothing before its writes (see
	// readGroupState); its transaction begins with them, and now is
	// learnt there.
	deferred bool
	// citus: the database is a Citus coordinator.
	citus bool
}

// readMode says what a group's read takes besides the balances.
type readMode struct {
	// checkExisting reads whether the group's ids were used before.
	checkExisting bool
	// lock locks the no_overdraft accounts (FOR UPDATE) instead of only
	// reading them; see readGroupState.
	lock bool
	// citus: the database is a Citus coordinator (see citusPlannerSettingsSQL).
	citus bool
	// cache, if set, holds balances the worker committed; accounts found in
	// it are not read (see balanceCache for why that is safe).
	cache *balanceCache
	// seqs, if set, lets a group that needs nothing else read take its
	// sequence numbers from the poster's pool and skip its read round trip.
	seqs *seqPool
}

// readGroupState begins the transaction, reads the balances of the group's
// no_overdraft accounts and then what is already written, all in one round
// trip.
//
// The balances are read without locking them: locking a row writes it (a
// WAL record and a dirty page for each wallet of every group), which cost
// as much as the balance update itself. Instead the update is guarded: it
// succeeds only if every balance is still what was read here, and otherwise
// fails the transaction, which the poster then runs again with mode.lock,
// locking the accounts (in id order, so concurrent groups cannot deadlock)
// before reading them. Within one process accounts rarely move under a
// group, since the poster routes the transfers of a no_overdraft account to
// one worker; another replica writing the same wallet is what makes a
// group take the locking path.
//
// Accounts whose balances mode.cache holds are not read at all: their
// guard compares with the cached balances instead (see balanceCache).
//
// A group that then has nothing to read (every balance cached, no
// lookups, no hold with a timeout to date) and may take its sequence
// numbers from mode.seqs reads nothing: its transaction begins in the
// round trip that writes it, which halves a small group's round trips.
//
// Whether an id was used before is read only when mode.checkExisting is set.
// Repeated ids are rare, so the poster first writes optimistically: if the
// insert of the transfers violates a unique index, the group is rolled back
// and run again with the check. That saves a lookup per transfer on the
// common path.
func readGroupState(ctx context.Context, conn *pgx.Conn, ops []*op, mode readMode) (*groupState, error) {
	// The lookups of ids, pending and reversed transfers are rare; their
	// maps stay nil (reading a nil map finds nothing) unless they are made.
	st := &groupState{
		checked:  mode.checkExisting,
		citus:    mode.citus,
		balances: make(map[string]balances, len(ops)),
		read:     make(map[string]balances, len(ops)),
	}
	var (
		accounts, ids       []string
		pendings, reversals []int64
	)
	accounts = make([]string, 0, len(ops))
	for _, o := range ops {
		if mode.checkExisting {
			ids = append(ids, o.id)
		}
		if o.pendingSeq != 0 {
			pendings = append(pendings, o.pendingSeq)
		}
		if o.reversesSeq != 0 {
			reversals = append(reversals, o.reversesSeq)
		}
		for _, d := range o.deltas {
			if _, seen := st.balances[d.acct.id]; !d.acct.noOverdraft || seen {
				continue
			}
			if b, ok := mode.cache.get(d.acct.id); ok {
				st.balances[d.acct.id], st.read[d.acct.id] = b, b
				st.cached++
				continue
			}
			st.balances[d.acct.id] = balances{}
			accounts = append(accounts, d.acct.id)
		}
	}
	if mode.seqs != nil && !mode.lock && !mode.checkExisting && len(accounts) == 0 &&
		len(pendings) == 0 && len(reversals) == 0 && !timed(ops) {
		seqs, err := mode.seqs.take(ctx, conn, len(ops))
		if err != nil {
			return nil, err
		}
		st.seqs, st.deferred = seqs, true
		return st, nil
	}
	b := &pgx.Batch{}
	queueBegin(b, mode.citus)
	// Numbers for every op, whether or not it is written: gaps are harmless.
	b.Queue(groupStartSQL, len(ops)).QueryRow(func(row pgx.Row) error { return row.Scan(&st.now, &st.seqs) })
	if len(accounts) > 0 {
		readBalances := readBalancesSQL
		if mode.lock {
			readBalances = lockBalancesSQL
		}
		b.Queue(readBalances, accounts).Query(func(rows pgx.Rows) error {
			var id string
			var bal balances
			_, err := pgx.ForEachRow(rows, []any{&id, &bal.dp, &bal.cp, &bal.dpe, &bal.cpe}, func() error {
				st.balances[id] = bal
				st.read[id] = bal
				return nil
			})
			return err
		})
	}
	// Separate lookups rather than one with OR, so each uses its own index.
	if mode.checkExisting {
		st.existing = make(map[string][]byte, len(ids))
		b.Queue(`SELECT id, content_hash FROM ledger_transfers WHERE id = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
			var id string
			var hash []byte
			_, err := pgx.ForEachRow(rows, []any{&id, &hash}, func() error {
				st.existing[id] = hash
				return nil
			})
			return err
		})
	}
	if len(pendings) > 0 {
		st.resolvedBy = make(map[int64]kind, len(pendings))
		b.Queue(`SELECT pending_seq, kind FROM ledger_transfers WHERE pending_seq = ANY($1)`, pendings).Query(func(rows pgx.Rows) error {
			var seq int64
			var k kind
			_, err := pgx.ForEachRow(rows, []any{&seq, &k}, func() error {
				st.resolvedBy[seq] = k
				return nil
			})
			return err
		})
	}
	if len(reversals) > 0 {
		st.reversed = make(map[int64]bool, len(reversals))
		b.Queue(`SELECT reverses_seq FROM ledger_transfers WHERE reverses_seq = ANY($1)`, reversals).Query(func(rows pgx.Rows) error {
			var seq int64
			_, err := pgx.ForEachRow(rows, []any{&seq}, func() error {
				st.reversed[seq] = true
				return nil
			})
			return err
		})
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("read group state: %w", err)
	}
	return st, nil
}

// queueBegin queues what opens a group's transaction: BEGIN and the
// planner settings for its statements; on Citus, the fence too (fence.go),
// which the group holds until its transaction has ended (endGroup).
func queueBegin(b *pgx.Batch, citus bool) {
	b.Queue("BEGIN")
	if citus {
		b.Queue(fenceSharedSQL, fenceKey)
		b.Queue(citusPlannerSettingsSQL)
	} else {
		b.Queue(plannerSettingsSQL)
	}
}

// endGroup ends a group's transaction with cmd (COMMIT or ROLLBACK); on
// Citus the fence is lifted in the same pipeline, so that it is the
// transaction's own session that lifts it even through a pooler.
func endGroup(ctx context.Context, conn *pgx.Conn, cmd string, citus bool) error {
	if !citus {
		_, err := conn.Exec(ctx, cmd)
		return err
	}
	b := &pgx.Batch{}
	b.Queue(cmd)
	b.Queue(unfenceSharedSQL, fenceKey)
	return conn.SendBatch(ctx, b).Close()
}

// timed reports whether any op is a hold with a timeout, whose expiry is
// dated from the group's time.
func timed(ops []*op) bool {
	for _, o := range ops {
		if o.kind == kindPending && o.expiresIn > 0 {
			return true
		}
	}
	return false
}

// seqPool holds transfer sequence numbers a poster took ahead, for groups
// that skip their read round trip. Numbers are taken a few dozen at a
// time, as PostgreSQL's own sequence cache does per connection; gaps are
// harmless.
type seqPool struct {
	mu   sync.Mutex
	seqs []int64
}

// seqPoolRefill is how many numbers a refill takes beyond what its group
// needs.
const seqPoolRefill = 64

const takeSeqsSQL = `SELECT ARRAY(SELECT nextval('ledger_transfers_seq') FROM generate_series(1, $1))`

// take returns n numbers from the pool or, when it is short, from a refill
// on conn whose rest it adds to the pool. The lock is not held across the
// refill: two groups short at once both refill, and the pool holds more.
func (p *seqPool) take(ctx context.Context, conn *pgx.Conn, n int) ([]int64, error) {
	p.mu.Lock()
	if len(p.seqs) >= n {
		seqs := p.seqs[:n:n]
		p.seqs = p.seqs[n:]
		p.mu.Unlock()
		return seqs, nil
	}
	p.mu.Unlock()
	var more []int64
	if err := conn.QueryRow(ctx, takeSeqsSQL, n+seqPoolRefill).Scan(&more); err != nil {
		return nil, fmt.Errorf("take sequence numbers: %w", err)
	}
	if len(more) != n+seqPoolRefill {
		return nil, fmt.Errorf("take sequence numbers: got %d, want %d", len(more), n+seqPoolRefill)
	}
	p.mu.Lock()
	p.seqs = append(p.seqs, more[n:]...)
	p.mu.Unlock()
	return more[:n:n], nil
}

// apply decides every op in arrival order against the locked balances and
// returns each op's result and the indexes of the ops to write. Balances
// change only for ops that pass, so a refused op never affects its neighbours.
func (st *groupState) apply(ops []*op) ([]opResult, []int, error) {
	res := make([]opResult, len(ops))
	var written []int
	for i, o := range ops {
		res[i].created = st.now
		err := st.decide(o)
		switch {
		case err == nil:
			written = append(written, i)
		case errors.Is(err, errExisting):
			res[i].existing = true
		case errors.Is(err, errIDsTaken):
			return nil, nil, err
		default:
			res[i].err = err
		}
	}
	return res, written, nil
}

// errBalancesMoved: a no_overdraft account's balances changed between the
// group's read and its write; the group must run again, locking them.
var errBalancesMoved = errors.New("ledger: balances moved under the group")

// balancesMovedCode is the SQLSTATE that ledger_balances_unmoved raises
// (migration 00120).
const balancesMovedCode = "LB001"

// errExisting marks an op whose id was already written with the same content.
var errExisting = errors.New("existing")

// errIDsTaken: the optimistic insert found a transfer id (or a pending or
// reversed transfer) already taken, or a transfer would be refused that may
// have been written before; the group must run again with checks.
var errIDsTaken = errors.New("ledger: transfer ids already taken")

func (st *groupState) decide(o *op) error {
	if hash, ok := st.existing[o.id]; ok {
		if string(hash) != string(o.hash) {
			return fmt.Errorf("%w: %s", ErrIdempotencyConflict, o.id)
		}
		return errExisting
	}
	if !st.checked && (st.resolvedBy[o.pendingSeq] != "" || st.reversed[o.reversesSeq]) {
		return errIDsTaken // perhaps by this very transfer: look before judging
	}
	if o.pendingSeq != 0 {
		switch st.resolvedBy[o.pendingSeq] {
		case kindPostPending:
			return fmt.Errorf("%w: %s", ErrAlreadyPosted, o.pendingID)
		case kindVoidPending:
			return fmt.Errorf("%w: %s", ErrAlreadyVoided, o.pendingID)
		}
		if o.kind == kindPostPending && !o.pendingExpires.IsZero() && !st.now.Before(o.pendingExpires) {
			return fmt.Errorf("%w: %s expired at %s", ErrPendingExpired, o.pendingID, o.pendingExpires.Format(time.RFC3339))
		}
	}
	if o.reversesSeq != 0 && st.reversed[o.reversesSeq] {
		return fmt.Errorf("%w: %s", ErrAlreadyReversed, o.reversesID)
	}
	err := st.applyDeltas(o)
	if err != nil && !st.checked {
		// Perhaps a retry of this very transfer, written before and since
		// paid from: it must get the first result, not a refusal. Look
		// before judging; refusals are rare, so the second read is too.
		return errIDsTaken
	}
	return err
}

// applyDeltas applies o's deltas to the locked balances if every
// no_overdraft account stays valid: no column overflows or goes negative,
// and the available balance does not go below zero (invariant 3). Other
// accounts are not read: the database refuses a column that would overflow
// int64, which fails the group and isolates the culprit.
func (st *groupState) applyDeltas(o *op) error {
	var buf [PostingsMax]balances // on the stack for any transfer of valid shape
	next := buf[:0]
	if len(o.deltas) > len(buf) {
		next = make([]balances, 0, len(o.deltas))
	}
	next = next[:len(o.deltas)]
	for i, d := range o.deltas {
		if !d.acct.noOverdraft {
			continue
		}
		b := st.balances[d.acct.id]
		var ok [4]bool
		b.dp, ok[0] = addChecked(b.dp, d.dp)
		b.cp, ok[1] = addChecked(b.cp, d.cp)
		b.dpe, ok[2] = addChecked(b.dpe, d.dpe)
		b.cpe, ok[3] = addChecked(b.cpe, d.cpe)
		if !ok[0] || !ok[1] || !ok[2] || !ok[3] {
			return fmt.Errorf("%w: account %s would overflow", ErrAmountTooLarge, d.acct.code)
		}
		if b.dp < 0 || b.cp < 0 || b.dpe < 0 || b.cpe < 0 {
			// Only a resolution lowers a pending column, by exactly what the
			// pending transfer added; a negative column means a broken op.
			return fmt.Errorf("ledger: account %s would have a negative total", d.acct.code)
		}
		if available(d.acct.normal, b) < 0 {
			return fmt.Errorf("%w: account %s", ErrInsufficientFunds, d.acct.code)
		}
		next[i] = b
	}
	for i, d := range o.deltas {
		if d.acct.noOverdraft {
			st.balances[d.acct.id] = next[i]
		}
	}
	return nil
}

func available(normal NormalBalance, b balances) int64 {
	if normal == CreditNormal {
		// credits - debits - pending debits, computed without overflow:
		// each column is non-negative, so subtraction cannot wrap.
		return sub(sub(b.cp, b.dp), b.dpe)
	}
	return sub(sub(b.dp, b.cp), b.cpe)
}

// sub returns a-b, saturating at the int64 limits.
func sub(a, b int64) int64 {
	s := a - b
	if (b > 0 && s > a) || (b < 0 && s < a) {
		if b > 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return s
}

// plannerSettingsSQL fixes how the group's statements are planned, for
// this transaction only. Planning them anew for every group (with their
// large array parameters) cost more than executing them, so they use one
// generic plan each. A generic plan is made once, perhaps while a table is
// tiny, and kept; with sequential scans and hash or merge joins off it
// cannot settle on scanning a table that later grows. Every statement of a
// group reaches its rows through an index. The settings take effect from
// the next statement on, so they are a statement of their own, the group's
// first: one without parameters, which PostgreSQL plans once per
// connection. (As the third column of the group's next statement they
// left that statement to be planned again for every group: 30–40 µs of
// the database's CPU a group, measured with pg_stat_statements.)
const plannerSettingsSQL = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true),
	set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
	set_config('enable_mergejoin', 'off', true)`

// citusPlannerSettingsSQL is plannerSettingsSQL for a Citus coordinator,
// which cannot make a distributed plan for the group's writes to reference
// and distributed tables from a generic plan ("could not create distributed
// plan"): there the statements are planned for their parameters, as every
// other statement of minipay is.
const citusPlannerSettingsSQL = `SELECT set_config('enable_seqscan', 'off', true),
	set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`

// groupStartSQL opens a group's reads: the transaction's time (every
// transfer of the group is created at it) and sequence numbers for every
// op, whether or not it is written (gaps are harmless).
const groupStartSQL = `SELECT now(), ARRAY(SELECT nextval('ledger_transfers_seq') FROM generate_series(1, $1))`

// The balances of a group's no_overdraft accounts: read, or locked and read.
const (
	readBalancesSQL = `SELECT id, debits_posted, credits_posted, debits_pending, credits_pending
		FROM ledger_accounts WHERE id = ANY($1)`
	lockBalancesSQL = readBalancesSQL + ` ORDER BY id FOR UPDATE`
)

// Set-based writes: one statement per table whatever the group size.
const (
	insertTransfersSQL = `
		INSERT INTO ledger_transfers (seq, id, code, kind, pending_seq, reverses_seq, expires_at, content_hash, metadata, created_at)
		SELECT t.seq, t.id, t.code, t.kind, t.pending_seq, t.reverses_seq, t.expires_at, t.hash, t.metadata::jsonb, now()
		FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::timestamptz[], $8::bytea[], $9::text[])
			AS t(seq, id, code, kind, pending_seq, reverses_seq, expires_at, hash, metadata)`
	insertPostingsSQL = `
		INSERT INTO ledger_postings (transfer_seq, idx, account_seq, debits_posted, credits_posted, debits_pending, credits_pending, created_at)
		SELECT u.t, u.i, u.a, u.dp, u.cp, u.dpe, u.cpe, now()
		FROM unnest($1::int8[], $2::int2[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[])
			AS u(t, i, a, dp, cp, dpe, cpe)`
	// Rows are upserted in account order, so two processes sharing a shard
	// take its row locks in the same order.
	upsertShardsSQL = `
		INSERT INTO ledger_balance_shards AS s (account_seq, shard, debits_posted, credits_posted, debits_pending, credits_pending)
		SELECT u.a, $6, u.dp, u.cp, u.dpe, u.cpe
		FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) AS u(a, dp, cp, dpe, cpe)
		ORDER BY u.a` + shardsOnConflict
	shardsOnConflict = `
		ON CONFLICT (account_seq, shard) DO UPDATE SET
			debits_posted = s.debits_posted + excluded.debits_posted, credits_posted = s.credits_posted + excluded.credits_posted,
			debits_pending = s.debits_pending + excluded.debits_pending, credits_pending = s.credits_pending + excluded.credits_pending`
	// The update of no_overdraft balances is guarded: each account must
	// still hold the balances the group read ($6–$9), or
	// ledger_balances_unmoved fails the transaction (see readGroupState).
	// Rows are updated in id order, so two groups lock them in one order.
	updateBalancesSQL = `
		WITH moved AS (
			UPDATE ledger_accounts a SET
				debits_posted = a.debits_posted + u.dp, credits_posted = a.credits_posted + u.cp,
				debits_pending = a.debits_pending + u.dpe, credits_pending = a.credits_pending + u.cpe
			FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[])
				AS u(id, dp, cp, dpe, cpe, rdp, rcp, rdpe, rcpe)
			WHERE a.id = u.id AND a.debits_posted = u.rdp AND a.credits_posted = u.rcp
				AND a.debits_pending = u.rdpe AND a.credits_pending = u.rcpe
			RETURNING 1)
		SELECT ledger_balances_unmoved(cardinality($1::text[]), count(*)) FROM moved`
	insertExpiringSQL = `INSERT INTO ledger_expiring (transfer_seq, expires_at) SELECT * FROM unnest($1::int8[], $2::timestamptz[])`
	deleteExpiringSQL = `DELETE FROM ledger_expiring WHERE transfer_seq = ANY($1)`
)

// writeGroup writes the transfers, postings and balance changes of the ops
// at the written indexes, then their attached statements, in one pipelined
// round trip, after one COPY round trip for the transfers and postings of
// a group of copyMin or more (0: never). failed lists the ops whose
// attached statements failed.
func writeGroup(ctx context.Context, conn *pgx.Conn, st *groupState, ops []*op, written []int, res []opResult, shard int16, copyMin int) (failed []int, committed bool, err error) {
	for _, i := range written {
		// Invariant 1, asserted once more at the last moment: an unbalanced
		// posting set must be impossible to write, not merely tested against.
		if err := checkBalanced(ops[i].deltas); err != nil {
			return nil, false, fmt.Errorf("ledger: refusing to write unbalanced transfer %s: %w", ops[i].id, err)
		}
	}
	w := newGroupWrite(st, ops, written)
	w.shard = shard
	sets, err := gatherRows(ops, written)
	if err != nil {
		return nil, false, err
	}
	if w.copy = copyMin > 0 && len(w.tSeq) >= copyMin; w.copy {
		if st.deferred {
			// COPY rows carry the group's time, which a group that read
			// nothing learns only in its write round trip (commitGroup
			// lets only groups too small to COPY skip the read).
			return nil, false, errors.New("ledger: a group that read nothing cannot COPY its rows")
		}
		if err := w.copyRows(ctx, conn); err != nil {
			return nil, false, err
		}
	}
	b := &pgx.Batch{}
	if st.deferred {
		queueBegin(b, false) // groups on Citus always read first (commitGroup)
		b.Queue(`SELECT now()`)
	}
	w.queue(b)
	// COMMIT rides in the same round trip unless a Check or a Required row
	// must first look at a result: if any statement fails, the server skips
	// the rest of the pipeline, COMMIT included.
	commitHere := true
	for _, i := range written {
		for _, s := range ops[i].attach {
			if s.Row {
				continue
			}
			b.Queue(s.SQL, s.Args...)
			if s.Check != nil {
				commitHere = false
			}
		}
	}
	for _, rs := range sets {
		sql, args := rs.statement()
		b.Queue(sql, args...)
		if rs.guarded {
			commitHere = false
		}
	}
	if commitHere {
		b.Queue("COMMIT")
		if st.citus {
			b.Queue(unfenceSharedSQL, fenceKey) // see endGroup
		}
	}
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	if st.deferred {
		if err := readBegin(br, st); err != nil {
			return nil, false, err
		}
	}
	if err := w.readResults(br); err != nil {
		return nil, false, err
	}
	if failed, err := readAttached(ctx, br, ops, written, res, sets); err != nil || len(failed) > 0 {
		return failed, false, err
	}
	if commitHere {
		tag, err := br.Exec()
		if err != nil {
			return nil, false, fmt.Errorf("%w: %w", errAmbiguous, err)
		}
		if tag.String() != "COMMIT" {
			return nil, false, fmt.Errorf("ledger: write group: COMMIT answered %q", tag.String())
		}
		if st.citus {
			if _, err := br.Exec(); err != nil {
				// Committed, but the session may still hold the fence:
				// only closing it is sure to lift it.
				_ = br.Close()
				closeConn(conn)
				return nil, true, nil
			}
		}
	}
	if err := br.Close(); err != nil {
		return nil, false, fmt.Errorf("write group: %w", err)
	}
	return nil, commitHere, nil
}

// readBegin reads the results of a deferred group's first three
// statements: BEGIN, the planner settings and the group's time.
func readBegin(br pgx.BatchResults, st *groupState) error {
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("begin group: %w", err)
		}
	}
	if err := br.QueryRow().Scan(&st.now); err != nil {
		return fmt.Errorf("begin group: %w", err)
	}
	return nil
}

// readAttached reads the results of the attached statements and runs their
// checks, and returns the ops whose statements failed. A failing statement
// of one op ends the pipeline, so it is the last op listed (unless a Check
// failed before it; see below); a failing Row statement cannot be pinned on
// one op and fails the group.
func readAttached(ctx context.Context, br pgx.BatchResults, ops []*op, written []int, res []opResult, sets []*rowSet) (failed []int, err error) {
	for _, i := range written {
		for _, s := range ops[i].attach {
			if s.Row {
				continue
			}
			tag, err := br.Exec()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("write group: %w", ctx.Err())
			}
			if err != nil && transient(err) {
				// A deadlock or serialization failure is no transfer's
				// fault: the group is tried again as a whole.
				return nil, fmt.Errorf("write group: statement attached to transfer %s: %w", ops[i].id, err)
			}
			if err != nil {
				// A transfer whose Check failed still ran its later
				// statements in this transaction, and they may be what
				// this one ran into. So the error is this transfer's only
				// when no Check failed before it: otherwise the group is
				// tried again without the transfers that failed their
				// Checks (this one among them, keeping its first error),
				// and the others get another chance.
				if len(failed) == 0 {
					res[i].err = fmt.Errorf("statement attached to transfer %s: %w", ops[i].id, err)
					failed = append(failed, i)
				}
				return failed, nil
			}
			if s.Check != nil && res[i].err == nil {
				if res[i].err = s.Check(tag); res[i].err != nil {
					failed = append(failed, i)
				}
			}
		}
	}
	for _, rs := range sets {
		missing, err := rs.read(br)
		if err != nil {
			return nil, fmt.Errorf("write group: %w", err)
		}
		for _, r := range missing {
			if i := rs.ops[r]; res[i].err == nil {
				res[i].err = rs.required[r]
				failed = append(failed, i)
			}
		}
	}
	return failed, nil
}

// rowSet is the rows that the written ops attach with one SQL, as the
// columns the statement takes.
type rowSet struct {
	sql      string
	cols     [][]any // the rows' values, by column
	ops      []int   // the op of each row
	required []error // each row's Required
	guarded  bool    // some row is Required
	values   bool    // sent as a multi-row VALUES list (Statement.Values)
}

// statement returns the set's SQL and arguments: the columns as arrays,
// or, for a VALUES set, its one row repeated for every row (multirow) and
// the rows' values in order.
func (rs *rowSet) statement() (string, []any) {
	if !rs.values {
		cols := make([]any, len(rs.cols))
		for c, col := range rs.cols {
			cols[c] = pgarray.Column(col)
		}
		return rs.sql, cols
	}
	n, rows := len(rs.cols), len(rs.ops)
	tpl, _ := multirow.Parse(rs.sql, n) // validated when posted
	args := make([]any, 0, n*rows)
	for r := range rows {
		for c := range n {
			args = append(args, rs.cols[c][r])
		}
	}
	return tpl.SQL(rows), args
}

// gatherRows collects the Row statements of the written ops into one set
// per SQL, in the order each SQL first appears.
func gatherRows(ops []*op, written []int) ([]*rowSet, error) {
	var sets []*rowSet
	bySQL := make(map[string]*rowSet)
	for _, i := range written {
		for _, s := range ops[i].attach {
			if !s.Row {
				continue
			}
			rs := bySQL[s.SQL]
			if rs == nil || s.Values && (len(rs.ops)+1)*len(s.Args) > multirow.MaxParams {
				rs = &rowSet{sql: s.SQL, cols: make([][]any, len(s.Args)), values: s.Values}
				bySQL[s.SQL] = rs
				sets = append(sets, rs)
			}
			if len(s.Args) != len(rs.cols) {
				return nil, fmt.Errorf("ledger: rows of one SQL differ in length (%d, %d): %s", len(rs.cols), len(s.Args), s.SQL)
			}
			for c, v := range s.Args {
				rs.cols[c] = append(rs.cols[c], v)
			}
			rs.ops = append(rs.ops, i)
			rs.required = append(rs.required, s.Required)
			rs.guarded = rs.guarded || s.Required != nil
		}
	}
	return sets, nil
}

// read consumes the set's result and returns the indexes of the Required
// rows the statement did not write, judged by the keys it returned.
func (rs *rowSet) read(br pgx.BatchResults) (missing []int, err error) {
	if !rs.guarded {
		_, err := br.Exec()
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	wrote := make(map[string]int, len(rs.ops))
	var key string
	if _, err := pgx.ForEachRow(rows, []any{&key}, func() error {
		wrote[key]++
		return nil
	}); err != nil {
		return nil, err
	}
	for r, k := range rs.cols[0] {
		if rs.required[r] == nil {
			continue
		}
		if key := k.(string); wrote[key] > 0 {
			wrote[key]-- // a key given twice is written (at most) once
		} else {
			missing = append(missing, r)
		}
	}
	return missing, nil
}

// groupWrite holds a group's rows as columns, ready for unnest.
type groupWrite struct {
	now time.Time

	tSeq                      []int64
	tID, tCode, tKind         []string
	tPendingSeq, tReversesSeq []*int64
	tExpires                  []*time.Time
	tHash                     [][]byte
	tMetadata                 []*string

	pTransfer, pAccount  []int64
	pIdx                 []int16
	pDP, pCP, pDPE, pCPE []int64

	// no_overdraft accounts, updated in place if their balances are still
	// the ones read (aR…)
	aID                      []string
	aDP, aCP, aDPE, aCPE     []int64
	aRDP, aRCP, aRDPE, aRCPE []int64
	// other accounts, added to the worker's shard
	shard                int16
	sSeq                 []int64
	sDP, sCP, sDPE, sCPE []int64

	expSeq     []int64
	expAt      []time.Time
	expRelease []int64

	copy  bool // transfers and postings went by COPY (copyRows)
	citus bool // the shard rows are on Citus workers (upsertShardsValues)
}

func newGroupWrite(st *groupState, ops []*op, written []int) *groupWrite {
	w := &groupWrite{now: st.now, citus: st.citus}
	w.grow(len(written), countPostings(ops, written))
	sums := make(map[int64]balances, len(st.balances)+8)
	var guarded, open []accountMeta
	for _, i := range written {
		o := ops[i]
		seq := st.seqs[i]
		w.addTransfer(o, seq)
		for j, d := range o.deltas {
			w.pTransfer = append(w.pTransfer, seq)
			w.pIdx = append(w.pIdx, int16(j))
			w.pAccount = append(w.pAccount, d.acct.seq)
			w.pDP, w.pCP, w.pDPE, w.pCPE = append(w.pDP, d.dp), append(w.pCP, d.cp), append(w.pDPE, d.dpe), append(w.pCPE, d.cpe)
			s, seen := sums[d.acct.seq]
			if !seen {
				if d.acct.noOverdraft {
					guarded = append(guarded, d.acct)
				} else {
					open = append(open, d.acct)
				}
			}
			// Sums of open accounts may wrap only where the database would
			// refuse the result anyway; guarded ones were checked by apply.
			s.dp, s.cp, s.dpe, s.cpe = s.dp+d.dp, s.cp+d.cp, s.dpe+d.dpe, s.cpe+d.cpe
			sums[d.acct.seq] = s
		}
	}
	slices.SortFunc(guarded, func(a, b accountMeta) int { return strings.Compare(a.id, b.id) })
	w.aID = make([]string, 0, len(guarded))
	int64Columns(len(guarded), &w.aDP, &w.aCP, &w.aDPE, &w.aCPE, &w.aRDP, &w.aRCP, &w.aRDPE, &w.aRCPE)
	int64Columns(len(open), &w.sSeq, &w.sDP, &w.sCP, &w.sDPE, &w.sCPE)
	for _, a := range guarded {
		s, r := sums[a.seq], st.read[a.id]
		w.aID = append(w.aID, a.id)
		w.aDP, w.aCP, w.aDPE, w.aCPE = append(w.aDP, s.dp), append(w.aCP, s.cp), append(w.aDPE, s.dpe), append(w.aCPE, s.cpe)
		w.aRDP, w.aRCP, w.aRDPE, w.aRCPE = append(w.aRDP, r.dp), append(w.aRCP, r.cp), append(w.aRDPE, r.dpe), append(w.aRCPE, r.cpe)
	}
	for _, a := range open {
		s := sums[a.seq]
		w.sSeq = append(w.sSeq, a.seq)
		w.sDP, w.sCP, w.sDPE, w.sCPE = append(w.sDP, s.dp), append(w.sCP, s.cp), append(w.sDPE, s.dpe), append(w.sCPE, s.cpe)
	}
	return w
}

// countPostings returns how many postings the written ops have.
func countPostings(ops []*op, written []int) int {
	n := 0
	for _, i := range written {
		n += len(ops[i].deltas)
	}
	return n
}

// grow gives the transfer and posting columns room for a group's rows up
// front: appending them one by one regrew and copied every column several
// times per group.
func (w *groupWrite) grow(transfers, postings int) {
	w.tSeq = make([]int64, 0, transfers)
	w.tID, w.tCode, w.tKind = make([]string, 0, transfers), make([]string, 0, transfers), make([]string, 0, transfers)
	w.tPendingSeq, w.tReversesSeq = make([]*int64, 0, transfers), make([]*int64, 0, transfers)
	w.tExpires = make([]*time.Time, 0, transfers)
	w.tHash = make([][]byte, 0, transfers)
	w.tMetadata = make([]*string, 0, transfers)
	int64Columns(postings, &w.pTransfer, &w.pAccount, &w.pDP, &w.pCP, &w.pDPE, &w.pCPE)
	w.pIdx = make([]int16, 0, postings)
}

// int64Columns makes each of cols an empty column with room for rows
// values. They share one allocation, each capped at its own part, so that
// appending to one can never spill into the next.
func int64Columns(rows int, cols ...*[]int64) {
	all := make([]int64, rows*len(cols))
	for k, c := range cols {
		*c = all[k*rows : k*rows : (k+1)*rows]
	}
}

func (w *groupWrite) addTransfer(o *op, seq int64) {
	w.tSeq = append(w.tSeq, seq)
	w.tID = append(w.tID, o.id)
	w.tCode = append(w.tCode, o.code)
	w.tKind = append(w.tKind, string(o.kind))
	w.tPendingSeq = append(w.tPendingSeq, nilIfZero(o.pendingSeq))
	w.tReversesSeq = append(w.tReversesSeq, nilIfZero(o.reversesSeq))
	w.tHash = append(w.tHash, o.hash)
	w.tMetadata = append(w.tMetadata, o.metadata)
	var expires *time.Time
	if o.kind == kindPending && o.expiresIn > 0 {
		at := w.now.Add(o.expiresIn)
		expires = &at
		w.expSeq = append(w.expSeq, seq)
		w.expAt = append(w.expAt, at)
	}
	w.tExpires = append(w.tExpires, expires)
	if o.pendingSeq != 0 {
		w.expRelease = append(w.expRelease, o.pendingSeq)
	}
}

func nilIfZero(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

func (w *groupWrite) queue(b *pgx.Batch) {
	if !w.copy {
		b.Queue(insertTransfersSQL, w.tSeq, w.tID, w.tCode, w.tKind, w.tPendingSeq, w.tReversesSeq, w.tExpires, w.tHash, w.tMetadata)
		b.Queue(insertPostingsSQL, w.pTransfer, w.pIdx, w.pAccount, w.pDP, w.pCP, w.pDPE, w.pCPE)
	}
	if len(w.aID) > 0 {
		b.Queue(updateBalancesSQL, w.aID, w.aDP, w.aCP, w.aDPE, w.aCPE, w.aRDP, w.aRCP, w.aRDPE, w.aRCPE)
	}
	if len(w.sSeq) > 0 && w.citus {
		sql, args := w.upsertShardsValues()
		b.Queue(sql, args...)
	} else if len(w.sSeq) > 0 {
		b.Queue(upsertShardsSQL, w.sSeq, w.sDP, w.sCP, w.sDPE, w.sCPE, w.shard)
	}
	if len(w.expSeq) > 0 {
		b.Queue(insertExpiringSQL, w.expSeq, w.expAt)
	}
	if len(w.expRelease) > 0 {
		b.Queue(deleteExpiringSQL, w.expRelease)
	}
}

// upsertShardsValues is upsertShardsSQL for Citus, where
// ledger_balance_shards is distributed by its shard column: one multi-row
// VALUES statement whose rows all name the worker's shard, which Citus
// routes to the one worker holding it (an INSERT … SELECT from unnest
// would be collected on the coordinator and copied there in two more round
// trips). The rows are in account order, as ORDER BY puts them there.
func (w *groupWrite) upsertShardsValues() (string, []any) {
	order := make([]int, len(w.sSeq))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(w.sSeq[a], w.sSeq[b]) })
	args := make([]any, 0, upsertShardsRow.Width()*len(order))
	for _, i := range order {
		args = append(args, w.sSeq[i], w.shard, w.sDP[i], w.sCP[i], w.sDPE[i], w.sCPE[i])
	}
	return upsertShardsRow.SQL(len(order)), args
}

// upsertShardsRow is one row of upsertShardsValues. A group's open
// accounts are at most a few per transfer, far below its MaxRows.
var upsertShardsRow = multirow.MustParse(`
	INSERT INTO ledger_balance_shards AS s (account_seq, shard, debits_posted, credits_posted, debits_pending, credits_pending)
	VALUES ($1::int8, $2::int2, $3::int8, $4::int8, $5::int8, $6::int8)`+shardsOnConflict, 6)

// readResults consumes the results of the statements queue added and checks
// that every row landed.
func (w *groupWrite) readResults(br pgx.BatchResults) error {
	var want []int
	if !w.copy {
		want = append(want, len(w.tID), len(w.pTransfer))
	}
	if len(w.aID) > 0 {
		want = append(want, 1) // the guard's one row; the guard checks the count
	}
	for _, n := range []int{len(w.sSeq), len(w.expSeq)} {
		if n > 0 {
			want = append(want, n)
		}
	}
	if len(w.expRelease) > 0 {
		want = append(want, -1) // a hold without timeout has no row to delete
	}
	for i, n := range want {
		tag, err := br.Exec()
		var pgErr *pgconn.PgError
		if i == 0 && !w.copy && errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
			return errIDsTaken
		}
		if errors.As(err, &pgErr) && pgErr.Code == balancesMovedCode {
			return errBalancesMoved
		}
		if err != nil {
			return fmt.Errorf("write group: %w", err)
		}
		if n >= 0 && tag.RowsAffected() != int64(n) {
			return fmt.Errorf("ledger: write group: statement %d affected %d rows, want %d", i, tag.RowsAffected(), n)
		}
	}
	return nil
}
