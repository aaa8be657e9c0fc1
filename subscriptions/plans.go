package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/catalog"
	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/ledger"
)

// Plan is what a subscription pays each period. Amount is in minor units
// of Currency.
type Plan struct {
	ID              string
	AppID           string
	DeveloperID     string
	Name            string
	Amount          int64
	Currency        string
	Option          string
	Interval        string
	IntervalCount   int
	TrialPeriodDays int
	Active          bool
	Created         time.Time
}

// PlanParams are the parameters of a new plan.
type PlanParams struct {
	// ID, if not empty, is derived from an idempotency key and RequestHash
	// is the request's fingerprint (see idempotency.SameRequest).
	ID              string
	RequestHash     []byte
	AppID           string
	Name            string
	Amount          string // decimal, major units
	Currency        string
	Option          string
	Interval        string
	IntervalCount   int // 0: 1
	TrialPeriodDays int
}

// CreatePlan makes a plan of app p.AppID. Its option must be in the
// catalog, recurring and enabled for the app, in a currency the app and
// the option take, with the amount within the option's limits.
func (s *Service) CreatePlan(ctx context.Context, p PlanParams) (Plan, error) {
	app, err := s.apps.GetApp(ctx, p.AppID)
	if err != nil {
		return Plan{}, err
	}
	plan, err := s.checkPlan(app, p)
	if err != nil {
		return Plan{}, err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO subscription_plans (id, app_id, developer_id, name, amount, currency, option, interval,
			interval_count, trial_period_days, active, request_hash, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, true, $11, $12)`,
		plan.ID, plan.AppID, plan.DeveloperID, plan.Name, plan.Amount, plan.Currency, plan.Option, plan.Interval,
		plan.IntervalCount, plan.TrialPeriodDays, p.RequestHash, plan.Created)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return s.planMadeBefore(ctx, p)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("create plan: %w", err)
	}
	return plan, nil
}

// planMadeBefore answers a plan creation whose id (from an idempotency
// key) exists: the plan, if the same request made it.
func (s *Service) planMadeBefore(ctx context.Context, p PlanParams) (Plan, error) {
	var stored []byte
	if err := s.db.QueryRow(ctx, `SELECT request_hash FROM subscription_plans WHERE id = $1 AND app_id = $2`, p.ID, p.AppID).
		Scan(&stored); err != nil {
		return Plan{}, fmt.Errorf("create plan %s: %w", p.ID, err)
	}
	if err := idempotency.SameRequest(p.ID, stored, p.RequestHash); err != nil {
		return Plan{}, err
	}
	return s.GetPlan(ctx, p.AppID, p.ID)
}

// checkPlan validates p for app and returns the plan it makes.
func (s *Service) checkPlan(app apps.App, p PlanParams) (Plan, error) {
	name := strings.TrimSpace(p.Name)
	switch {
	case name == "":
		return Plan{}, minipay.Field("name", fmt.Errorf("%w: name", ErrMissing))
	case utf8.RuneCountInString(name) > NameLenMax:
		return Plan{}, minipay.Field("name", fmt.Errorf("%w: at most %d characters", ErrInvalid, NameLenMax))
	case p.Amount == "":
		return Plan{}, minipay.Field("amount", fmt.Errorf("%w: amount", ErrMissing))
	case p.Currency == "":
		return Plan{}, minipay.Field("currency", fmt.Errorf("%w: currency", ErrMissing))
	case p.Option == "":
		return Plan{}, minipay.Field("option", fmt.Errorf("%w: option", ErrMissing))
	case p.Interval == "":
		return Plan{}, minipay.Field("interval", fmt.Errorf("%w: interval", ErrMissing))
	}
	countMax, ok := intervalCountMax[p.Interval]
	if !ok {
		return Plan{}, minipay.Field("interval", fmt.Errorf("%w: interval is day, week, month or year", ErrInvalid))
	}
	if p.IntervalCount == 0 {
		p.IntervalCount = 1
	}
	if p.IntervalCount < 1 || p.IntervalCount > countMax {
		return Plan{}, minipay.Field("interval_count", fmt.Errorf("%w: a %s plan's interval_count is 1–%d (a period is at most a year)",
			ErrInvalid, p.Interval, countMax))
	}
	if p.TrialPeriodDays < 0 || p.TrialPeriodDays > TrialPeriodDaysMax {
		return Plan{}, minipay.Field("trial_period_days", fmt.Errorf("%w: trial_period_days is 0–%d", ErrInvalid, TrialPeriodDaysMax))
	}
	amount, err := ledger.ParseAmount(p.Currency, p.Amount)
	if err != nil {
		if _, cerr := ledger.Exponent(p.Currency); cerr != nil {
			return Plan{}, minipay.Field("currency", cerr)
		}
		return Plan{}, minipay.Field("amount", err)
	}
	if amount <= 0 {
		return Plan{}, minipay.Field("amount", fmt.Errorf("%w: amount must be greater than zero", ErrInvalid))
	}
	now := utcNow()
	opt, err := s.catalog.Check(catalog.Sale{Option: p.Option, Currency: p.Currency, AmountMinor: amount, At: now,
		GrantedOpts: app.Options, GrantedCurs: app.Currencies})
	if err != nil {
		return Plan{}, err
	}
	if !opt.Recurring {
		return Plan{}, minipay.Field("option", fmt.Errorf("%w: %s", ErrOptionNotRecurring, p.Option))
	}
	if p.ID == "" {
		p.ID = id.New("plan")
	}
	return Plan{ID: p.ID, AppID: app.ID, DeveloperID: app.DeveloperID, Name: name, Amount: amount, Currency: p.Currency,
		Option: p.Option, Interval: p.Interval, IntervalCount: p.IntervalCount, TrialPeriodDays: p.TrialPeriodDays,
		Active: true, Created: now}, nil
}

const planColumns = `id, app_id, developer_id, name, amount, currency, option, interval, interval_count, trial_period_days, active, created_at`

func scanPlan(row pgx.Row) (Plan, error) {
	var p Plan
	err := row.Scan(&p.ID, &p.AppID, &p.DeveloperID, &p.Name, &p.Amount, &p.Currency, &p.Option, &p.Interval,
		&p.IntervalCount, &p.TrialPeriodDays, &p.Active, &p.Created)
	return p, err
}

// GetPlan returns plan planID of app appID; another app's is ErrPlanNotFound.
// An empty appID reads any plan.
func (s *Service) GetPlan(ctx context.Context, appID, planID string) (Plan, error) {
	p, err := scanPlan(s.db.QueryRow(ctx, `SELECT `+planColumns+` FROM subscription_plans WHERE id = $1`, planID))
	if errors.Is(err, pgx.ErrNoRows) || err == nil && appID != "" && p.AppID != appID {
		return Plan{}, fmt.Errorf("%w: %s", ErrPlanNotFound, planID)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("get plan %s: %w", planID, err)
	}
	return p, nil
}

// ListPlans pages through an app's plans, newest first: by creation
// time, as ids derived from idempotency keys are not in time order.
func (s *Service) ListPlans(ctx context.Context, appID string, limit int, startingAfter string) ([]Plan, bool, error) {
	rows, err := s.db.Query(ctx, `SELECT `+planColumns+` FROM subscription_plans
		WHERE app_id = $1
		  AND ($2 = '' OR (created_at, id) < (SELECT created_at, id FROM subscription_plans WHERE id = $2 AND app_id = $1))
		ORDER BY created_at DESC, id DESC LIMIT $3`, appID, startingAfter, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list plans: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Plan, error) { return scanPlan(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list plans: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
