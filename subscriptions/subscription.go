package subscriptions

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/catalog"
	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
)

// Subscription is a user's agreement to pay a plan every period.
type Subscription struct {
	ID                 string
	AppID              string
	DeveloperID        string
	Plan               Plan
	Status             string
	ClientSecret       string
	UserID             string // the host's user who signed: never shown to the app
	Customer           string // the app's pseudonymous id for that user
	ClientReferenceID  string
	Metadata           map[string]string
	TestClockID        string
	Anchor             time.Time // period k starts at Boundary(Anchor, …, k)
	PeriodIndex        int       // the current period's k; -1 during the trial
	PeriodStart        time.Time
	PeriodEnd          time.Time
	TrialEnd           time.Time
	CancelAtPeriodEnd  bool
	CanceledAt         time.Time
	CancellationReason string
	LatestInvoice      string
	NoticeFor          time.Time // the renewal whose notice went out
	NextActionAt       time.Time // zero: nothing scheduled
	ExpiresAt          time.Time
	Created            time.Time
	Version            int
}

// CreateParams are the parameters of a new subscription.
type CreateParams struct {
	ID                string // as for PlanParams
	RequestHash       []byte
	AppID             string
	PlanID            string
	ClientReferenceID string
	Metadata          map[string]string
	TestClockID       string // sandboxes only
}

