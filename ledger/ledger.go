// Package ledger is minipay's double-entry ledger: accounts, transfers of two
// or more postings, two-phase (pending) transfers, reversals, and balances
// now and at any past time.
//
// Amounts are int64 minor units of the account's currency; money.go converts
// to and from the decimal strings of the API. Every transfer balances in each
// currency, rows are never updated or deleted, and no_overdraft accounts never
// go below zero. Transfers are written by a group-commit poster (poster.go)
// that shares one database transaction among concurrent callers.
//
// The ledger knows nothing of checkout or settlement; callers attach their
// own statements to a transfer to commit them atomically with it.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options tunes a Ledger. The zero value is ready to use.
type Options struct {
	// BatchMax caps the transfers written in one group (default 1000).
	BatchMax int
	// QueueMax caps the transfers waiting for a group (default 20000, split
	// among the workers); Post blocks, honouring its context, while a queue
	// is full.
	QueueMax int
	// Workers is the number of groups written concurrently (default 2).
	// More workers use more database cores but make smaller groups; on a
	// 2-core machine 2 was fastest (docs/benchmarks.md).
	Workers int
	// Linger is how long a worker waits for more transfers after the first
	// before it writes a group, as long as they keep arriving: a worker
	// stops early when none has come for a tenth of Linger (default 5ms;
	// negative for none).
	Linger time.Duration
	// Observe, if set, is called after every group with its statistics.
	// It runs on a poster goroutine and must be quick and safe for
	// concurrent use.
	Observe func(BatchStats)
	// Log receives what the ledger does on its own that an operator should
	// know of (default slog.Default()).
	Log *slog.Logger
}

// Ledger is the ledger over one PostgreSQL database. It is safe for
// concurrent use; Close it to stop its poster.
type Ledger struct {
	db       *pgxpool.Pool
	accounts accountCache
	poster   *poster
	log      *slog.Logger

	mu     sync.RWMutex // guards closed against sends on the queue
	closed bool
}

// New returns a Ledger writing through db and starts its poster.
func New(db *pgxpool.Pool, opts Options) *Ledger {
	if opts.BatchMax <= 0 {
		opts.BatchMax = 1000
	}
	if opts.QueueMax <= 0 {
		opts.QueueMax = 20000
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Linger == 0 {
		opts.Linger = 5 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	p := &poster{
		db:       db,
		batchMax: opts.BatchMax,
		linger:   opts.Linger,
		observe:  opts.Observe,
		done:     make(chan struct{}),
		copyMin:  defaultCopyMin,
	}
	for w := 0; w < opts.Workers; w++ {
		p.queues = append(p.queues, make(chan *op, max(1, opts.QueueMax/opts.Workers)))
	}
	go p.run()
	return &Ledger{db: db, poster: p, log: opts.Log}
}

// Close stops accepting transfers, waits until every transfer already
// submitted has its result, and stops the poster. Later calls return
// ErrClosed.
func (l *Ledger) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		for _, q := range l.poster.queues {
			close(q)
		}
	}
	l.mu.Unlock()
	<-l.poster.done
}

// submit hands o to the poster and waits for its result. If ctx ends first
// the transfer may still be written; posting the same id again tells.
func (l *Ledger) submit(ctx context.Context, o *op) (opResult, error) {
	for _, s := range o.attach {
		if err := s.validate(); err != nil {
			return opResult{}, err
		}
	}
	o.ctx = ctx
	o.done = make(chan opResult, 1)
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return opResult{}, ErrClosed
	}
	select {
	case l.poster.queueFor(o) <- o:
		l.mu.RUnlock()
	case <-ctx.Done():
		l.mu.RUnlock()
		return opResult{}, ctx.Err()
	}
	select {
	case r := <-o.done:
		return r, r.err
	case <-ctx.Done():
		return opResult{}, ctx.Err()
	}
}

// Post writes a transfer, with any attached statements in the same database
// transaction, and returns it as written. Posting an id that exists with the
// same content returns the existing transfer (in its current status) and
// runs no statements; with other content it is ErrIdempotencyConflict.
func (l *Ledger) Post(ctx context.Context, t Transfer, attach ...Statement) (Transfer, error) {
	o, err := l.prepare(ctx, t)
	if err != nil {
		return Transfer{}, err
	}
	o.attach = attach
	res, err := l.submit(ctx, o)
	if err != nil {
		return Transfer{}, fmt.Errorf("post transfer %s: %w", t.ID, err)
	}
	if res.existing {
		return l.replayed(ctx, t.ID)
	}
	return transferFromOp(o, res.created, t.Metadata), nil
}

// replayed reads the transfer a replayed id names and marks it so.
func (l *Ledger) replayed(ctx context.Context, id string) (Transfer, error) {
	t, err := l.GetTransfer(ctx, id)
	t.Replayed = err == nil
	return t, err
}

// PostPending posts a pending transfer: its held amounts become posted. It
// returns the pending transfer, now with status posted. Posting it again is a
// no-op; posting a voided or expired one is ErrAlreadyVoided or
// ErrPendingExpired.
func (l *Ledger) PostPending(ctx context.Context, pendingID string, attach ...Statement) (Transfer, error) {
	return l.resolve(ctx, pendingID, kindPostPending, attach)
}

// VoidPending voids a pending transfer: its holds are released and nothing
// moves. It returns the pending transfer, now with status voided. Voiding it
// again is a no-op; voiding a posted one is ErrAlreadyPosted.
func (l *Ledger) VoidPending(ctx context.Context, pendingID string, attach ...Statement) (Transfer, error) {
	return l.resolve(ctx, pendingID, kindVoidPending, attach)
}

