package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/internal/leader"
	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/webhooks"
)

// RenewalJob names the renewing among the jobs replicas elect a leader for
// (package leader): one replica at a time runs it.
const RenewalJob int64 = 0x6d696e6970617952 // "minipayR" (settlement is "minipayS")

// roundsMax bounds the rounds of one runDue: each round steps and charges
// everything due, and a round that does nothing ends it.
const roundsMax = 64

// scope is whose time runs: the real time (clock "") or one test clock's.
type scope struct{ clock string }

// subsDueSQL, renewalsDueSQL and invoicesDueSQL select, for a scope ($1)
// at a time ($2), what is due: steps (expiry, notice, the end of a
// subscription canceled at period end), renewals, and retries of open
// invoices. A subscription whose latest invoice is still open waits for
// that invoice's retries before it moves on, so catching up after
// downtime never opens a period while the last is unpaid.
func (sc scope) subsDueSQL() string {
	return `SELECT ` + subColumns + subFrom + ` WHERE ` + sc.subsWhere() + ` AND NOT ` + renewing + `
		ORDER BY s.next_action_at LIMIT $3 FOR UPDATE OF s SKIP LOCKED`
}

func (sc scope) renewalsDueSQL() string {
	return `SELECT ` + subColumns + subFrom + ` WHERE ` + sc.subsWhere() + ` AND ` + renewing + `
		ORDER BY s.next_action_at LIMIT $3`
}

// renewing says a due subscription (of subsWhere) is to renew.
const renewing = `(s.status IN ('trialing', 'active') AND NOT s.cancel_at_period_end AND s.current_period_end <= $2)`

func (sc scope) subsWhere() string {
	where := `s.test_clock_id IS NULL AND $1 = ''`
	if sc.clock != "" {
		where = `s.test_clock_id = $1`
	}
	return where + ` AND s.next_action_at <= $2 AND (s.latest_invoice IS NULL OR NOT EXISTS (
			SELECT 1 FROM subscription_invoices li WHERE li.id = s.latest_invoice AND li.status = 'open'))`
}

func (sc scope) invoicesDueSQL() string {
	where := `i.test_clock_id IS NULL AND $1 = ''`
	if sc.clock != "" {
		where = `i.test_clock_id = $1`
	}
	return `SELECT ` + invoiceColumns + `, ` + subColumns + invoiceFrom + `
		JOIN subscriptions s ON s.id = i.subscription_id JOIN subscription_plans p ON p.id = s.plan_id
		WHERE i.status = 'open' AND ` + where + ` AND i.next_payment_attempt <= $2
		ORDER BY i.next_payment_attempt LIMIT $3`
}

// nextDue is the earliest time anything of the scope falls due.
func (s *Service) nextDue(ctx context.Context, sc scope) (time.Time, bool, error) {
	subs, invs := `s.test_clock_id IS NULL AND $1 = ''`, `test_clock_id IS NULL AND $1 = ''`
	if sc.clock != "" {
		subs, invs = `s.test_clock_id = $1`, `test_clock_id = $1`
	}
	var at *time.Time
	err := s.db.QueryRow(ctx, `SELECT least(
		(SELECT min(s.next_action_at) FROM subscriptions s WHERE `+subs+` AND (s.latest_invoice IS NULL OR NOT EXISTS (
			SELECT 1 FROM subscription_invoices li WHERE li.id = s.latest_invoice AND li.status = 'open'))),
		(SELECT min(next_payment_attempt) FROM subscription_invoices WHERE status = 'open' AND `+invs+`))`, sc.clock).Scan(&at)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next due: %w", err)
	}
	return null.Value(at), at != nil, nil
}

// RenewStats counts what one pass of renewals did, and where its time went.
type RenewStats struct {
	Steps    int // subscriptions moved on: expired, noticed, renewed, ended
	Paid     int // invoices paid
	Failed   int // charges the wallet could not pay (retried later, or the end)
	Canceled int // subscriptions canceled when their retries ran out

	StepTime   time.Duration // stepping due subscriptions (opening invoices)
	ChargeTime time.Duration // charging through the ledger
	FailTime   time.Duration // recording failed charges
}

// did reports whether anything was done.
func (a RenewStats) did() bool { return a.Steps+a.Paid+a.Failed+a.Canceled > 0 }

func (a *RenewStats) add(b RenewStats) {
	a.Steps += b.Steps
	a.Paid += b.Paid
	a.Failed += b.Failed
	a.Canceled += b.Canceled
	a.StepTime += b.StepTime
	a.ChargeTime += b.ChargeTime
	a.FailTime += b.FailTime
}

