package checkout

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/citus"
	"github.com/minipay/minipay/internal/multirow"
	"github.com/minipay/minipay/internal/null"
)

// inserter writes new sessions in groups: sessions created at the same
// time share one INSERT and one commit, as transfers share the ledger's
// group commit. A session is acknowledged only after its group committed.
// Writers take whatever has queued up while they were busy, so a lone
// create waits for nobody, and under load the groups grow by themselves.
type inserter struct {
	db   *pgxpool.Pool
	reqs chan *insertReq
	stop chan struct{}
	done chan struct{}

	// mu orders queueing before closing: once closed is set no request
	// joins the queue, so the writers' last drain sees every queued one.
	mu     sync.RWMutex
	closed bool

	// citusOnce learns whether the database is a Citus coordinator.
	citusOnce sync.Once
	onCitus   bool
}

type insertReq struct {
	sess     Session
	inserted bool // false: the id existed (created before, same idempotency key)
	err      error
	ready    chan struct{}
}

const (
	// insertWriters is the groups in flight at once: one. Every group
	// costs a round trip, a statement's setup and a commit whatever its
	// size, and while the writer waits for its commit the next creates
	// queue up for the next group. Four writers made groups of 4–5
	// sessions under 64 closed-loop clients; with two a checkout cost
	// about 8 % more CPU than with one there, and about 15 % more at an
	// offered 1,600/s (docs/benchmarks.md, checkout).
	insertWriters  = 1
	insertGroupMax = 256 // sessions in one group
)

func newInserter(db *pgxpool.Pool) *inserter {
	w := &inserter{db: db, reqs: make(chan *insertReq, 4096), stop: make(chan struct{}), done: make(chan struct{})}
	finished := make(chan struct{}, insertWriters)
	for range insertWriters {
		go func() {
			w.run()
			finished <- struct{}{}
		}()
	}
	go func() {
		for range insertWriters {
			<-finished
		}
		close(w.done)
	}()
	return w
}

// insert writes sess and reports whether this call created it.
func (w *inserter) insert(ctx context.Context, sess Session) (bool, error) {
	r := &insertReq{sess: sess, ready: make(chan struct{})}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return false, fmt.Errorf("create session: %w", ErrClosed)
	}
	select {
	case w.reqs <- r:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return false, ctx.Err()
	}
	// Once queued, the request is written whatever the caller does: wait
	// for it, so the answer is never "unknown" for a session that exists.
	<-r.ready
	return r.inserted, r.err
}

// close stops the writers after the queued sessions are written.
func (w *inserter) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done
}

func (w *inserter) run() {
	for {
		var first *insertReq
		select {
		case first = <-w.reqs:
		case <-w.stop:
			for { // write what was queued before the stop
				select {
				case r := <-w.reqs:
					w.write([]*insertReq{r})
				default:
					return
				}
			}
		}
		group := []*insertReq{first}
	gather:
		for len(group) < insertGroupMax {
			select {
			case r := <-w.reqs:
				group = append(group, r)
			default:
				break gather
			}
		}
		w.write(group)
	}
}

// write inserts a group in one statement; if the statement fails, each
// session is tried alone so one bad row fails only itself.
func (w *inserter) write(group []*insertReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inserted, err := w.insertGroup(ctx, group)
	if err != nil && len(group) > 1 {
		for _, r := range group {
			w.write([]*insertReq{r})
		}
		return
	}
	for _, r := range group {
		// Two requests for one id in one group: only the first made it.
		r.inserted, r.err = inserted[r.sess.ID], err
		delete(inserted, r.sess.ID)
		close(r.ready)
	}
}

