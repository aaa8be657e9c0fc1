package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/payments"
)

// Statuses of a test clock.
const (
	ClockReady     = "ready"
	ClockAdvancing = "advancing"
)

// clockHold is how long an advance holds its clock; a crashed advance lets
// go of it then.
const clockHold = 10 * time.Minute

// Clock is a test clock: a sandbox's own time for the subscriptions made
// on it.
type Clock struct {
	ID         string
	AppID      string
	FrozenTime time.Time
	Status     string
	Created    time.Time
}

// ClockObject is a test clock's wire shape.
type ClockObject struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	FrozenTime string `json:"frozen_time"`
	Status     string `json:"status"`
	Created    string `json:"created"`
}

// Public is the clock's wire shape.
func (c Clock) Public() ClockObject {
	return ClockObject{ID: c.ID, Object: "test_clock", FrozenTime: minipay.Timestamp(c.FrozenTime), Status: c.Status,
		Created: minipay.Timestamp(c.Created)}
}

// CreateClock makes a test clock of app appID frozen at frozen (sandboxes
// only). id and requestHash are as for PlanParams.
func (s *Service) CreateClock(ctx context.Context, clockID string, requestHash []byte, appID string, frozen time.Time) (Clock, error) {
	if !s.sandbox {
		return Clock{}, ErrSandboxOnly
	}
	if frozen.IsZero() {
		return Clock{}, minipay.Field("frozen_time", fmt.Errorf("%w: frozen_time", ErrMissing))
	}
	if clockID == "" {
		clockID = id.New("clock")
	}
	c := Clock{ID: clockID, AppID: appID, FrozenTime: frozen.UTC().Truncate(time.Microsecond), Status: ClockReady, Created: utcNow()}
	_, err := s.db.Exec(ctx, `INSERT INTO test_clocks (id, app_id, frozen_time, status, request_hash, created_at)
		VALUES ($1, $2, $3, 'ready', $4, $5)`, c.ID, c.AppID, c.FrozenTime, requestHash, c.Created)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		var stored []byte
		if err := s.db.QueryRow(ctx, `SELECT request_hash FROM test_clocks WHERE id = $1 AND app_id = $2`, c.ID, appID).
			Scan(&stored); err != nil {
			return Clock{}, fmt.Errorf("create test clock %s: %w", c.ID, err)
		}
		if err := idempotency.SameRequest(c.ID, stored, requestHash); err != nil {
			return Clock{}, err
		}
		return s.GetClock(ctx, appID, c.ID)
	}
	if err != nil {
		return Clock{}, fmt.Errorf("create test clock: %w", err)
	}
	return c, nil
}

// GetClock returns test clock clockID of app appID (sandboxes only).
func (s *Service) GetClock(ctx context.Context, appID, clockID string) (Clock, error) {
	if !s.sandbox {
		return Clock{}, ErrSandboxOnly
	}
	var c Clock
	err := s.db.QueryRow(ctx, `SELECT id, app_id, frozen_time, status, created_at FROM test_clocks WHERE id = $1`, clockID).
		Scan(&c.ID, &c.AppID, &c.FrozenTime, &c.Status, &c.Created)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && c.AppID != appID {
		return Clock{}, fmt.Errorf("%w: %s", ErrClockNotFound, clockID)
	}
	if err != nil {
		return Clock{}, fmt.Errorf("get test clock %s: %w", clockID, err)
	}
	c.FrozenTime, c.Created = c.FrozenTime.UTC(), c.Created.UTC()
	return c, nil
}

// clockNow is the time sub lives by: its test clock's, or the real time.
func (s *Service) clockNow(ctx context.Context, sub Subscription) (time.Time, error) {
	if sub.TestClockID == "" {
		return utcNow(), nil
	}
	var t time.Time
	if err := s.db.QueryRow(ctx, `SELECT frozen_time FROM test_clocks WHERE id = $1`, sub.TestClockID).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("test clock of %s: %w", sub.ID, err)
	}
	return t.UTC(), nil
}

