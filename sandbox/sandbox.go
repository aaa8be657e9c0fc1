// Package sandbox makes real objects on request, in a sandbox (a
// deployment whose money is not real), so that a developer can watch an
// event of any type happen: "minipay trigger checkout.session.completed".
//
// Nothing here fakes an event: each trigger drives the domain packages
// through the same functions the API calls (and, where the real event
// waits on time or on another party, does what a sandbox may: pays as a
// sandbox user, matures a payment at once, runs settlement now), so the
// event that comes out is the one production would write.
//
// Adding an event type is one entry in triggers.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/checkout"
	"github.com/minipay/minipay/disputes"
	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/settlement"
	"github.com/minipay/minipay/subscriptions"
	"github.com/minipay/minipay/webhooks"
)

// Errors a caller may branch on.
var (
	// ErrSandboxOnly: the deployment is not a sandbox (MINIPAY_SANDBOX);
	// test helpers are refused so they can never touch real money.
	ErrSandboxOnly = minipay.NewError(minipay.KindForbidden, "sandbox_only", "test helpers work only in a sandbox (MINIPAY_SANDBOX=true)")
	// ErrNotTriggerable: no trigger makes an event of this type (yet).
	ErrNotTriggerable = minipay.NewError(minipay.KindInvalid, "event_type_not_triggerable", "no trigger for this event type")
	// ErrNoOption: the app has no monetization option the trigger can use.
	ErrNoOption = minipay.NewError(minipay.KindUnprocessable, "no_usable_option", "the app has no enabled option the trigger can sell through")
	// ErrNoPayout: settlement found the developer's matured money below
	// the minimum payout (or negative), so no payout was made.
	ErrNoPayout = minipay.NewError(minipay.KindUnprocessable, "no_payout", "settlement made no payout for this developer")
)

// Service runs triggers. Set every field.
type Service struct {
	Apps       *apps.Service
	Checkout   *checkout.Service
	Payments   *payments.Service
	Disputes   *disputes.Service
	Settlement *settlement.Service
	Webhooks   *webhooks.Service
	// Subscriptions must allow test clocks (its Sandbox option): the
	// triggers' subscriptions live on clocks of their own, so that time
	// can be moved for them and the real renewals never charge them.
	Subscriptions *subscriptions.Service
}

// Object names one object a trigger made or changed.
type Object struct {
	Object string `json:"object"` // checkout.session, refund, payout, …
	ID     string `json:"id"`
}

// Result is what a trigger did: the objects behind the event, in the
// order they were made.
type Result struct {
	Object    string   `json:"object"` // "trigger"
	EventType string   `json:"event_type"`
	Objects   []Object `json:"objects"`
}

// trigger makes an event of one type happen for an app.
type trigger struct {
	event string
	// does says in a few words what the trigger makes, for help texts.
	does string
	run  func(ctx context.Context, f *fixture) error
}

