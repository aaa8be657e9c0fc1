package main

import (
	"encoding/json"
	"testing"
)

// TestPaymentLineSubscriptions: dev's terminal names each subscription
// event's object and money as the event carries them.
func TestPaymentLineSubscriptions(t *testing.T) {
	obj := func(s string) map[string]any {
		var o map[string]any
		if err := json.Unmarshal([]byte(s), &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	for _, c := range []struct{ typ, object, want string }{
		{"subscription.activated", `{"id": "sub_1", "status": "active", "plan": {"id": "plan_1", "name": "Tea Club monthly"}}`,
			`subscribe sub_1 signed (active), plan "Tea Club monthly"`},
		{"invoice.paid", `{"id": "in_1", "amount": "30.00", "currency": "CNY", "subscription": "sub_1", "fee": "4.50"}`,
			"invoice   in_1 30.00 CNY paid for sub_1, fee 4.50"},
		{"invoice.payment_failed", `{"id": "in_2", "amount": "30.00", "currency": "CNY", "subscription": "sub_1", "attempt_count": 2}`,
			"invoice   in_2 30.00 CNY of sub_1 not paid (attempt 2)"},
		{"subscription.canceled", `{"id": "sub_1", "cancellation_reason": "user"}`, "subscribe sub_1 canceled (user)"},
		{"subscription.updated", `{"id": "sub_1"}`, ""},
	} {
		if got := paymentLine(c.typ, obj(c.object)); got != c.want {
			t.Errorf("%s: %q, want %q", c.typ, got, c.want)
		}
	}
}