// paymentTime is the time pay lives by: for an invoice on a test clock,
// the clock's; for every other payment, the real time.
func (s *Service) paymentTime(ctx context.Context, pay payments.Payment) (time.Time, error) {
	if pay.Kind() != payments.KindInvoice {
		return utcNow(), nil
	}
	var clockID *string
	err := s.db.QueryRow(ctx, `SELECT test_clock_id FROM subscription_invoices WHERE id = $1 AND app_id = $2`,
		pay.ID, pay.AppID).Scan(&clockID)
	if err != nil {
		return time.Time{}, fmt.Errorf("clock of invoice %s: %w", pay.ID, err)
	}
	if clockID == nil {
		return utcNow(), nil
	}
	var t time.Time
	if err := s.db.QueryRow(ctx, `SELECT frozen_time FROM test_clocks WHERE id = $1`, *clockID).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("test clock of invoice %s: %w", pay.ID, err)
	}
	return t.UTC(), nil
}

// Advance moves test clock clockID of app appID to to, running in time
// order every trial end, notice, renewal, retry, expiry and cancellation
// that falls due on it on the way, and returns the clock once it is ready
// at to. A clock moves only forward, at most two years at a time; one
// advance at a time (ErrClockAdvancing).
func (s *Service) Advance(ctx context.Context, appID, clockID string, to time.Time) (Clock, error) {
	c, err := s.GetClock(ctx, appID, clockID)
	if err != nil {
		return Clock{}, err
	}
	to = to.UTC().Truncate(time.Microsecond)
	switch {
	case to.IsZero():
		return Clock{}, minipay.Field("frozen_time", fmt.Errorf("%w: frozen_time", ErrMissing))
	case !to.After(c.FrozenTime):
		return Clock{}, minipay.Field("frozen_time", fmt.Errorf("%w: it is at %s", ErrClockBackwards, minipay.Timestamp(c.FrozenTime)))
	case to.Sub(c.FrozenTime) > ClockAdvanceMax:
		return Clock{}, minipay.Field("frozen_time", fmt.Errorf("%w: it is at %s", ErrClockTooFar, minipay.Timestamp(c.FrozenTime)))
	}
	tag, err := s.db.Exec(ctx, `UPDATE test_clocks SET status = 'advancing', advancing_until = $3
		WHERE id = $1 AND frozen_time = $2 AND (status = 'ready' OR advancing_until < now())`,
		c.ID, c.FrozenTime, time.Now().Add(clockHold))
	if err != nil {
		return Clock{}, fmt.Errorf("advance %s: %w", c.ID, err)
	}
	if tag.RowsAffected() != 1 {
		return Clock{}, fmt.Errorf("%w: %s", ErrClockAdvancing, c.ID)
	}
	if err := s.advance(ctx, c, to); err != nil {
		// Let go of the clock where it got to, so the developer can see
		// how far it came and advance again.
		_, rerr := s.db.Exec(context.WithoutCancel(ctx), `UPDATE test_clocks SET status = 'ready', advancing_until = NULL
			WHERE id = $1`, c.ID)
		return Clock{}, errors.Join(err, rerr)
	}
	return s.GetClock(ctx, appID, c.ID)
}

// errClockStuck: something due on a clock could not be done (logged).
var errClockStuck = errors.New("subscriptions: something due on the test clock could not be done")

// advance runs what falls due on clock c up to to, moving the clock to
// each due time in turn, and leaves it ready at to.
func (s *Service) advance(ctx context.Context, c Clock, to time.Time) error {
	sc := scope{clock: c.ID}
	for {
		at, ok, err := s.nextDue(ctx, sc)
		if err != nil {
			return err
		}
		if !ok || at.After(to) {
			break
		}
		if at.After(c.FrozenTime) {
			if err := s.setClock(ctx, c.ID, at, ClockAdvancing); err != nil {
				return err
			}
			c.FrozenTime = at
		}
		st, err := s.runDue(ctx, sc, c.FrozenTime)
		if err != nil {
			return fmt.Errorf("advance %s at %s: %w", c.ID, minipay.Timestamp(c.FrozenTime), err)
		}
		if !st.did() {
			// Due, yet nothing could be done (it changed meanwhile every
			// time): going round again would never end.
			return fmt.Errorf("advance %s at %s: %w", c.ID, minipay.Timestamp(c.FrozenTime), errClockStuck)
		}
	}
	return s.setClock(ctx, c.ID, to, ClockReady)
}

func (s *Service) setClock(ctx context.Context, clockID string, at time.Time, status string) error {
	_, err := s.db.Exec(ctx, `UPDATE test_clocks SET frozen_time = $2, status = $3,
		advancing_until = CASE WHEN $3 = 'ready' THEN NULL ELSE advancing_until END WHERE id = $1`, clockID, at, status)
	if err != nil {
		return fmt.Errorf("set test clock %s: %w", clockID, err)
	}
	return nil
}
