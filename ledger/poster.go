package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/internal/multirow"
)

// Statement is SQL that a caller commits atomically with its transfer, such
// as "mark this checkout session complete" or "insert this event". It runs in
// the transfer's database transaction after the ledger's own writes, and only
// if the transfer is new: a replayed transfer id runs nothing.
//
// A statement is run once for its transfer, or, marked Row, once for its
// whole group (see Row).
type Statement struct {
	SQL  string
	Args []any
	// Check, if set, inspects the result. An error fails this transfer alone
	// (its group is retried without it) and is returned by Post.
	Check func(pgconn.CommandTag) error

	// Row makes the statement set-based: Args are this transfer's row, and
	// SQL takes every column as an array, such as
	// INSERT ... SELECT * FROM unnest($1::text[], $2::int8[]). The group
	// runs SQL once with the rows of all its transfers that attach the same
	// SQL, so the database plans it, checks the table's constraints and
	// fires its statement triggers once per group instead of once per
	// transfer. Rows run after the group's other statements, in the order
	// their SQL first appears.
	Row bool
	// Required, for a Row, fails the transfer with Required unless the
	// statement wrote its row: SQL must then end in RETURNING the first
	// column, which must be a string that names the row (an id). This is
	// the set-based form of ExpectRows(1, Required) on a conditional UPDATE.
	Required error
	// Values, for a Row, says SQL inserts this one row with a VALUES list,
	// INSERT INTO t (a, b) VALUES ($1, $2) [ON CONFLICT … | RETURNING …],
	// and Args are plain values: the group sends its rows as one
	// multi-row VALUES statement instead of arrays. Citus splits such a
	// statement by shard and sends each part to its worker, where it
	// would collect an INSERT … SELECT from unnest on the coordinator.
	Values bool
}

// validate refuses a statement whose fields contradict each other.
func (s Statement) validate() error {
	switch {
	case s.Row && s.Check != nil:
		return errors.New("ledger: a Row statement cannot have a Check; use Required")
	case !s.Row && s.Required != nil:
		return errors.New("ledger: Required is for Row statements; use Check")
	case s.Row && len(s.Args) == 0:
		return errors.New("ledger: a Row statement needs its row in Args")
	case s.Values && !s.Row:
		return errors.New("ledger: Values is for Row statements")
	}
	if s.Values {
		if _, err := multirow.Parse(s.SQL, len(s.Args)); err != nil {
			return fmt.Errorf("ledger: a Values statement: %w", err)
		}
	}
	if s.Required != nil {
		if _, ok := s.Args[0].(string); !ok {
			return errors.New("ledger: a Required row must begin with a string key")
		}
	}
	return nil
}

// ExpectRows returns a Check that fails with err unless the statement
// affected exactly n rows; the usual guard for a conditional UPDATE.
func ExpectRows(n int64, err error) func(pgconn.CommandTag) error {
	return func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() != n {
			return err
		}
		return nil
	}
}

// op is one transfer on its way through the poster.
type op struct {
	ctx        context.Context
	id         string
	code       string
	kind       kind
	pendingID  string
	reversesID string
	// The internal keys of the transfers named by pendingID and reversesID.
	pendingSeq  int64
	reversesSeq int64
	expiresIn   time.Duration
	hash        []byte
	metadata    *string
	deltas      []delta
	attach      []Statement
	// pendingExpires is, for the post of a pending transfer, when the hold
	// times out; posting it after that is refused.
	pendingExpires time.Time
	done           chan opResult
}

// delta is one op's change to one account's four balance columns.
type delta struct {
	acct             accountMeta
	dp, cp, dpe, cpe int64
}

type opResult struct {
	created  time.Time
	existing bool // the id was already written with the same content
	err      error
}

func (o *op) finish(r opResult) { o.done <- r }

// BatchStats describes one group commit, for metrics and the benchmark.
type BatchStats struct {
	Ops      int           // transfers gathered into the group
	Written  int           // transfers written (the rest replayed or failed)
	Attempts int           // database transactions it took
	Duration time.Duration // from gathering to commit
	// Where the time went, summed over attempts: locking the accounts and
	// reading what exists, writing rows and attached statements, committing.
	Read, Write, Commit time.Duration
	// Cached counts, over attempts, the no_overdraft accounts whose
	// balances the group took from its worker's cache instead of reading.
	Cached int
	// Unread counts the attempts that read nothing before writing, and so
	// took one round trip instead of two (see readGroupState).
	Unread int
}