// RenewDue runs everything due by now on the real time (not on test
// clocks): expiries, notices, renewals, retries, cancellations at period
// end. Safe to run on several replicas at once (each change is guarded and
// each period's charge has one id), though RunRenewals runs it on one.
func (s *Service) RenewDue(ctx context.Context, now time.Time) (RenewStats, error) {
	return s.runDue(ctx, scope{}, now.UTC().Truncate(time.Microsecond))
}

// RunRenewals runs RenewDue every interval until ctx ends, on one replica
// at a time (package leader); the others find the job taken and wait for
// the next tick.
func (s *Service) RunRenewals(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_, err := leader.Run(ctx, s.db, RenewalJob, false, func(ctx context.Context) error {
			began := time.Now()
			st, err := s.RenewDue(ctx, began)
			if st.did() {
				s.log.Info("renewals", "steps", st.Steps, "paid", st.Paid, "failed", st.Failed, "canceled", st.Canceled)
				if s.pass != nil {
					s.pass(st, time.Since(began))
				}
			}
			return err
		})
		if err != nil && ctx.Err() == nil {
			s.log.Error("renewals", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runDue steps and charges everything of the scope due by now, round by
// round, until a round finds nothing to do.
func (s *Service) runDue(ctx context.Context, sc scope, now time.Time) (RenewStats, error) {
	var total RenewStats
	for round := 0; round < roundsMax; round++ {
		var st RenewStats
		for {
			began := time.Now()
			n, err := s.stepDue(ctx, sc, now)
			st.Steps += n
			st.StepTime += time.Since(began)
			if err != nil {
				total.add(st)
				return total, err
			}
			if n < s.batchMax {
				break
			}
		}
		for _, pass := range []batchPass{s.renewDue, s.chargeDue} {
			if err := s.drain(ctx, sc, now, pass, &st); err != nil {
				total.add(st)
				return total, err
			}
		}
		total.add(st)
		if !st.did() {
			break
		}
	}
	return total, nil
}

// batchPass does one batch of due work (renewDue, chargeDue) and returns
// what it did and how many rows it read.
type batchPass func(ctx context.Context, sc scope, now time.Time) (RenewStats, int, error)

// drain runs pass batch after batch, adding what each did to st, until a
// batch comes back short or does nothing.
func (s *Service) drain(ctx context.Context, sc scope, now time.Time, pass batchPass, st *RenewStats) error {
	for {
		cs, read, err := pass(ctx, sc, now)
		st.add(cs)
		if err != nil {
			return err
		}
		if read < s.batchMax || !cs.did() {
			// All read, or a full batch of which nothing could be done
			// (each changed meanwhile): reading it again now would spin.
			return nil
		}
	}
}

// stepDue moves on up to batchMax due subscriptions in one transaction,
// each by one step, and returns how many.
func (s *Service) stepDue(ctx context.Context, sc scope, now time.Time) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sc.subsDueSQL(), sc.clock, now, s.batchMax)
		if err != nil {
			return fmt.Errorf("due subscriptions: %w", err)
		}
		due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Subscription, error) { return scanSub(r) })
		if err != nil {
			return fmt.Errorf("due subscriptions: %w", err)
		}
		var (
			subs   []Subscription
			events []webhooks.Event
		)
		for _, sub := range due {
			next, ev := step(sub, now)
			subs = append(subs, next)
			events = append(events, ev...)
		}
		n = len(subs)
		return writeTx(ctx, tx, subs, nil, nil, events)
	})
	if err != nil {
		return 0, fmt.Errorf("step subscriptions: %w", err)
	}
	return n, nil
}

// step is what is due of sub at now, but a renewal (renewDue's): an
// unsigned one expires; at its period's end one canceled at period end
// ends; before the end, the renewal notice goes out.
func step(sub Subscription, now time.Time) (Subscription, []webhooks.Event) {
	next := sub
	switch {
	case sub.Status == StatusIncomplete:
		next.Status = StatusIncompleteExpired
		next = advanced(next)
		return next, []webhooks.Event{subEvent(webhooks.SubscriptionUpdated, next)}
	case sub.Status != StatusTrialing && sub.Status != StatusActive || !now.Before(sub.PeriodEnd) && !sub.CancelAtPeriodEnd:
		// Listed by an older next_action_at, or a renewal that became due
		// since renewDue looked: nothing for a step to do.
		return advanced(next), nil
	case !now.Before(sub.PeriodEnd):
		next.Status, next.CanceledAt, next.CancelAtPeriodEnd = StatusCanceled, sub.PeriodEnd, false
		next = advanced(next)
		return next, []webhooks.Event{subEvent(webhooks.SubscriptionCanceled, next)}
	default: // the notice is due
		next.NoticeFor = sub.PeriodEnd
		next = advanced(next)
		return next, []webhooks.Event{subEvent(webhooks.SubscriptionRenewalUpcoming, next)}
	}
}