// triggers is every event type a sandbox can make happen. Each entry is
// the shortest real path to its event.
var triggers = []trigger{
	{webhooks.CheckoutSessionCompleted, "a session, paid by a sandbox user", func(ctx context.Context, f *fixture) error {
		_, err := f.paidSession(ctx, "automatic", false)
		return err
	}},
	{webhooks.CheckoutSessionCanceled, "a session, canceled", func(ctx context.Context, f *fixture) error {
		s, err := f.session(ctx, "automatic", false)
		if err == nil {
			_, err = f.s.Checkout.CancelSession(ctx, f.app.ID, s.ID)
		}
		return err
	}},
	{webhooks.CheckoutSessionExpired, "a session, expired at once", func(ctx context.Context, f *fixture) error {
		s, err := f.session(ctx, "automatic", false)
		if err == nil {
			_, err = f.s.Checkout.ExpireSession(ctx, f.app.ID, s.ID)
		}
		return err
	}},
	{webhooks.PaymentCaptured, "a manual-capture session, paid, its hold captured", func(ctx context.Context, f *fixture) error {
		s, err := f.paidSession(ctx, "manual", false)
		if err == nil {
			_, err = f.s.Checkout.Capture(ctx, f.app.ID, s.ID)
		}
		return err
	}},
	{webhooks.PaymentVoided, "a manual-capture session, paid, its hold voided", func(ctx context.Context, f *fixture) error {
		s, err := f.paidSession(ctx, "manual", false)
		if err == nil {
			_, err = f.s.Checkout.Void(ctx, f.app.ID, s.ID)
		}
		return err
	}},
	{webhooks.RefundSucceeded, "a paid session, refunded", func(ctx context.Context, f *fixture) error {
		_, err := f.refund(ctx)
		return err
	}},
	{webhooks.PayoutCreated, "a paid session, matured at once, and a settlement run now", func(ctx context.Context, f *fixture) error {
		_, err := f.payout(ctx)
		return err
	}},
	{webhooks.SettlementRunCompleted, "a paid session, matured at once, and a settlement run now", func(ctx context.Context, f *fixture) error {
		_, err := f.payout(ctx)
		return err
	}},
	{webhooks.PayoutPaid, "a payout (as for payout.created), marked paid", func(ctx context.Context, f *fixture) error {
		p, err := f.payout(ctx)
		if err == nil {
			_, err = f.s.Settlement.MarkPaid(ctx, p.ID)
		}
		return err
	}},
	{webhooks.EndpointDisabled, "a webhook endpoint, disabled as if it had failed for days, then deleted", func(ctx context.Context, f *fixture) error {
		return f.disabledEndpoint(ctx)
	}},
	{webhooks.DisputeCreated, "a paid session, disputed by the sandbox user through the host", func(ctx context.Context, f *fixture) error {
		_, err := f.dispute(ctx)
		return err
	}},
	{webhooks.DisputeUpdated, "a dispute (as for dispute.created), answered with evidence", func(ctx context.Context, f *fixture) error {
		d, err := f.dispute(ctx)
		if err == nil {
			_, err = f.s.Disputes.Respond(ctx, disputes.RespondParams{AppID: f.app.ID, DisputeID: d.ID,
				Evidence: &disputes.Evidence{Text: "minipay trigger: delivered as ordered"}})
		}
		return err
	}},
	{webhooks.DisputeClosed, "a dispute (as for dispute.created), ruled won by the platform", func(ctx context.Context, f *fixture) error {
		d, err := f.dispute(ctx)
		if err == nil {
			_, err = f.s.Disputes.Close(ctx, d.ID, disputes.StatusWon)
		}
		return err
	}},
	{webhooks.SubscriptionActivated, "a monthly subscription on a test clock, signed and paid by a sandbox user", func(ctx context.Context, f *fixture) error {
		_, err := f.subscription(ctx, sandboxUser)
		return err
	}},
	{webhooks.InvoicePaid, "a monthly subscription on a test clock, signed and paid by a sandbox user", func(ctx context.Context, f *fixture) error {
		_, err := f.subscription(ctx, sandboxUser)
		return err
	}},
	{webhooks.SubscriptionUpdated, "a signed subscription (as for subscription.activated), canceled at period end", func(ctx context.Context, f *fixture) error {
		sub, err := f.subscription(ctx, sandboxUser)
		if err == nil {
			_, err = f.s.Subscriptions.Cancel(ctx, subscriptions.CancelParams{AppID: f.app.ID, SubscriptionID: sub.ID, AtPeriodEnd: true})
		}
		return err
	}},
	{webhooks.SubscriptionCanceled, "a signed subscription (as for subscription.activated), canceled now", func(ctx context.Context, f *fixture) error {
		sub, err := f.subscription(ctx, sandboxUser)
		if err == nil {
			_, err = f.s.Subscriptions.Cancel(ctx, subscriptions.CancelParams{AppID: f.app.ID, SubscriptionID: sub.ID})
		}
		return err
	}},
	{webhooks.SubscriptionRenewalUpcoming, "a signed subscription (as for subscription.activated), its clock advanced to a day before the renewal", func(ctx context.Context, f *fixture) error {
		sub, err := f.subscription(ctx, sandboxUser)
		if err == nil {
			_, err = f.s.Subscriptions.Advance(ctx, f.app.ID, sub.TestClockID, sub.PeriodEnd.Add(-24*time.Hour))
		}
		return err
	}},
	{webhooks.InvoicePaymentFailed, "a subscription signed by a new sandbox user with one period's money, its clock advanced to the renewal", func(ctx context.Context, f *fixture) error {
		return f.failedRenewal(ctx)
	}},
	{webhooks.SubscriptionPastDue, "a subscription signed by a new sandbox user with one period's money, its clock advanced to the renewal", func(ctx context.Context, f *fixture) error {
		return f.failedRenewal(ctx)
	}},
}