// ResolutionID is the id of the transfer that posts or voids a pending
// transfer. It is derived from the pending id, so a repeated post or void is
// idempotent.
func ResolutionID(pendingID string, post bool) string {
	if post {
		return pendingID + ":post"
	}
	return pendingID + ":void"
}

// ReversalID is the id of the transfer that reverses transfer id.
func ReversalID(id string) string { return id + ":reversal" }

func (l *Ledger) resolve(ctx context.Context, pendingID string, k kind, attach []Statement) (Transfer, error) {
	o, err := l.prepareResolution(ctx, pendingID, k)
	if err != nil {
		return Transfer{}, err
	}
	o.attach = attach
	if _, err := l.submit(ctx, o); err != nil {
		return Transfer{}, fmt.Errorf("%s %s: %w", k, pendingID, err)
	}
	return l.GetTransfer(ctx, pendingID)
}

// stored is a transfer's kind and raw postings, as read for building a
// resolution or reversal.
type stored struct {
	seq       int64
	kind      kind
	expiresAt *time.Time
	deltas    []delta
}

func (l *Ledger) loadStored(ctx context.Context, id string) (stored, error) {
	var s stored
	err := l.db.QueryRow(ctx, `SELECT seq, kind, expires_at FROM ledger_transfers WHERE id = $1`, id).Scan(&s.seq, &s.kind, &s.expiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, fmt.Errorf("%w: %s", ErrTransferNotFound, id)
	}
	if err != nil {
		return s, fmt.Errorf("load transfer %s: %w", id, err)
	}
	rows, err := l.db.Query(ctx, `
		SELECT a.id, p.debits_posted, p.credits_posted, p.debits_pending, p.credits_pending
		FROM ledger_postings p JOIN ledger_accounts a ON a.seq = p.account_seq
		WHERE p.transfer_seq = $1 ORDER BY p.idx`, s.seq)
	if err != nil {
		return s, fmt.Errorf("load postings of %s: %w", id, err)
	}
	var (
		refs []string
		d    delta
	)
	_, err = pgx.ForEachRow(rows, []any{&d.acct.id, &d.dp, &d.cp, &d.dpe, &d.cpe}, func() error {
		refs = append(refs, d.acct.id)
		s.deltas = append(s.deltas, d)
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("load postings of %s: %w", id, err)
	}
	accts, err := l.lookupAccounts(ctx, refs)
	if err != nil {
		return s, err
	}
	for i := range s.deltas {
		s.deltas[i].acct = accts[i]
	}
	return s, nil
}

// prepareResolution builds the transfer that posts or voids pendingID: it
// releases every held amount and, for a post, posts it.
func (l *Ledger) prepareResolution(ctx context.Context, pendingID string, k kind) (*op, error) {
	s, err := l.loadStored(ctx, pendingID)
	if err != nil {
		return nil, err
	}
	if s.kind != kindPending {
		return nil, fmt.Errorf("%w: %s", ErrNotPending, pendingID)
	}
	o := &op{id: ResolutionID(pendingID, k == kindPostPending), code: string(k), kind: k, pendingID: pendingID, pendingSeq: s.seq}
	if s.expiresAt != nil {
		o.pendingExpires = *s.expiresAt
	}
	for _, held := range s.deltas {
		d := delta{acct: held.acct, dpe: -held.dpe, cpe: -held.cpe}
		if k == kindPostPending {
			d.dp, d.cp = held.dpe, held.cpe
		}
		o.deltas = append(o.deltas, d)
	}
	o.hash = contentHash(o, nil)
	return o, nil
}

// Reverse writes a transfer that undoes a posted transfer: every debit
// becomes a credit of the same amount and the other way round. A transfer is
// reversed at most once; reversing it again returns the first reversal. The
// reversal obeys no_overdraft like any transfer, so reversing a top-up whose
// money was spent is ErrInsufficientFunds.
func (l *Ledger) Reverse(ctx context.Context, id string, metadata map[string]string, attach ...Statement) (Transfer, error) {
	if err := ValidateMetadata(metadata); err != nil {
		return Transfer{}, err
	}
	original, err := l.GetTransfer(ctx, id)
	if err != nil {
		return Transfer{}, err
	}
	if original.Status != StatusPosted || original.PendingID != "" {
		return Transfer{}, fmt.Errorf("%w: %s is %s", ErrNotReversible, id, original.Status)
	}
	s, err := l.loadStored(ctx, id)
	if err != nil {
		return Transfer{}, err
	}
	o := &op{id: ReversalID(id), code: "reversal", kind: kindPosted, reversesID: id, reversesSeq: s.seq, attach: attach}
	for _, d := range s.deltas {
		debit, credit := d.dp, d.cp
		if s.kind == kindPending {
			debit, credit = d.dpe, d.cpe // a posted hold moved its held amounts
		}
		o.deltas = append(o.deltas, delta{acct: d.acct, dp: credit, cp: debit})
	}
	if o.metadata, err = encodeMetadata(metadata); err != nil {
		return Transfer{}, err
	}
	o.hash = contentHash(o, metadata)
	res, err := l.submit(ctx, o)
	if err != nil {
		return Transfer{}, fmt.Errorf("reverse %s: %w", id, err)
	}
	if res.existing {
		return l.replayed(ctx, o.id)
	}
	return transferFromOp(o, res.created, metadata), nil
}