// renewal is sub moved to its next period, with that period's invoice,
// open and due at its start, neither written yet.
func renewal(sub Subscription, now time.Time) (Subscription, Invoice) {
	k := sub.PeriodIndex + 1
	start := Boundary(sub.Anchor, sub.Plan.Interval, sub.Plan.IntervalCount, k)
	end := Boundary(sub.Anchor, sub.Plan.Interval, sub.Plan.IntervalCount, k+1)
	inv := newInvoice(sub, start, end, now)
	next := sub
	next.PeriodIndex, next.PeriodStart, next.PeriodEnd, next.LatestInvoice = k, start, end, inv.ID
	return next, inv
}

// dueCharge is an invoice to charge with its subscription: an open one
// (a retry), or a renewal's, new, with the subscription read before it
// moved to the invoice's period (next is it moved).
type dueCharge struct {
	inv  Invoice
	sub  Subscription
	next Subscription
	new  bool
}

// renewDue renews up to batchMax due subscriptions: each period's invoice
// is made paid by the ledger transfer that charges it, with the
// subscription moved to that period, so a renewal the wallet can pay is
// one transaction, gathered with others into the ledger's groups. It
// returns what it did and how many subscriptions it read.
func (s *Service) renewDue(ctx context.Context, sc scope, now time.Time) (RenewStats, int, error) {
	rows, err := s.db.Query(ctx, sc.renewalsDueSQL(), sc.clock, now, s.batchMax)
	if err != nil {
		return RenewStats{}, 0, fmt.Errorf("due renewals: %w", err)
	}
	due, err := pgx.AppendRows(make([]dueCharge, 0, s.batchMax), rows, func(r pgx.CollectableRow) (dueCharge, error) {
		sub, err := scanSub(r)
		if err != nil {
			return dueCharge{}, err
		}
		next, inv := renewal(sub, now)
		return dueCharge{inv: inv, sub: sub, next: next, new: true}, nil
	})
	if err != nil {
		return RenewStats{}, 0, fmt.Errorf("due renewals: %w", err)
	}
	st, err := s.chargeAll(ctx, due, now)
	return st, len(due), err
}

// chargeDue charges up to batchMax due invoices through the ledger's
// poster, many at once so that it writes them in groups, then records the
// charges the wallets could not pay in one transaction. It returns what it
// did and how many invoices it read.
func (s *Service) chargeDue(ctx context.Context, sc scope, now time.Time) (RenewStats, int, error) {
	rows, err := s.db.Query(ctx, sc.invoicesDueSQL(), sc.clock, now, s.batchMax)
	if err != nil {
		return RenewStats{}, 0, fmt.Errorf("due invoices: %w", err)
	}
	due, err := pgx.AppendRows(make([]dueCharge, 0, s.batchMax), rows, func(r pgx.CollectableRow) (dueCharge, error) {
		var dc dueCharge
		var err error
		dc.inv, dc.sub, err = scanInvoiceSub(r)
		return dc, err
	})
	if err != nil {
		return RenewStats{}, 0, fmt.Errorf("due invoices: %w", err)
	}
	for i := range due {
		due[i].next = due[i].sub
	}
	st, err := s.chargeAll(ctx, due, now)
	return st, len(due), err
}

// chargeAll charges due through the ledger's poster, many at once so that
// it writes them in groups, then records the charges the wallets could not
// pay in one transaction.
func (s *Service) chargeAll(ctx context.Context, due []dueCharge, now time.Time) (RenewStats, error) {
	began := time.Now()
	// The ledger looks up each transfer's accounts in its cache, which a
	// wallet charged once a month is never in: read them all with one query
	// instead of one each.
	refs := make([]string, 0, 3*len(due))
	for _, dc := range due {
		cur := dc.inv.Currency
		refs = append(refs, chart.Wallet(dc.sub.UserID, cur), chart.DeveloperPending(dc.sub.DeveloperID, cur), chart.Fees(cur))
	}
	if err := s.ledger.Preload(ctx, refs); err != nil {
		return RenewStats{}, fmt.Errorf("renewal charges: %w", err)
	}
	var (
		mu       sync.Mutex
		st       RenewStats
		failed   []dueCharge
		firstErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, s.inFlight)
	)
	for i := range due {
		// By pointer: a copy of a charge captured by its goroutine would be
		// one more allocation of its two subscriptions and invoice.
		dc := &due[i]
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			t0 := time.Now()
			err := s.charge(ctx, dc, now)
			if s.observe != nil {
				s.observe(time.Since(t0))
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				st.Paid++
			case errors.Is(err, ledger.ErrInsufficientFunds):
				failed = append(failed, *dc)
			case errors.Is(err, errStateChanged):
				// changed meanwhile (paid, voided, canceled): read again next round
			default:
				s.log.Error("renewal charge", "invoice", dc.inv.ID, "err", err)
				if firstErr == nil {
					firstErr = err
				}
			}
		}()
	}
	wg.Wait()
	st.ChargeTime = time.Since(began)
	began = time.Now()
	fs, err := s.chargesFailed(ctx, failed, now)
	fs.FailTime = time.Since(began)
	st.add(fs)
	if err == nil {
		err = firstErr
	}
	return st, err
}