// Types lists the event types a trigger can make, each with what it does.
func Types() [][2]string {
	out := make([][2]string, len(triggers))
	for i, t := range triggers {
		out[i] = [2]string{t.event, t.does}
	}
	return out
}

// Trigger makes an event of type eventType happen for the app, with real
// objects, and returns them. sandbox says whether this deployment is one.
func (s *Service) Trigger(ctx context.Context, sandbox bool, appID, eventType string) (Result, error) {
	if !sandbox {
		return Result{}, ErrSandboxOnly
	}
	i := slices.IndexFunc(triggers, func(t trigger) bool { return t.event == eventType })
	if i < 0 {
		names := make([]string, len(triggers))
		for j, t := range triggers {
			names[j] = t.event
		}
		return Result{}, minipay.Field("event_type", fmt.Errorf("%w: %q; triggerable: %s", ErrNotTriggerable, eventType, strings.Join(names, ", ")))
	}
	app, err := s.Apps.GetApp(ctx, appID)
	if err != nil {
		return Result{}, err
	}
	f := &fixture{s: s, app: app, event: eventType}
	if err := triggers[i].run(ctx, f); err != nil {
		return Result{}, fmt.Errorf("trigger %s: %w", eventType, err)
	}
	return Result{Object: "trigger", EventType: eventType, Objects: f.made}, nil
}

// fixture is one trigger's work for one app.
type fixture struct {
	s     *Service
	app   apps.App
	event string
	made  []Object
}

func (f *fixture) record(object, objectID string) { f.made = append(f.made, Object{object, objectID}) }

// sandboxUser pays every trigger's sessions; its wallet is funded with
// exactly what each payment needs.
const sandboxUser = "usr_sandbox_trigger"

// offer picks an option of the app (refundable when asked) and a currency,
// and an amount of about ten major units within the option's limits.
func (f *fixture) offer(refundable bool) (option, currency, amount string, err error) {
	cat := f.s.Checkout.Catalog()
	for _, name := range f.app.Options {
		opt, ok := cat.At(name, time.Now())
		if !ok || (refundable && !opt.Refundable) {
			continue
		}
		for _, cur := range f.app.Currencies {
			if !opt.SupportsCurrency(cur) {
				continue
			}
			want := decimal.NewFromInt(10)
			if want.LessThan(opt.MinAmount) {
				want = opt.MinAmount
			}
			if want.GreaterThan(opt.MaxAmount) {
				want = opt.MaxAmount
			}
			minor, err := ledger.FromDecimal(cur, want)
			if err != nil || minor <= 0 {
				continue
			}
			return name, cur, ledger.FormatAmount(cur, minor), nil
		}
	}
	kind := "option"
	if refundable {
		kind = "refundable option"
	}
	return "", "", "", fmt.Errorf("%w: it needs a %s in a currency the app sells in", ErrNoOption, kind)
}