// poster gathers concurrent transfers into groups and writes each group in
// one database transaction (group commit). Groups grow with load: a worker
// writes what gathered while it was busy.
//
// Several workers write groups in parallel, each from its own queue, so one
// group's commit (an fsync) overlaps another's work and both cores are used.
// Transfers are routed to a worker by their first no_overdraft account:
// those accounts are locked while a group decides (their balance must be
// checked), and routing keeps two concurrent groups from waiting on the same
// wallets. Accounts without no_overdraft are never locked: each worker adds
// its group's totals to its own shard row of such an account, so a hot
// account (the platform's fee account, a popular developer's pending
// account) is not one row that every transfer waits for.
type poster struct {
	db       *pgxpool.Pool
	queues   []chan *op
	next     atomic.Uint32 // round robin for transfers without no_overdraft accounts
	batchMax int
	linger   time.Duration
	observe  func(BatchStats)
	done     chan struct{}
	// copyMin is the smallest group that writes its transfers and postings
	// with COPY (copy.go); tests lower it.
	copyMin int
	// citus is whether the database is a Citus coordinator, learnt with the
	// first group's connection.
	citus citusFlag
	// seqs are sequence numbers taken ahead for groups that read nothing.
	seqs seqPool
}

// shardsMax is the number of balance shards an account can have. Workers of
// one process use distinct shards; processes pick a random offset, so two
// replicas rarely share a shard (and only wait, never deadlock, when they do).
const shardsMax = 64

func (p *poster) run() {
	defer close(p.done)
	offset := int(time.Now().UnixNano() % shardsMax)
	var wg sync.WaitGroup
	for w := range p.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(p.queues[w], &worker{shard: int16((offset + w) % shardsMax)})
		}()
	}
	wg.Wait()
}

// queueFor picks the queue of the worker that writes o.
func (p *poster) queueFor(o *op) chan *op {
	for _, d := range o.deltas {
		if d.acct.noOverdraft {
			return p.queues[uint64(d.acct.seq)%uint64(len(p.queues))]
		}
	}
	return p.queues[p.next.Add(1)%uint32(len(p.queues))]
}

// worker is what one of the poster's workers keeps between its groups.
type worker struct {
	shard    int16 // its balance shard of accounts without no_overdraft
	balances balanceCache
}

// work runs one worker until its queue is closed and drained.
func (p *poster) work(queue chan *op, w *worker) {
	var carry []*op
	for {
		batch := carry
		if len(batch) == 0 {
			o, ok := <-queue
			if !ok {
				return
			}
			batch = append(batch, o)
		}
		batch = p.fill(queue, batch)
		start := time.Now()
		var stats BatchStats
		batch, carry = p.admit(batch)
		stats.Ops = len(batch)
		p.commit(batch, w, &stats)
		if p.observe != nil && stats.Ops > 0 {
			stats.Duration = time.Since(start)
			p.observe(stats)
		}
	}
}

// fill adds to batch what arrives within the linger time, up to batchMax.
// Lingering trades a little latency for larger groups, and a group's fixed
// cost (a transaction, its round trips, a commit's fsync, about a
// millisecond of CPU) is spread over more transfers: under load that is
// what decides throughput. A worker keeps filling while transfers keep
// arriving, for at most linger, and stops early once none has arrived for
// a gap (a tenth of linger): a closed loop of clients that all wait for
// this group sends nothing more, and waiting out the linger would only add
// to their latency.
func (p *poster) fill(queue chan *op, batch []*op) []*op {
	batch, open := drain(queue, batch, p.batchMax)
	if p.linger <= 0 || !open {
		return batch
	}
	gap := max(p.linger/10, 50*time.Microsecond)
	deadline := time.Now().Add(p.linger)
	var timer *time.Timer
	for len(batch) < p.batchMax {
		wait := min(gap, time.Until(deadline))
		if wait <= 0 {
			return batch
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait) // since Go 1.23 no stale tick survives a Reset
		}
		select {
		case o, ok := <-queue:
			if !ok {
				return batch
			}
			batch = append(batch, o)
		case <-timer.C:
			return batch // a gap without arrivals, or the linger is over
		}
		if batch, open = drain(queue, batch, p.batchMax); !open {
			return batch
		}
	}
	return batch
}

