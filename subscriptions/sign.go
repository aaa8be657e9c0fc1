package subscriptions

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/internal/pgarray"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/webhooks"
)

// Sign is the user's agreement, given through the host's sheet: the
// host's wallet service calls it with the subscription's client secret.
// Without a trial the first period is charged at once, in one ledger
// transfer that commits the paid invoice, the payment, the subscription
// (active) and the events; a wallet that cannot pay is
// ErrInsufficientFunds and leaves the subscription incomplete, nothing
// written. With a trial it starts trialing and the first charge falls at
// the trial's end.
func (s *Service) Sign(ctx context.Context, subID, userID, clientSecret string) (Subscription, error) {
	// A signature that lost to another in the same ledger group learns it
	// before the winner's group has committed: the subscription still
	// reads unsigned. Signing again a moment later gives the true answer
	// (already signed, or this one wins if the other failed).
	for attempt := 1; ; attempt++ {
		sub, err := s.sign(ctx, subID, userID, clientSecret)
		if !errors.Is(err, errStateChanged) || attempt == signAttemptsMax {
			return sub, err
		}
		select {
		case <-ctx.Done():
			return Subscription{}, fmt.Errorf("sign %s: %w", subID, ctx.Err())
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
}

// signAttemptsMax bounds the signatures tried for one Sign.
const signAttemptsMax = 5

func (s *Service) sign(ctx context.Context, subID, userID, clientSecret string) (Subscription, error) {
	if !apps.ValidUserID(userID) {
		return Subscription{}, minipay.Field("user_id", apps.ErrUserIDInvalid)
	}
	sub, err := s.Get(ctx, "", subID)
	if err != nil {
		return Subscription{}, err
	}
	if subtle.ConstantTimeCompare([]byte(clientSecret), []byte(sub.ClientSecret)) != 1 {
		return Subscription{}, minipay.Field("client_secret", ErrClientSecret)
	}
	now, err := s.clockNow(ctx, sub)
	if err != nil {
		return Subscription{}, err
	}
	if err := signable(sub, now); err != nil {
		return Subscription{}, err
	}
	// Renewals post to these accounts without asking: they exist from here on.
	if err := s.payments.EnsureAccounts(ctx, userID, sub.DeveloperID, sub.Plan.Currency); err != nil {
		return Subscription{}, err
	}
	next := sub
	next.UserID, next.Customer = userID, s.apps.Pseudonym(sub.AppID, userID)
	if sub.Plan.TrialPeriodDays > 0 {
		return s.startTrial(ctx, next, now)
	}
	next.Status, next.Anchor, next.PeriodIndex = StatusActive, now, 0
	next.PeriodStart, next.PeriodEnd = now, Boundary(now, sub.Plan.Interval, sub.Plan.IntervalCount, 1)
	inv := newInvoice(next, next.PeriodStart, next.PeriodEnd, now)
	next.LatestInvoice = inv.ID
	next = advanced(next)
	paid, pay, err := s.capture(next, inv, now)
	if err != nil {
		return Subscription{}, err
	}
	events, err := eventRows(subEvent(webhooks.SubscriptionActivated, next), invoiceEvent(webhooks.InvoicePaid, paid))
	if err != nil {
		return Subscription{}, err
	}
	_, err = s.ledger.Post(ctx, payments.Transfer(pay, false), chargeStatements(paid, true, next, s.payments.Record(ctx, pay), events)...)
	switch {
	case errors.Is(err, ledger.ErrInsufficientFunds):
		// A concurrent signature that won may have spent the money: then
		// that is the answer, as it would have been a moment later.
		if _, serr := s.signedMeanwhile(ctx, subID); !errors.Is(serr, errStateChanged) {
			return Subscription{}, serr
		}
		// The ledger's error names the wallet's account, and with it the
		// user; the caller is told only what it needs.
		return Subscription{}, fmt.Errorf("sign %s: %w", subID, ErrInsufficientFunds)
	case errors.Is(err, errStateChanged):
		return s.signedMeanwhile(ctx, subID)
	case err != nil:
		return Subscription{}, fmt.Errorf("sign %s: %w", subID, err)
	}
	return next, nil
}

// signable says why sub cannot be signed at now, if it cannot.
func signable(sub Subscription, now time.Time) error {
	switch sub.Status {
	case StatusIncomplete:
		if !now.Before(sub.ExpiresAt) {
			return fmt.Errorf("%w: %s expired at %s", ErrExpired, sub.ID, minipay.Timestamp(sub.ExpiresAt))
		}
		return nil
	case StatusIncompleteExpired:
		return fmt.Errorf("%w: %s", ErrExpired, sub.ID)
	case StatusCanceled:
		return fmt.Errorf("%w: %s", ErrCanceled, sub.ID)
	}
	return fmt.Errorf("%w: %s is %s", ErrAlreadySigned, sub.ID, sub.Status)
}

// signedMeanwhile explains a signature that lost a race: another signed
// it, or it expired.
func (s *Service) signedMeanwhile(ctx context.Context, subID string) (Subscription, error) {
	sub, err := s.Get(ctx, "", subID)
	if err != nil {
		return Subscription{}, err
	}
	now, err := s.clockNow(ctx, sub)
	if err != nil {
		return Subscription{}, err
	}
	if err := signable(sub, now); err != nil {
		return Subscription{}, err
	}
	return Subscription{}, fmt.Errorf("sign %s: %w", subID, errStateChanged)
}

// startTrial signs next into its free trial: the first period ends, and
// the billing anchor sits, at the trial's end.
func (s *Service) startTrial(ctx context.Context, next Subscription, now time.Time) (Subscription, error) {
	end := now.AddDate(0, 0, next.Plan.TrialPeriodDays)
	next.Status, next.Anchor, next.PeriodIndex = StatusTrialing, end, -1
	next.PeriodStart, next.PeriodEnd, next.TrialEnd = now, end, end
	next = advanced(next)
	err := s.write(ctx, []Subscription{next}, nil, nil, []webhooks.Event{subEvent(webhooks.SubscriptionActivated, next)})
	if errors.Is(err, errStateChanged) {
		return s.signedMeanwhile(ctx, next.ID)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("sign %s: %w", next.ID, err)
	}
	return next, nil
}

// CancelParams say who cancels a subscription and when.
type CancelParams struct {
	// AppID cancels as the app's developer; empty with UserID cancels as
	// the user (through the host).
	AppID          string
	UserID         string
	SubscriptionID string
	// AtPeriodEnd lets the period paid for run out first; a user's cancel
	// always does (the user keeps what was paid for).
	AtPeriodEnd bool
}

// Cancel ends a subscription now (the developer's choice: its open invoice
// is voided), or at the end of its period (the developer's choice, or
// always for the user who signed it). Canceling at period end again
// changes nothing; canceling what is canceled is ErrCanceled.
func (s *Service) Cancel(ctx context.Context, p CancelParams) (Subscription, error) {
	if p.AppID == "" && !apps.ValidUserID(p.UserID) {
		return Subscription{}, minipay.Field("user_id", apps.ErrUserIDInvalid)
	}
	for attempt := 0; ; attempt++ {
		sub, err := s.cancelOnce(ctx, p)
		if !errors.Is(err, errStateChanged) || attempt >= 8 {
			return sub, err
		}
	}
}

func (s *Service) cancelOnce(ctx context.Context, p CancelParams) (Subscription, error) {
	sub, err := s.Get(ctx, p.AppID, p.SubscriptionID)
	if err != nil {
		return Subscription{}, err
	}
	reason := ReasonDeveloper
	if p.AppID == "" {
		reason, p.AtPeriodEnd = ReasonUser, true
		switch {
		case sub.UserID == "":
			return Subscription{}, fmt.Errorf("%w: %s", ErrNotSigned, sub.ID)
		case sub.UserID != p.UserID:
			return Subscription{}, minipay.Field("user_id", fmt.Errorf("%w: %s", ErrNotSubscriber, sub.ID))
		}
	}
	switch sub.Status {
	case StatusCanceled, StatusIncompleteExpired:
		return Subscription{}, fmt.Errorf("%w: %s is %s", ErrCanceled, sub.ID, sub.Status)
	case StatusIncomplete:
		p.AtPeriodEnd = false // nothing was paid for: it ends now
	}
	now, err := s.clockNow(ctx, sub)
	if err != nil {
		return Subscription{}, err
	}
	if p.AtPeriodEnd {
		if sub.CancelAtPeriodEnd {
			return sub, nil
		}
		next := sub
		next.CancelAtPeriodEnd, next.CancellationReason = true, reason
		next = advanced(next)
		err = s.write(ctx, []Subscription{next}, nil, nil, []webhooks.Event{subEvent(webhooks.SubscriptionUpdated, next)})
		return next, err
	}
	next := sub
	next.Status, next.CanceledAt, next.CancellationReason, next.CancelAtPeriodEnd = StatusCanceled, now, reason, false
	next = advanced(next)
	var voided []Invoice
	if sub.LatestInvoice != "" {
		inv, err := s.GetInvoice(ctx, "", sub.LatestInvoice)
		if err != nil {
			return Subscription{}, err
		}
		if inv.Status == InvoiceOpen {
			voided = append(voided, voidInvoice(inv, now))
		}
	}
	err = s.write(ctx, []Subscription{next}, nil, voided, []webhooks.Event{subEvent(webhooks.SubscriptionCanceled, next)})
	return next, err
}

// voidInvoice is inv voided at now: it will not be tried again.
func voidInvoice(inv Invoice, now time.Time) Invoice {
	inv.Status, inv.NextPaymentAttempt, inv.VoidedAt, inv.Version = InvoiceVoid, time.Time{}, now, inv.Version+1
	return inv
}

// write commits, in one database transaction, subscriptions and invoices
// as changes left them (each only if unchanged since it was read; else
// errStateChanged and nothing is written), new invoices and events.
func (s *Service) write(ctx context.Context, subs []Subscription, created, changed []Invoice, events []webhooks.Event) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		return writeTx(ctx, tx, subs, created, changed, events)
	})
}