// scanInvoiceSub scans a row of invoiceColumns followed by subColumns.
func scanInvoiceSub(r pgx.Row) (Invoice, Subscription, error) {
	var (
		xi invoiceScan
		xs subScan
	)
	if err := r.Scan(append(xi.dest(), xs.dest()...)...); err != nil {
		return Invoice{}, Subscription{}, err
	}
	sub, err := xs.finish()
	return xi.finish(), sub, err
}

// charge pays dc's invoice from the subscriber's wallet: one ledger
// transfer (its id derived from the invoice's, so the period is paid at
// most once) with the invoice paid, the subscription active again on its
// schedule, the payment's records and the events.
func (s *Service) charge(ctx context.Context, dc *dueCharge, now time.Time) error {
	paid, pay, err := s.capture(dc.next, dc.inv, now)
	if err != nil {
		return err
	}
	next := dc.next
	next.Status = StatusActive
	next = advanced(next)
	evs := []webhooks.Event{invoiceEvent(webhooks.InvoicePaid, paid)}
	if dc.new || dc.sub.Status != StatusActive {
		// A new period, or active again (after its trial or a retry).
		evs = append(evs, subEvent(webhooks.SubscriptionUpdated, next))
	}
	events, err := eventRows(evs...)
	if err != nil {
		return err
	}
	// The wallet and the developer's accounts exist: signing made them.
	_, err = s.ledger.Post(ctx, payments.Transfer(pay, false), chargeStatements(paid, dc.new, next, s.payments.Record(ctx, pay), events)...)
	if err != nil {
		return fmt.Errorf("charge %s: %w", dc.inv.ID, err)
	}
	return nil
}

// chargesFailed records charges the wallets could not pay: each invoice
// counts the attempt and waits for its next retry (1, 3, 5 and 7 days
// after its due date) with its subscription past_due; after the last, the
// invoice is void and the subscription canceled (payment_failed). All in
// one transaction; if something changed meanwhile, one by one.
func (s *Service) chargesFailed(ctx context.Context, failed []dueCharge, now time.Time) (RenewStats, error) {
	if len(failed) == 0 {
		return RenewStats{}, nil
	}
	st, err := s.writeFailures(ctx, failed, now)
	if !errors.Is(err, errStateChanged) {
		return st, err
	}
	st = RenewStats{}
	for _, f := range failed {
		one, err := s.writeFailures(ctx, []dueCharge{f}, now)
		switch {
		case errors.Is(err, errStateChanged):
			// changed meanwhile: read again next round
		case err != nil:
			return st, err
		default:
			st.add(one)
		}
	}
	return st, nil
}

func (s *Service) writeFailures(ctx context.Context, failed []dueCharge, now time.Time) (RenewStats, error) {
	var (
		st      RenewStats
		subs    []Subscription
		created []Invoice
		invs    []Invoice
		events  []webhooks.Event
	)
	for _, f := range failed {
		inv, sub := f.inv, f.sub
		inv.AttemptCount++
		inv.Version++
		next := f.next
		st.Failed++
		if inv.AttemptCount > len(retryAfterDays) {
			inv.Status, inv.NextPaymentAttempt, inv.VoidedAt = InvoiceVoid, time.Time{}, now
			next.Status, next.CanceledAt, next.CancellationReason, next.CancelAtPeriodEnd = StatusCanceled, now, ReasonPaymentFailed, false
			next = advanced(next)
			events = append(events, invoiceEvent(webhooks.InvoicePaymentFailed, inv), subEvent(webhooks.SubscriptionCanceled, next))
			st.Canceled++
		} else {
			inv.NextPaymentAttempt = inv.PeriodStart.AddDate(0, 0, retryAfterDays[inv.AttemptCount-1])
			events = append(events, invoiceEvent(webhooks.InvoicePaymentFailed, inv))
			next.Status = StatusPastDue
			next = advanced(next)
			if sub.Status != StatusPastDue {
				events = append(events, subEvent(webhooks.SubscriptionPastDue, next))
			}
		}
		subs = append(subs, next)
		if f.new {
			created = append(created, inv)
		} else {
			invs = append(invs, inv)
		}
	}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error { return writeTx(ctx, tx, subs, created, invs, events) })
	if err != nil {
		return RenewStats{}, err
	}
	return st, nil
}