// drain adds to batch, up to limit, what queue holds now, without waiting;
// open is false once queue is closed.
func drain(queue chan *op, batch []*op, limit int) (_ []*op, open bool) {
	for len(batch) < limit {
		select {
		case o, ok := <-queue:
			if !ok {
				return batch, false
			}
			batch = append(batch, o)
		default:
			return batch, true
		}
	}
	return batch, true
}

// admit drops ops whose caller gave up and defers to the next group any op
// that collides with an earlier one in this group (same id, same pending
// transfer, same reversed transfer): the later one then sees the earlier
// one's committed result, which keeps each group free of conflicts.
func (p *poster) admit(batch []*op) (live, carry []*op) {
	seen := make(map[admitKey]struct{}, len(batch))
	live = make([]*op, 0, len(batch))
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			o.finish(opResult{err: err})
			continue
		}
		keys := [3]admitKey{{'i', o.id}, {'p', o.pendingID}, {'r', o.reversesID}}
		if collides(seen, keys) {
			carry = append(carry, o)
			continue
		}
		for _, k := range keys {
			if k.name != "" {
				seen[k] = struct{}{}
			}
		}
		live = append(live, o)
	}
	return live, carry
}

// admitKey is a name an op claims in its group: its id, the pending
// transfer it resolves or the transfer it reverses, told apart by kind. A
// struct rather than a prefixed string, so that admitting an op allocates
// nothing.
type admitKey struct {
	kind byte
	name string
}

// collides reports whether any of keys (empty names aside) is in seen.
func collides(seen map[admitKey]struct{}, keys [3]admitKey) bool {
	for _, k := range keys {
		if k.name == "" {
			continue
		}
		if _, ok := seen[k]; ok {
			return true
		}
	}
	return false
}

// retriesMax bounds how often a group is retried after a conflict with
// another process (a unique violation or deadlock) before its transfers are
// tried one by one.
const retriesMax = 3

// commit writes ops, giving every op a result. A transfer whose attached
// statement fails is dropped from the group with that error and the rest
// retried; an unexpected failure of the group isolates each transfer in a
// transaction of its own, so one bad transfer never fails its neighbours.
func (p *poster) commit(ops []*op, w *worker, stats *BatchStats) {
	retries := 0
	var mode readMode
	for len(ops) > 0 {
		stats.Attempts++
		res, failed, err := p.commitGroup(ops, w, mode, stats)
		switch {
		case errors.Is(err, errIDsTaken) && !mode.checkExisting:
			mode.checkExisting = true
		case errors.Is(err, errBalancesMoved) && !mode.lock:
			mode.lock = true
		case err == nil && len(failed) == 0:
			for i, o := range ops {
				if res[i].err == nil && !res[i].existing {
					stats.Written++
				}
				o.finish(res[i])
			}
			return
		case len(failed) > 0:
			ops = dropFailed(ops, res, failed)
		case errors.Is(err, errAmbiguous):
			for _, o := range ops {
				o.finish(opResult{err: err})
			}
			return
		case (retryable(err) || errors.Is(err, errIDsTaken)) && retries < retriesMax:
			retries++
		case len(ops) > 1:
			for _, o := range ops {
				p.commit([]*op{o}, w, stats)
			}
			return
		default:
			ops[0].finish(opResult{err: translate(err)})
			return
		}
	}
}

// dropFailed finishes the failed ops with their results and returns the
// others, to be tried again without them.
func dropFailed(ops []*op, res []opResult, failed []int) []*op {
	out := make(map[int]bool, len(failed))
	for _, i := range failed {
		ops[i].finish(res[i])
		out[i] = true
	}
	rest := make([]*op, 0, len(ops)-len(failed))
	for i, o := range ops {
		if !out[i] {
			rest = append(rest, o)
		}
	}
	return rest
}