// session creates an open session.
func (f *fixture) session(ctx context.Context, capture string, refundable bool) (checkout.Session, error) {
	option, currency, amount, err := f.offer(refundable)
	if err != nil {
		return checkout.Session{}, err
	}
	s, err := f.s.Checkout.CreateSession(ctx, checkout.CreateParams{AppID: f.app.ID, Amount: amount, Currency: currency,
		Option: option, CaptureMethod: capture, ClientReferenceID: "minipay-trigger",
		Metadata: map[string]string{"trigger": f.event}})
	if err != nil {
		return checkout.Session{}, err
	}
	f.record("checkout.session", s.ID)
	return s, nil
}

// paidSession creates a session and pays it as the sandbox user, the way
// the host's wallet service would: a top-up, then a confirm.
func (f *fixture) paidSession(ctx context.Context, capture string, refundable bool) (checkout.Session, error) {
	s, err := f.session(ctx, capture, refundable)
	if err != nil {
		return checkout.Session{}, err
	}
	amount := ledger.FormatAmount(s.Currency, s.AmountTotal)
	if _, err := f.s.Checkout.TopUp(ctx, sandboxUser, amount, s.Currency, id.New("tr")); err != nil {
		return checkout.Session{}, err
	}
	return f.s.Checkout.Confirm(ctx, s.ID, sandboxUser, s.ClientSecret)
}

func (f *fixture) refund(ctx context.Context) (payments.Refund, error) {
	s, err := f.paidSession(ctx, "automatic", true)
	if err != nil {
		return payments.Refund{}, err
	}
	r, err := f.s.Payments.Refund(ctx, payments.RefundParams{AppID: f.app.ID, PaymentID: s.ID, Reason: "requested_by_customer",
		Metadata: map[string]string{"trigger": f.event}})
	if err != nil {
		return payments.Refund{}, err
	}
	f.record("refund", r.ID)
	return r, nil
}

// payout pays a session, matures its money at once and settles now. The
// run settles every developer of the sandbox, as the scheduler would.
func (f *fixture) payout(ctx context.Context) (settlement.Payout, error) {
	s, err := f.paidSession(ctx, "automatic", false)
	if err != nil {
		return settlement.Payout{}, err
	}
	if err := f.s.Settlement.MatureNow(ctx, f.app.DeveloperID, s.ID); err != nil {
		return settlement.Payout{}, err
	}
	run, _, err := f.s.Settlement.Settle(ctx, time.Now(), true)
	if err != nil {
		return settlement.Payout{}, err
	}
	f.record("settlement_run", run.ID)
	payouts, _, err := f.s.Settlement.ListPayouts(ctx, settlement.PayoutFilter{DeveloperID: f.app.DeveloperID, RunID: run.ID, Limit: 100})
	if err != nil {
		return settlement.Payout{}, err
	}
	i := slices.IndexFunc(payouts, func(p settlement.Payout) bool { return p.Currency == s.Currency })
	if i < 0 {
		return settlement.Payout{}, fmt.Errorf("%w: run %s (%s): the developer's matured %s nets below the minimum payout", ErrNoPayout, run.ID, run.Status, s.Currency)
	}
	f.record("payout", payouts[i].ID)
	return payouts[i], nil
}

// dispute pays a session as the sandbox user, who then disputes all of it
// through the host.
func (f *fixture) dispute(ctx context.Context) (disputes.Dispute, error) {
	s, err := f.paidSession(ctx, "automatic", false)
	if err != nil {
		return disputes.Dispute{}, err
	}
	d, err := f.s.Disputes.Open(ctx, disputes.OpenParams{PaymentID: s.ID, UserID: sandboxUser, Reason: "other",
		Description: "minipay trigger " + f.event})
	if err != nil {
		return disputes.Dispute{}, err
	}
	f.record("dispute", d.ID)
	return d, nil
}

