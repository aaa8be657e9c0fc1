package minipay_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/minipay/minipay/sdk/go/minipay"
)

// subscriptionApp is an app of s that may sell subscriptions, and its
// client.
func subscriptionApp(t *testing.T, s *server) *minipay.Client {
	t.Helper()
	dev := s.raw("POST", "/v1/developers", adminKey, `{"name": "SDK subscriptions developer"}`, 201)
	app := s.raw("POST", "/v1/apps", adminKey, `{"developer": "`+dev["id"].(string)+`", "name": "Tea Club",
		"options": ["subscription", "goods", "virtual_goods"], "currencies": ["CNY"]}`, 201)
	return minipay.New(app["secret_key"].(string), minipay.WithBaseURL(s.url), minipay.WithBackoff(10*time.Millisecond, 2*time.Second))
}

// apiError is err as an *minipay.Error, or a failure of the test.
func apiError(t *testing.T, err error, what string) *minipay.Error {
	t.Helper()
	var e *minipay.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: want an API error, got %v", what, err)
	}
	if e.Status < 400 || e.Status >= 500 || e.Code == "" || e.Type == "" {
		t.Fatalf("%s: want a 4xx in the error shape, got %+v", what, e)
	}
	return e
}

func TestSubscriptionsSignRenewCancel(t *testing.T) {
	s := newServer(t, "MINIPAY_SANDBOX=true")
	ctx := context.Background()
	c := subscriptionApp(t, s)
	host := minipay.NewHost(hostKey, minipay.WithBaseURL(s.url))

	plan, err := c.CreatePlan(ctx, minipay.PlanParams{Name: "Tea Club monthly", Amount: "30.00", Currency: "CNY", Option: "subscription", Interval: "month"})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Amount != "30.00" || plan.Interval != "month" || plan.IntervalCount != 1 || plan.TrialPeriodDays != 0 || !plan.Active {
		t.Fatalf("plan %+v", plan)
	}
	if got, err := c.GetPlan(ctx, plan.ID); err != nil || got.ID != plan.ID || got.Name != "Tea Club monthly" {
		t.Fatalf("get plan %+v %v", got, err)
	}
	if l, err := c.ListPlans(ctx, minipay.ListParams{Limit: 10}); err != nil || len(l.Data) != 1 || l.Data[0].ID != plan.ID {
		t.Fatalf("list plans %+v %v", l, err)
	}
	// An option that may not back a recurring plan is refused, and nothing is made.
	_, err = c.CreatePlan(ctx, minipay.PlanParams{Name: "Gems monthly", Amount: "6.00", Currency: "CNY", Option: "virtual_goods", Interval: "month"})
	apiError(t, err, "a plan on virtual_goods")
	if l, _ := c.ListPlans(ctx, minipay.ListParams{}); len(l.Data) != 1 {
		t.Fatalf("a refused plan was made: %+v", l)
	}

	// 31 January, so the next period starts on the last day of February.
	clock, err := c.CreateTestClock(ctx, minipay.TestClockParams{FrozenTime: "2026-01-31T10:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	if clock.Status != "ready" {
		t.Fatalf("clock %+v", clock)
	}
	sub, err := c.CreateSubscription(ctx, minipay.SubscriptionParams{Plan: plan.ID, TestClock: clock.ID, ClientReferenceID: "member-1",
		Metadata: map[string]string{"member": "m-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Status != "incomplete" || sub.ClientSecret == "" || sub.Customer != nil || sub.Metadata["member"] != "m-1" {
		t.Fatalf("new subscription %+v", sub)
	}

	// The host's agreement sheet: no client secret, no customer, the app's name.
	sheet, err := host.GetSubscription(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sheet.AppName != "Tea Club" || sheet.ClientSecret != "" || sheet.Customer != nil || sheet.Status != "incomplete" ||
		sheet.Plan.Name != "Tea Club monthly" || sheet.Plan.Amount != "30.00" || sheet.Plan.Interval != "month" {
		t.Fatalf("sheet %+v", sheet)
	}
	if _, err := host.TopUp(ctx, "usr_member", minipay.TopUpParams{Amount: "100.00", Currency: "CNY"}); err != nil {
		t.Fatal(err)
	}
	_, err = host.SignSubscription(ctx, sub.ID, minipay.SignParams{UserID: "usr_member", ClientSecret: "wrong"})
	apiError(t, err, "sign with the wrong client secret")
	signed, err := host.SignSubscription(ctx, sub.ID, minipay.SignParams{UserID: "usr_member", ClientSecret: sub.ClientSecret, IdempotencyKey: "sign-1"})
	if err != nil {
		t.Fatal(err)
	}
	if signed.Status != "active" || signed.LatestInvoice == nil {
		t.Fatalf("signed %+v", signed)
	}
	// The same request again (the bridge retried) is the same answer, charged once.
	again, err := host.SignSubscription(ctx, sub.ID, minipay.SignParams{UserID: "usr_member", ClientSecret: sub.ClientSecret, IdempotencyKey: "sign-1"})
	if err != nil || again.ID != sub.ID || again.Status != "active" {
		t.Fatalf("replayed sign %+v %v", again, err)
	}
	// A new signing of a signed subscription is refused.
	_, err = host.SignSubscription(ctx, sub.ID, minipay.SignParams{UserID: "usr_member", ClientSecret: sub.ClientSecret})
	apiError(t, err, "signing twice")
	if w, _ := host.GetWallet(ctx, "usr_member"); w.Balances[0].Available != "70.00" {
		t.Fatalf("wallet after the first period: %+v", w)
	}

	got, err := c.GetSubscription(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Customer == nil || got.CurrentPeriodStart == nil || got.CurrentPeriodEnd == nil {
		t.Fatalf("signed subscription as the app reads it %+v", got)
	}
	if start, _ := time.Parse(time.RFC3339, *got.CurrentPeriodStart); !start.Equal(time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("period starts %s, want the clock's time", *got.CurrentPeriodStart)
	}
	if end, _ := time.Parse(time.RFC3339, *got.CurrentPeriodEnd); !end.Equal(time.Date(2026, 2, 28, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("period ends %s, want 28 February (31 January's month, on its last day)", *got.CurrentPeriodEnd)
	}
	if l, err := c.ListSubscriptions(ctx, minipay.SubscriptionListParams{Status: "active"}); err != nil || len(l.Data) != 1 || l.Data[0].ID != sub.ID {
		t.Fatalf("list active %+v %v", l, err)
	}

	// A month later on the clock: the renewal is charged.
	clock, err = c.AdvanceTestClock(ctx, clock.ID, minipay.TestClockParams{FrozenTime: "2026-03-01T00:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	if clock.Status != "ready" {
		t.Fatalf("advanced clock %+v", clock)
	}
	invoices, err := c.ListInvoices(ctx, minipay.InvoiceListParams{Subscription: sub.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(invoices.Data) != 2 {
		t.Fatalf("invoices after a renewal: %+v", invoices)
	}
	for _, in := range invoices.Data {
		if in.Status != "paid" || in.Amount != "30.00" || in.Fee == nil || *in.Fee != "4.50" || in.Subscription != sub.ID {
			t.Fatalf("invoice %+v", in)
		}
	}
	first, err := c.GetInvoice(ctx, *signed.LatestInvoice)
	if err != nil || first.PeriodStart == "" {
		t.Fatalf("first invoice %+v %v", first, err)
	}
	if w, _ := host.GetWallet(ctx, "usr_member"); w.Balances[0].Available != "40.00" {
		t.Fatalf("wallet after the renewal: %+v", w)
	}

	// The user cancels from the host: at the end of the period, keeping it.
	_, err = host.CancelSubscription(ctx, sub.ID, "usr_someone_else")
	apiError(t, err, "another user's cancel")
	canceled, err := host.CancelSubscription(ctx, sub.ID, "usr_member")
	if err != nil {
		t.Fatal(err)
	}
	if !canceled.CancelAtPeriodEnd || canceled.Status != "active" || canceled.CancellationReason == nil || *canceled.CancellationReason != "user" {
		t.Fatalf("user's cancel %+v", canceled)
	}

	events, err := c.ListEvents(ctx, minipay.EventListParams{Type: "subscription.activated"})
	if err != nil || len(events.Data) != 1 {
		t.Fatalf("subscription.activated events %+v %v", events, err)
	}
	if es, err := events.Data[0].Subscription(); err != nil || es.ID != sub.ID {
		t.Fatalf("event's subscription %+v %v", es, err)
	}
}

func TestSubscriptionsInsufficientFundsRefundAndDeveloperCancel(t *testing.T) {
	s := newServer(t, "MINIPAY_SANDBOX=true")
	ctx := context.Background()
	c := subscriptionApp(t, s)
	host := minipay.NewHost(hostKey, minipay.WithBaseURL(s.url))
	plan, err := c.CreatePlan(ctx, minipay.PlanParams{Name: "Weekly tea", Amount: "8.00", Currency: "CNY", Option: "subscription", Interval: "week"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.CreateSubscription(ctx, minipay.SubscriptionParams{Plan: plan.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := host.TopUp(ctx, "usr_short", minipay.TopUpParams{Amount: "1.00", Currency: "CNY"}); err != nil {
		t.Fatal(err)
	}
	_, err = host.SignSubscription(ctx, sub.ID, minipay.SignParams{UserID: "usr_short", ClientSecret: sub.ClientSecret})
	if e := apiError(t, err, "signing with a short wallet"); e.Status != http.StatusPaymentRequired || e.Code != "insufficient_funds" {
		t.Fatalf("signing with a short wallet: %+v", e)
	}
	if got, _ := c.GetSubscription(ctx, sub.ID); got.Status != "incomplete" {
		t.Fatalf("after a failed signing: %+v", got)
	}
	if w, _ := host.GetWallet(ctx, "usr_short"); w.Balances[0].Available != "1.00" {
		t.Fatalf("a failed signing charged: %+v", w)
	}
	// Topped up, the same subscription signs.
	if _, err := host.TopUp(ctx, "usr_short", minipay.TopUpParams{Amount: "10.00", Currency: "CNY"}); err != nil {
		t.Fatal(err)
	}
	signed, err := host.SignSubscription(ctx, sub.ID, minipay.SignParams{UserID: "usr_short", ClientSecret: sub.ClientSecret})
	if err != nil || signed.Status != "active" || signed.Plan.Name != "Weekly tea" || signed.LatestInvoice == nil {
		t.Fatalf("sign after a top-up: %+v %v", signed, err)
	}
	// A paid invoice is a payment: refunded with the fee returned pro rata.
	ref, err := c.CreateRefund(ctx, minipay.RefundParams{Invoice: *signed.LatestInvoice, Amount: "4.00"})
	if err != nil {
		t.Fatal(err)
	}
	if ref.Amount != "4.00" || ref.FeeRefunded != "0.60" {
		t.Fatalf("refund of half an invoice %+v", ref)
	}
	if in, err := c.GetInvoice(ctx, *signed.LatestInvoice); err != nil || in.AmountRefunded != "4.00" || in.Status != "paid" {
		t.Fatalf("refunded invoice %+v %v", in, err)
	}

	// The developer cancels at once; a second cancel is refused.
	canceled, err := c.CancelSubscription(ctx, sub.ID, minipay.CancelSubscriptionParams{})
	if err != nil {
		t.Fatal(err)
	}
	if canceled.Status != "canceled" || canceled.CancellationReason == nil || *canceled.CancellationReason != "developer" {
		t.Fatalf("developer's cancel %+v", canceled)
	}
	_, err = c.CancelSubscription(ctx, sub.ID, minipay.CancelSubscriptionParams{})
	apiError(t, err, "cancel of a canceled subscription")
}

func TestTestClocksOnlyInASandbox(t *testing.T) {
	s := newServer(t) // not a sandbox
	c := subscriptionApp(t, s)
	_, err := c.CreateTestClock(context.Background(), minipay.TestClockParams{FrozenTime: "2026-01-01T00:00:00Z"})
	if e := apiError(t, err, "a test clock outside a sandbox"); e.Status != http.StatusForbidden || e.Code != "sandbox_only" {
		t.Fatalf("a test clock outside a sandbox: %+v", e)
	}
}

func TestSubscriptionPlanExpandedOrID(t *testing.T) {
	var expanded, id minipay.Subscription
	if err := json.Unmarshal([]byte(`{"id": "sub_1", "plan": {"id": "plan_1", "name": "Tea", "amount": "30.00", "interval": "month"}}`), &expanded); err != nil {
		t.Fatal(err)
	}
	if expanded.Plan.ID != "plan_1" || expanded.Plan.Name != "Tea" || expanded.Plan.Amount != "30.00" {
		t.Fatalf("expanded plan %+v", expanded.Plan)
	}
	if err := json.Unmarshal([]byte(`{"id": "sub_1", "plan": "plan_2"}`), &id); err != nil {
		t.Fatal(err)
	}
	if id.Plan != (minipay.Plan{ID: "plan_2"}) {
		t.Fatalf("plan id %+v", id.Plan)
	}
	if err := json.Unmarshal([]byte(`{"plan": 7}`), &id); err == nil {
		t.Fatal("a plan that is a number decoded")
	}
}