// Create makes an incomplete subscription of app p.AppID to one of its
// active plans, for a user to sign within 23 hours.
func (s *Service) Create(ctx context.Context, p CreateParams) (Subscription, error) {
	if p.PlanID == "" {
		return Subscription{}, minipay.Field("plan", fmt.Errorf("%w: plan", ErrMissing))
	}
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	if err := ledger.ValidateMetadata(p.Metadata); err != nil {
		return Subscription{}, err
	}
	if utf8.RuneCountInString(p.ClientReferenceID) > ReferenceLenMax {
		return Subscription{}, minipay.Field("client_reference_id", fmt.Errorf("%w: at most %d characters", ErrInvalid, ReferenceLenMax))
	}
	plan, err := s.GetPlan(ctx, p.AppID, p.PlanID)
	if err != nil {
		return Subscription{}, minipay.Field("plan", err)
	}
	if !plan.Active {
		return Subscription{}, minipay.Field("plan", fmt.Errorf("%w: %s", ErrPlanInactive, plan.ID))
	}
	if err := s.stillSold(ctx, plan); err != nil {
		return Subscription{}, err
	}
	now := utcNow()
	if p.TestClockID != "" {
		if !s.sandbox {
			return Subscription{}, minipay.Field("test_clock", ErrSandboxOnly)
		}
		c, err := s.GetClock(ctx, p.AppID, p.TestClockID)
		if err != nil {
			return Subscription{}, minipay.Field("test_clock", err)
		}
		now = c.FrozenTime
	}
	if p.ID == "" {
		p.ID = id.New("sub")
	}
	sub := Subscription{ID: p.ID, AppID: plan.AppID, DeveloperID: plan.DeveloperID, Plan: plan, Status: StatusIncomplete,
		ClientSecret: p.ID + "_secret_" + randomToken(), ClientReferenceID: p.ClientReferenceID, Metadata: p.Metadata,
		TestClockID: p.TestClockID, ExpiresAt: now.Add(incompleteTTL), Created: now, Version: 1}
	sub.NextActionAt = nextActionAt(sub)
	md, _ := json.Marshal(sub.Metadata) // a map of strings always encodes
	_, err = s.db.Exec(ctx, `INSERT INTO subscriptions (id, app_id, developer_id, plan_id, status, client_secret,
			client_reference_id, metadata, test_clock_id, next_action_at, expires_at, created_at, request_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		sub.ID, sub.AppID, sub.DeveloperID, plan.ID, sub.Status, sub.ClientSecret, null.String(sub.ClientReferenceID), md,
		null.String(sub.TestClockID), null.Time(sub.NextActionAt), sub.ExpiresAt, sub.Created, p.RequestHash)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return s.madeBefore(ctx, p)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("create subscription: %w", err)
	}
	return sub, nil
}

func (s *Service) madeBefore(ctx context.Context, p CreateParams) (Subscription, error) {
	var stored []byte
	if err := s.db.QueryRow(ctx, `SELECT request_hash FROM subscriptions WHERE id = $1 AND app_id = $2`, p.ID, p.AppID).
		Scan(&stored); err != nil {
		return Subscription{}, fmt.Errorf("create subscription %s: %w", p.ID, err)
	}
	if err := idempotency.SameRequest(p.ID, stored, p.RequestHash); err != nil {
		return Subscription{}, err
	}
	return s.Get(ctx, p.AppID, p.ID)
}

func randomToken() string {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("subscriptions: crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// nextActionAt is when sub next needs the renewer, or zero: an unsigned
// one expires; a trialing or active one gets its notice, then renews (or
// ends, when canceled at period end). A past_due one waits on its
// invoice's retries; ended ones need nothing.
func nextActionAt(sub Subscription) time.Time {
	switch sub.Status {
	case StatusIncomplete:
		return sub.ExpiresAt
	case StatusTrialing, StatusActive:
		if !sub.CancelAtPeriodEnd && !sub.NoticeFor.Equal(sub.PeriodEnd) {
			return noticeAt(sub.PeriodStart, sub.PeriodEnd)
		}
		return sub.PeriodEnd
	}
	return time.Time{}
}

// subColumns are a subscription's columns joined with its plan's (p).
const subColumns = `s.id, s.app_id, s.developer_id, s.status, s.client_secret, s.user_id, s.customer, s.client_reference_id,
	s.metadata, s.test_clock_id, s.billing_anchor, s.period_index, s.current_period_start, s.current_period_end, s.trial_end,
	s.cancel_at_period_end, s.canceled_at, s.cancellation_reason, s.latest_invoice, s.notice_for, s.next_action_at,
	s.expires_at, s.created_at, s.version, ` + planColumnsP

const planColumnsP = `p.id, p.app_id, p.developer_id, p.name, p.amount, p.currency, p.option, p.interval, p.interval_count,
	p.trial_period_days, p.active, p.created_at`

const subFrom = ` FROM subscriptions s JOIN subscription_plans p ON p.id = s.plan_id `

// subScan holds a subscription's columns as scanned.
type subScan struct {
	sub                                                    Subscription
	user, customer, ref, clock, reason, latest             *string
	anchor, ps, pe, trialEnd, canceledAt, noticeFor, nextA *time.Time
	md                                                     []byte
}

func (x *subScan) dest() []any {
	sub, p := &x.sub, &x.sub.Plan
	return []any{&sub.ID, &sub.AppID, &sub.DeveloperID, &sub.Status, &sub.ClientSecret, &x.user, &x.customer, &x.ref, &x.md,
		&x.clock, &x.anchor, &sub.PeriodIndex, &x.ps, &x.pe, &x.trialEnd, &sub.CancelAtPeriodEnd, &x.canceledAt, &x.reason,
		&x.latest, &x.noticeFor, &x.nextA, &sub.ExpiresAt, &sub.Created, &sub.Version,
		&p.ID, &p.AppID, &p.DeveloperID, &p.Name, &p.Amount, &p.Currency, &p.Option, &p.Interval, &p.IntervalCount,
		&p.TrialPeriodDays, &p.Active, &p.Created}
}

func (x *subScan) finish() (Subscription, error) {
	sub := x.sub
	sub.UserID, sub.Customer, sub.ClientReferenceID, sub.TestClockID = null.Value(x.user), null.Value(x.customer), null.Value(x.ref), null.Value(x.clock)
	sub.CancellationReason, sub.LatestInvoice = null.Value(x.reason), null.Value(x.latest)
	sub.Anchor, sub.PeriodStart, sub.PeriodEnd, sub.TrialEnd = null.Value(x.anchor), null.Value(x.ps), null.Value(x.pe), null.Value(x.trialEnd)
	sub.CanceledAt, sub.NoticeFor, sub.NextActionAt = null.Value(x.canceledAt), null.Value(x.noticeFor), null.Value(x.nextA)
	sub.ExpiresAt, sub.Created, sub.Plan.Created = sub.ExpiresAt.UTC(), sub.Created.UTC(), sub.Plan.Created.UTC()
	if err := json.Unmarshal(x.md, &sub.Metadata); err != nil {
		return Subscription{}, fmt.Errorf("metadata of subscription %s: %w", sub.ID, err)
	}
	return sub, nil
}

func scanSub(row pgx.Row) (Subscription, error) {
	var x subScan
	if err := row.Scan(x.dest()...); err != nil {
		return Subscription{}, err
	}
	return x.finish()
}

// Get returns subscription subID of app appID; another app's is
// ErrSubscriptionNotFound. An empty appID reads any (the host's view).
func (s *Service) Get(ctx context.Context, appID, subID string) (Subscription, error) {
	return s.get(ctx, s.db, appID, subID, false)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Service) get(ctx context.Context, q querier, appID, subID string, lock bool) (Subscription, error) {
	sql := `SELECT ` + subColumns + subFrom + ` WHERE s.id = $1`
	if lock {
		sql += ` FOR UPDATE OF s`
	}
	sub, err := scanSub(q.QueryRow(ctx, sql, subID))
	if errors.Is(err, pgx.ErrNoRows) || err == nil && appID != "" && sub.AppID != appID {
		return Subscription{}, fmt.Errorf("%w: %s", ErrSubscriptionNotFound, subID)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("get subscription %s: %w", subID, err)
	}
	return sub, nil
}

// ListFilter selects subscriptions of one app.
type ListFilter struct {
	AppID         string // an app's subscriptions
	UserID        string // or, with AppID empty, those a user signed with any app (the host's read)
	Status        string
	PlanID        string
	Limit         int
	StartingAfter string
}

// List pages through an app's subscriptions, or a user's, newest first:
// by creation time, as ids derived from idempotency keys are not in time
// order.
func (s *Service) List(ctx context.Context, f ListFilter) ([]Subscription, bool, error) {
	owner, key := `app_id = $1`, f.AppID
	if f.AppID == "" {
		owner, key = `user_id = $1`, f.UserID
	}
	if key == "" {
		return nil, false, fmt.Errorf("list subscriptions: %w: an app or a user", ErrMissing)
	}
	rows, err := s.db.Query(ctx, `SELECT `+subColumns+subFrom+`
		WHERE s.`+owner+` AND ($2 = '' OR s.status = $2) AND ($3 = '' OR s.plan_id = $3)
		  AND ($4 = '' OR (s.created_at, s.id) < (SELECT created_at, id FROM subscriptions WHERE id = $4 AND `+owner+`))
		ORDER BY s.created_at DESC, s.id DESC LIMIT $5`, key, f.Status, f.PlanID, f.StartingAfter, f.Limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list subscriptions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Subscription, error) { return scanSub(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list subscriptions: %w", err)
	}
	if len(out) > f.Limit {
		return out[:f.Limit], true, nil
	}
	return out, false, nil
}

// saveSubsSQL writes subscriptions' changing columns, each only if it is
// still at the version the change was computed from, and returns those it
// wrote. It is set-based (ledger.Statement.Row) so a group writes many.
const saveSubsSQL = `
	UPDATE subscriptions s SET status = u.status, user_id = u.user_id, customer = u.customer, billing_anchor = u.anchor,
		period_index = u.idx, current_period_start = u.ps, current_period_end = u.pe, trial_end = u.te,
		cancel_at_period_end = u.cape, canceled_at = u.ca, cancellation_reason = u.cr, latest_invoice = u.li,
		notice_for = u.nf, next_action_at = u.na, version = u.version
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::int4[], $7::timestamptz[],
		$8::timestamptz[], $9::timestamptz[], $10::bool[], $11::timestamptz[], $12::text[], $13::text[], $14::timestamptz[],
		$15::timestamptz[], $16::int4[])
		AS u(id, status, user_id, customer, anchor, idx, ps, pe, te, cape, ca, cr, li, nf, na, version)
	WHERE s.id = u.id AND s.version = u.version - 1
	RETURNING s.id`

// saveRow is next's row of saveSubsSQL; next.Version must be one more than
// the version it was computed from.
func saveRow(next Subscription) []any {
	return []any{next.ID, next.Status, null.String(next.UserID), null.String(next.Customer), null.Time(next.Anchor),
		int32(next.PeriodIndex), null.Time(next.PeriodStart), null.Time(next.PeriodEnd), null.Time(next.TrialEnd),
		next.CancelAtPeriodEnd, null.Time(next.CanceledAt), null.String(next.CancellationReason), null.String(next.LatestInvoice),
		null.Time(next.NoticeFor), null.Time(next.NextActionAt), int32(next.Version)}
}

// saveStatement is saveRow as a ledger statement that fails its transfer
// when the subscription changed meanwhile.
func saveStatement(next Subscription) ledger.Statement {
	return ledger.Statement{SQL: saveSubsSQL, Args: saveRow(next), Row: true, Required: errStateChanged}
}

// advanced returns sub as a change leaves it: its version bumped and its
// next action computed again.
func advanced(sub Subscription) Subscription {
	sub.Version++
	sub.NextActionAt = nextActionAt(sub)
	return sub
}

// stillSold refuses a new subscription to a plan whose option or currency
// the platform has taken from the app since the plan was made: the plan's
// existing agreements renew, new ones are not sold.
func (s *Service) stillSold(ctx context.Context, plan Plan) error {
	app, err := s.apps.GetApp(ctx, plan.AppID)
	if err != nil {
		return err
	}
	if err := catalog.CheckGranted(plan.Option, plan.Currency, app.Options, app.Currencies); err != nil {
		return minipay.Field("plan", err)
	}
	return nil
}