// disabledEndpoint creates an endpoint that can never receive anything,
// disables it as the dispatcher disables a failing one, and deletes it
// so triggers do not use up the app's endpoints.
func (f *fixture) disabledEndpoint(ctx context.Context) error {
	o := webhooks.Owner{AppID: f.app.ID, DeveloperID: f.app.DeveloperID}
	e, err := f.s.Webhooks.CreateEndpoint(ctx, o, webhooks.EndpointParams{URL: "https://sandbox.invalid/minipay-trigger",
		EnabledEvents: []string{webhooks.EndpointDisabled}, Description: "minipay trigger: disabled at once, then deleted"})
	if err != nil {
		return err
	}
	f.record("webhook_endpoint", e.ID)
	if _, err := f.s.Webhooks.DisableAsFailing(ctx, o, e.ID); err != nil {
		return err
	}
	return f.s.Webhooks.DeleteEndpoint(ctx, o, e.ID)
}

// recurringOffer is offer for an option that may back a recurring plan.
func (f *fixture) recurringOffer() (option, currency, amount string, err error) {
	cat := f.s.Checkout.Catalog()
	app := f.app
	app.Options = slices.DeleteFunc(slices.Clone(app.Options), func(name string) bool {
		opt, ok := cat.At(name, time.Now())
		return !ok || !opt.Recurring
	})
	g := &fixture{s: f.s, app: app, event: f.event}
	option, currency, amount, err = g.offer(false)
	if errors.Is(err, ErrNoOption) {
		err = fmt.Errorf("%w: it needs an option that may back a recurring plan (subscription, goods or tip)", ErrNoOption)
	}
	return option, currency, amount, err
}

// subscription makes a monthly plan and a subscription to it on a test
// clock of its own, and has user sign it with a wallet funded for exactly
// the first period.
func (f *fixture) subscription(ctx context.Context, user string) (subscriptions.Subscription, error) {
	option, currency, amount, err := f.recurringOffer()
	if err != nil {
		return subscriptions.Subscription{}, err
	}
	plan, err := f.s.Subscriptions.CreatePlan(ctx, subscriptions.PlanParams{AppID: f.app.ID, Name: "minipay trigger monthly",
		Amount: amount, Currency: currency, Option: option, Interval: subscriptions.IntervalMonth})
	if err != nil {
		return subscriptions.Subscription{}, err
	}
	clock, err := f.s.Subscriptions.CreateClock(ctx, "", nil, f.app.ID, time.Now())
	if err != nil {
		return subscriptions.Subscription{}, err
	}
	sub, err := f.s.Subscriptions.Create(ctx, subscriptions.CreateParams{AppID: f.app.ID, PlanID: plan.ID,
		ClientReferenceID: "minipay-trigger", Metadata: map[string]string{"trigger": f.event}, TestClockID: clock.ID})
	if err != nil {
		return subscriptions.Subscription{}, err
	}
	f.record("subscription", sub.ID)
	if _, err := f.s.Checkout.TopUp(ctx, user, amount, currency, id.New("tr")); err != nil {
		return subscriptions.Subscription{}, err
	}
	sub, err = f.s.Subscriptions.Sign(ctx, sub.ID, user, sub.ClientSecret)
	if err != nil {
		return subscriptions.Subscription{}, err
	}
	f.record("invoice", sub.LatestInvoice)
	return sub, nil
}

// failedRenewal signs a subscription by a user of its own, whose wallet
// the first period empties, and advances its clock to the renewal, which
// the wallet cannot pay.
func (f *fixture) failedRenewal(ctx context.Context) error {
	sub, err := f.subscription(ctx, sandboxUser+"_"+strings.ToLower(id.New("short")[6:]))
	if err != nil {
		return err
	}
	if _, err := f.s.Subscriptions.Advance(ctx, f.app.ID, sub.TestClockID, sub.PeriodEnd); err != nil {
		return err
	}
	f.record("invoice", subscriptions.InvoiceID(sub.ID, sub.PeriodEnd))
	return nil
}
