package settlement

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/webhooks"
)

// Payout statuses.
const (
	PayoutInTransit = "in_transit"
	PayoutPaid      = "paid"
)

// Payout is one transfer of a developer's settled money in one currency:
// in transit once the run moved it out of the pending balance, paid once
// finance marks the bank transfer done.
type Payout struct {
	ID          string
	RunID       string
	DeveloperID string
	Currency    string
	Amount      int64 // minor units, > 0
	Status      string
	Created     time.Time
	PaidAt      time.Time // zero until paid
	Version     int
}

// PayoutObject is a payout as the API and webhooks show it.
type PayoutObject struct {
	ID            string  `json:"id"`
	Object        string  `json:"object"`
	Developer     string  `json:"developer"`
	SettlementRun string  `json:"settlement_run"`
	Currency      string  `json:"currency"`
	Amount        string  `json:"amount"`
	Status        string  `json:"status"`
	Created       string  `json:"created"`
	PaidAt        *string `json:"paid_at"`
	Version       int     `json:"version"`
}

// Public renders p for the API and events.
func (p Payout) Public() PayoutObject {
	o := PayoutObject{ID: p.ID, Object: "payout", Developer: p.DeveloperID, SettlementRun: p.RunID, Currency: p.Currency,
		Amount: ledger.FormatAmount(p.Currency, p.Amount), Status: p.Status, Created: minipay.Timestamp(p.Created), Version: p.Version}
	if !p.PaidAt.IsZero() {
		t := minipay.Timestamp(p.PaidAt)
		o.PaidAt = &t
	}
	return o
}

// plannedPayout is a payout a run has chosen and may not have paid yet.
type plannedPayout struct {
	id, developer, currency string
	net                     int64
}

// pay is step 3: post the transfer of every planned payout not yet paid.
// It returns how many this call posted.
func (s *Service) pay(ctx context.Context, runID string, cutoff time.Time) (int, error) {
	rows, err := s.db.Query(ctx, `
		SELECT i.payout_id, i.developer_id, i.currency, i.net FROM settlement_items i
		WHERE i.run_id = $1 AND i.payout_id IS NOT NULL
		  AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.id = i.payout_id)
		ORDER BY i.payout_id`, runID)
	if err != nil {
		return 0, fmt.Errorf("pay run %s: %w", runID, err)
	}
	// At most one row per developer and currency: bounded by the number of
	// developers, a few hundred bytes each.
	todo, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (plannedPayout, error) {
		var p plannedPayout
		return p, r.Scan(&p.id, &p.developer, &p.currency, &p.net)
	})
	if err != nil {
		return 0, fmt.Errorf("pay run %s: %w", runID, err)
	}
	ensured := map[string]bool{}
	for _, p := range todo {
		if ensured[p.currency] {
			continue
		}
		if _, err := s.ledger.EnsureAccount(ctx, ledger.AccountSpec{Code: chart.PayoutsInTransit(p.currency), Currency: p.currency,
			NormalBalance: ledger.CreditNormal}); err != nil {
			return 0, fmt.Errorf("pay run %s: %w", runID, err)
		}
		ensured[p.currency] = true
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		n     int
		sem   = make(chan struct{}, s.opts.PayConcurrency)
	)
	for _, p := range todo {
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := s.postPayout(ctx, runID, cutoff, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			n++
			s.failpoint("payout")
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	if first != nil {
		return n, fmt.Errorf("pay run %s: %w", runID, first)
	}
	return n, nil
}

// postPayout moves one payout's money from the developer's pending balance
// to payouts in transit, with the payout row, its balance transaction and
// the payout.created event in the same database transaction.
func (s *Service) postPayout(ctx context.Context, runID string, cutoff time.Time, p plannedPayout) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	po := Payout{ID: p.id, RunID: runID, DeveloperID: p.developer, Currency: p.currency, Amount: p.net,
		Status: PayoutInTransit, Created: now, Version: 1}
	ev, evArgs, err := webhooks.Insert(webhooks.Event{Type: webhooks.PayoutCreated, DeveloperID: p.developer,
		Object: po.Public(), ObjectID: po.ID, ObjectVersion: po.Version})
	if err != nil {
		return err
	}
	tr := ledger.Transfer{ID: chart.Payout(p.id), Code: "payout",
		Postings: []ledger.Posting{
			{Account: chart.DeveloperPending(p.developer, p.currency), Debit: p.net},
			{Account: chart.PayoutsInTransit(p.currency), Credit: p.net},
		},
		Metadata: map[string]string{"minipay_payout": p.id, "minipay_settlement_run": runID, "minipay_developer": p.developer}}
	_, err = s.ledger.Post(ctx, tr,
		ledger.Statement{SQL: `INSERT INTO payouts (id, run_id, developer_id, currency, amount, status, transfer_id, created_at)
			VALUES ($1, $2, $3, $4, $5, 'in_transit', $6, $7)`,
			Args: []any{p.id, runID, p.developer, p.currency, p.net, tr.ID, now}},
		// The developer's own record of the payout, settled by itself.
		ledger.Statement{SQL: `INSERT INTO balance_transactions (id, developer_id, type, currency, amount, fee, net,
			source_id, available_on, payout_id) VALUES ($1, $2, 'payout', $3, $4, 0, $4, $5, $6, $5)`,
			Args: []any{id.New("txn"), p.developer, p.currency, -p.net, p.id, cutoff}},
		ledger.Statement{SQL: ev, Args: evArgs})
	if err != nil {
		return fmt.Errorf("payout %s: %w", p.id, err)
	}
	return nil
}