func writeTx(ctx context.Context, tx pgx.Tx, subs []Subscription, created, changed []Invoice, events []webhooks.Event) error {
	var rows [][]any
	for _, sub := range subs {
		rows = append(rows, saveRow(sub))
	}
	if err := execRows(ctx, tx, saveSubsSQL, rows, len(subs)); err != nil {
		return err
	}
	rows = rows[:0]
	for _, inv := range created {
		rows = append(rows, insertRow(inv))
	}
	if err := execRows(ctx, tx, insertInvoicesSQL, rows, len(created)); err != nil {
		return err
	}
	rows = rows[:0]
	for _, inv := range changed {
		rows = append(rows, saveInvoiceRow(inv))
	}
	if err := execRows(ctx, tx, saveInvoicesSQL, rows, len(changed)); err != nil {
		return err
	}
	return webhooks.EmitAll(ctx, tx, events)
}

// execRows runs set-based sql once with rows as its column arrays. want,
// if not negative, is how many rows it must return (the guarded updates):
// fewer is errStateChanged.
func execRows(ctx context.Context, tx pgx.Tx, sql string, rows [][]any, want int) error {
	if len(rows) == 0 {
		return nil
	}
	cols := make([]any, len(rows[0]))
	for c := range cols {
		col := make([]any, len(rows))
		for r, row := range rows {
			col[r] = row[c]
		}
		cols[c] = pgarray.Column(col)
	}
	tag, err := tx.Exec(ctx, sql, cols...)
	if err != nil {
		return fmt.Errorf("write %d rows: %w", len(rows), err)
	}
	if want >= 0 && tag.RowsAffected() != int64(want) {
		return errStateChanged
	}
	return nil
}

// eventRows are events as set-based ledger statements.
func eventRows(events ...webhooks.Event) ([]ledger.Statement, error) {
	out := make([]ledger.Statement, 0, len(events))
	for _, e := range events {
		sql, row, err := webhooks.InsertRow(e)
		if err != nil {
			return nil, err
		}
		out = append(out, ledger.Statement{SQL: sql, Args: row, Row: true})
	}
	return out, nil
}