// errAmbiguous marks a failure at COMMIT: the transaction may or may not have
// been written. Retrying the transfer with the same id is safe either way.
var errAmbiguous = errors.New("ledger: commit outcome unknown; retry with the same transfer id")

// translate turns a database refusal of a single transfer into the ledger
// error it stands for. The poster checks these conditions itself where it
// can; the database is the backstop for what it cannot see (the totals of
// unlocked accounts).
func translate(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch {
	case pgErr.Code == "22003", pgErr.ConstraintName == "ledger_balance_shards_bounded":
		return fmt.Errorf("%w: an account total would exceed the ledger's range", ErrAmountTooLarge)
	case pgErr.ConstraintName == "ledger_accounts_no_overdraft":
		return fmt.Errorf("%w: refused by the database", ErrInsufficientFunds)
	}
	return err
}

// transient reports a conflict with another transaction that running the
// same statements again resolves: a deadlock or a serialization failure.
func transient(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "23505", "40001", "40P01": // unique_violation, serialization_failure, deadlock_detected
		return true
	}
	return false
}

// groupTimeout bounds one group's transaction, so a stuck database cannot
// hold callers forever.
const groupTimeout = 30 * time.Second

// commitGroup writes ops in one transaction. It returns each op's result;
// failed lists the ops whose attached statements failed (their results
// hold the errors, and nothing was committed); err fails the whole
// transaction.
func (p *poster) commitGroup(ops []*op, w *worker, mode readMode, stats *BatchStats) (res []opResult, failed []int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	start := time.Now()
	conn, err := p.db.Acquire(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	if mode.citus, err = p.citus.get(ctx, conn); err != nil {
		return nil, nil, err
	}
	committed := false
	defer func() {
		if !committed {
			// Also after a failed BEGIN: ROLLBACK outside a transaction is harmless.
			if err := endGroup(context.Background(), conn.Conn(), "ROLLBACK", mode.citus); err != nil {
				closeConn(conn.Conn()) // unknown state: do not reuse
			}
		}
	}()

	// Balances come from the cache only on the optimistic path, whose
	// writes are guarded and whose refusals are judged again with a read.
	if !mode.lock && !mode.checkExisting && w.balances.usable() {
		mode.cache = &w.balances
	}
	// A group small enough not to COPY (COPY rows carry the group's time,
	// so it must be read first) may skip its read round trip; Citus's
	// planner settings differ, and its path is left as it is.
	if !mode.citus && (p.copyMin <= 0 || len(ops) < p.copyMin) {
		mode.seqs = &p.seqs
	}
	st, err := readGroupState(ctx, conn.Conn(), ops, mode)
	if err != nil {
		return nil, nil, err
	}
	stats.Cached += st.cached
	if st.deferred {
		stats.Unread++
	}
	res, written, err := st.apply(ops)
	if err != nil {
		return nil, nil, err
	}
	read := time.Now()
	stats.Read += read.Sub(start)
	if len(written) == 0 {
		w.balances.store(st.read) // as read: apply changed nothing
		return res, nil, nil      // nothing to write; rollback releases the locks
	}
	failed, committed, err = writeGroup(ctx, conn.Conn(), st, ops, written, res, w.shard, p.copyMin)
	wrote := time.Now()
	stats.Write += wrote.Sub(read)
	switch {
	case errors.Is(err, errBalancesMoved) && st.cached > 0:
		w.balances.stale(st.read)
	case errors.Is(err, errBalancesMoved):
		w.balances.forget(st.read)
	case errors.Is(err, errAmbiguous):
		w.balances.forget(st.read)
		return nil, nil, err
	}
	if err != nil || len(failed) > 0 {
		return res, failed, err
	}
	if !committed {
		if err := endGroup(ctx, conn.Conn(), "COMMIT", mode.citus); err != nil {
			w.balances.forget(st.read)
			return nil, nil, fmt.Errorf("%w: %w", errAmbiguous, err)
		}
		committed = true
	}
	w.balances.store(st.balances)
	stats.Commit += time.Since(wrote)
	if st.deferred {
		for i := range res {
			res[i].created = st.now // learnt in the write round trip
		}
	}
	return res, nil, nil
}