const payoutColumns = `id, run_id, developer_id, currency, amount, status, created_at, paid_at, version`

func scanPayout(row pgx.Row) (Payout, error) {
	var (
		p    Payout
		paid *time.Time
	)
	err := row.Scan(&p.ID, &p.RunID, &p.DeveloperID, &p.Currency, &p.Amount, &p.Status, &p.Created, &paid, &p.Version)
	if paid != nil {
		p.PaidAt = *paid
	}
	return p, err
}

// GetPayout returns a payout. developerID, when not empty, restricts it to
// that developer's payouts: another's is ErrPayoutNotFound.
func (s *Service) GetPayout(ctx context.Context, developerID, payoutID string) (Payout, error) {
	p, err := scanPayout(s.db.QueryRow(ctx, `SELECT `+payoutColumns+` FROM payouts WHERE id = $1`, payoutID))
	if errors.Is(err, pgx.ErrNoRows) || err == nil && developerID != "" && p.DeveloperID != developerID {
		return Payout{}, fmt.Errorf("%w: %s", ErrPayoutNotFound, payoutID)
	}
	if err != nil {
		return Payout{}, fmt.Errorf("get payout %s: %w", payoutID, err)
	}
	return p, nil
}

// PayoutFilter selects payouts to list. Empty fields select everything.
type PayoutFilter struct {
	DeveloperID   string
	RunID         string
	Status        string // PayoutInTransit or PayoutPaid
	Limit         int    // 1–100
	StartingAfter string
}

// ListPayouts pages through payouts, newest first.
func (s *Service) ListPayouts(ctx context.Context, f PayoutFilter) ([]Payout, bool, error) {
	if f.StartingAfter == "" {
		f.StartingAfter = "\uffff"
	}
	rows, err := s.db.Query(ctx, `SELECT `+payoutColumns+` FROM payouts
		WHERE ($1 = '' OR developer_id = $1) AND ($2 = '' OR run_id = $2) AND ($5 = '' OR status = $5) AND id < $3
		ORDER BY id DESC LIMIT $4`, f.DeveloperID, f.RunID, f.StartingAfter, f.Limit+1, f.Status)
	if err != nil {
		return nil, false, fmt.Errorf("list payouts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Payout, error) { return scanPayout(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list payouts: %w", err)
	}
	if len(out) > f.Limit {
		return out[:f.Limit], true, nil
	}
	return out, false, nil
}

// MarkPaid records that a payout's bank transfer happened: one ledger
// transfer from payouts in transit to the platform's funding account, the
// payout's new status and the payout.paid event, atomically. Marking a
// paid payout again returns it unchanged.
func (s *Service) MarkPaid(ctx context.Context, payoutID string) (Payout, error) {
	p, err := s.GetPayout(ctx, "", payoutID)
	if err != nil {
		return Payout{}, err
	}
	if p.Status == PayoutPaid {
		return p, nil
	}
	// The funding account is an asset (the platform's bank): debit-normal,
	// as checkout creates it for top-ups.
	if _, err := s.ledger.EnsureAccount(ctx, chart.FundingAccount(p.Currency)); err != nil {
		return Payout{}, fmt.Errorf("mark payout %s paid: %w", payoutID, err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	next := p
	next.Status, next.PaidAt, next.Version = PayoutPaid, now, p.Version+1
	ev, evArgs, err := webhooks.Insert(webhooks.Event{Type: webhooks.PayoutPaid, DeveloperID: p.DeveloperID,
		Object: next.Public(), ObjectID: p.ID, ObjectVersion: next.Version})
	if err != nil {
		return Payout{}, err
	}
	tr := ledger.Transfer{ID: chart.PayoutPaid(p.ID), Code: "payout_paid",
		Postings: []ledger.Posting{
			{Account: chart.PayoutsInTransit(p.Currency), Debit: p.Amount},
			{Account: chart.Funding(p.Currency), Credit: p.Amount},
		},
		Metadata: map[string]string{"minipay_payout": p.ID, "minipay_developer": p.DeveloperID}}
	_, err = s.ledger.Post(ctx, tr,
		ledger.Statement{SQL: `UPDATE payouts SET status = 'paid', paid_transfer_id = $2, paid_at = $3, version = version + 1
			WHERE id = $1 AND status = 'in_transit'`, Args: []any{p.ID, tr.ID, now}, Check: ledger.ExpectRows(1, ErrPayoutChanged)},
		ledger.Statement{SQL: ev, Args: evArgs})
	if err != nil && !errors.Is(err, ErrPayoutChanged) {
		return Payout{}, fmt.Errorf("mark payout %s paid: %w", payoutID, err)
	}
	return s.GetPayout(ctx, "", payoutID)
}