func (w *inserter) insertGroup(ctx context.Context, group []*insertReq) (map[string]bool, error) {
	n := len(group)
	var (
		ids, apps, devs, captures, currencies, options, secrets = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		refs, items                                             = make([]*string, n), make([]*string, n)
		metadata                                                = make([]string, n)
		hashes                                                  = make([][]byte, n)
		amounts                                                 = make([]int64, n)
		expires, created                                        = make([]time.Time, n), make([]time.Time, n)
	)
	keyed := false // some id derives from an idempotency key
	for i, r := range group {
		s := r.sess
		keyed = keyed || !s.freshID
		ids[i], apps[i], devs[i], captures[i], currencies[i], options[i], secrets[i] =
			s.ID, s.AppID, s.DeveloperID, s.CaptureMethod, s.Currency, s.Option, s.ClientSecret
		refs[i], amounts[i], expires[i], created[i] = null.String(s.ClientReferenceID), s.AmountTotal, s.ExpiresAt, s.Created
		hashes[i] = s.requestHash
		md, _ := json.Marshal(s.Metadata)
		metadata[i] = string(md)
		if len(s.LineItems) > 0 {
			li, _ := json.Marshal(s.LineItems)
			items[i] = null.String(string(li))
		}
	}
	w.citusOnce.Do(func() {
		on, err := citus.Enabled(ctx, w.db)
		w.onCitus = on && err == nil
	})
	if w.onCitus {
		return w.insertValues(ctx, ids, apps, devs, captures, currencies, amounts, options, refs, secrets, items, metadata, expires, created, hashes)
	}
	args := []any{ids, apps, devs, captures, currencies, amounts, options, refs, secrets, items, metadata, expires, created, hashes}
	// When every id is fresh nothing can conflict, and the insert skips ON
	// CONFLICT's speculative insertion (a unique probe and one more WAL
	// record per row). A collision of fresh ids would fail the group and
	// then its row alone, never pass unnoticed.
	insert := insertSessionsSQL
	if keyed {
		insert += ` ON CONFLICT (id) DO NOTHING RETURNING id`
	}
	inserted := make(map[string]bool, n)
	b := &pgx.Batch{}
	b.Queue(genericPlanSQL)
	q := b.Queue(insert, args...)
	if keyed { // the ids that were not taken
		q.Query(markInserted(inserted))
	}
	if err := w.db.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("create sessions: %w", err)
	}
	if !keyed {
		for _, id := range ids {
			inserted[id] = true
		}
	}
	return inserted, nil
}

// genericPlanSQL, sent with the insert in one round trip (and so in one
// implicit transaction), has PostgreSQL plan the insert once per
// connection. Left to choose, it planned it again for every group, since
// a plan made for the arrays at hand always looks a little cheaper than
// one for any arrays; planning cost about a third of executing it (57 µs
// against 108 at groups of one, measured with pg_stat_statements). There
// is nothing to choose: the plan reads the arrays and inserts.
const genericPlanSQL = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true)`

// insertSessionsSQL inserts a group's sessions from one array per column.
const insertSessionsSQL = `
	INSERT INTO checkout_sessions (id, app_id, developer_id, status, capture_method, currency,
		amount_total, option, client_reference_id, client_secret, line_items, metadata, expires_at, created_at, request_hash)
	SELECT id, app, dev, 'open', capture, currency, amount, option, ref, secret, items::jsonb, md::jsonb, expires, created, hash
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[],
		$9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::timestamptz[], $14::bytea[])
		AS s (id, app, dev, capture, currency, amount, option, ref, secret, items, md, expires, created, hash)`

// insertValues is insertGroup's insert on a Citus cluster: one multi-row
// INSERT … VALUES, which Citus splits into one INSERT per shard touched and
// plans once. The set-based insert over unnest would be collected on the
// coordinator and spread over the shards; a statement per session is
// planned and routed once per session.
func (w *inserter) insertValues(ctx context.Context, ids, apps, devs, captures, currencies []string, amounts []int64,
	options []string, refs []*string, secrets []string, items []*string, metadata []string, expires, created []time.Time, hashes [][]byte) (map[string]bool, error) {
	inserted := make(map[string]bool, len(ids))
	b := &pgx.Batch{}
	for lo := 0; lo < len(ids); lo += citusInsertRows {
		hi := min(lo+citusInsertRows, len(ids))
		args := make([]any, 0, (hi-lo)*insertSessionRow.Width())
		for i := lo; i < hi; i++ {
			args = append(args, ids[i], apps[i], devs[i], captures[i], currencies[i], amounts[i], options[i], refs[i],
				secrets[i], items[i], metadata[i], expires[i], created[i], hashes[i])
		}
		b.Queue(insertSessionRow.SQL(hi-lo), args...).Query(markInserted(inserted))
	}
	if err := w.db.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("create sessions: %w", err)
	}
	return inserted, nil
}

// insertSessionRow is one row of insertValues.
var insertSessionRow = multirow.MustParse(`
	INSERT INTO checkout_sessions (id, app_id, developer_id, status, capture_method, currency,
		amount_total, option, client_reference_id, client_secret, line_items, metadata, expires_at, created_at, request_hash)
	VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12, $13, $14)
	ON CONFLICT (id) DO NOTHING RETURNING id`, 14)

// markInserted reads the ids an INSERT … RETURNING id inserted into
// inserted.
func markInserted(inserted map[string]bool) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		var id string
		_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
			inserted[id] = true
			return nil
		})
		return err
	}
}

// citusInsertRows bounds a multi-row insert: 14 parameters a session, far
// below the protocol's 65,535 (insertSessionRow.MaxRows()).
const citusInsertRows = 1000
