package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Item is something the demo mini-app sells.
type Item struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Option      string `json:"option"`
	Amount      string `json:"amount"`
	Currency    string `json:"currency"`
}

// Items are the demo mini-app's wares: one per monetization option.
var Items = []Item{
	{ID: "tea", Name: "Oolong tea sampler", Description: "Six teas, shipped to you", Option: "goods", Amount: "38.00", Currency: "CNY"},
	{ID: "gems", Name: "500 gems", Description: "In-game currency", Option: "virtual_goods", Amount: "6.00", Currency: "CNY"},
	{ID: "tip", Name: "Tip the creator", Description: "Say thanks", Option: "tip", Amount: "5.00", Currency: "CNY"},
}

// Membership is what the demo mini-app sells by subscription: a plan the
// backend creates once (the first time someone asks) and a subscription
// per click, which the user signs in the host's agreement sheet.
type Membership struct {
	Name          string `json:"name"`
	Description   string `json:"description"`
	Option        string `json:"option"`
	Amount        string `json:"amount"`
	Currency      string `json:"currency"`
	Interval      string `json:"interval"`
	IntervalCount int    `json:"interval_count"`
	TrialDays     int    `json:"trial_period_days"`
}

// TeaClub is the demo's monthly membership. No trial: signing charges the
// first month at once, so a short wallet is refused at signing.
var TeaClub = Membership{Name: "Tea Club monthly", Description: "A new tea every month, members' prices",
	Option: "subscription", Amount: "30.00", Currency: "CNY", Interval: "month", IntervalCount: 1}

// Received is a webhook the backend accepted.
type Received struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Object     string `json:"object"`
	Status     string `json:"status,omitempty"`
	Amount     string `json:"amount,omitempty"`
	Currency   string `json:"currency,omitempty"`
	ReceivedAt string `json:"received_at"`
}

// Backend is the mini-app developer's server: it serves the mini-app,
// creates checkout sessions with the app's secret key, and receives
// webhooks, verifying each.
type Backend struct {
	// APIURL is minipay's base URL; SecretKey the app's secret key (sk_…).
	APIURL, SecretKey string
	// HostPort is the port of the host page's origin: the mini-app asks
	// for payment only from the host it was told of, on the same host name.
	HostPort string

	mu       sync.Mutex
	planID   string // TeaClub's plan, once made or found
	secret   string
	received []Received
	seen     map[string]bool
}

// SetWebhookSecret sets the endpoint secret (whsec_…) webhooks are verified
// with; until it is set every webhook is refused.
func (b *Backend) SetWebhookSecret(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.secret = s
}

// Received lists the webhooks received so far, newest first.
func (b *Backend) Received() []Received {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Clone(b.received)
	slices.Reverse(out)
	return out
}

// Handler serves the mini-app and the backend's routes.
func (b *Backend) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/items", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, Items) })
	mux.HandleFunc("GET /api/config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"host_port": b.HostPort})
	})
	mux.HandleFunc("POST /api/checkout", b.checkout)
	mux.HandleFunc("GET /api/membership", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, TeaClub) })
	mux.HandleFunc("POST /api/subscribe", b.subscribe)
	mux.HandleFunc("POST /webhooks", b.webhook)
	mux.HandleFunc("GET /api/webhooks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"data": b.Received()})
	})
	mux.Handle("/", files("app"))
	return mux
}

// checkout creates a session for one item: the price comes from the
// backend's own list, never from the browser.
func (b *Backend) checkout(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Item string `json:"item"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "parameter_invalid", err.Error())
		return
	}
	i := slices.IndexFunc(Items, func(it Item) bool { return it.ID == in.Item })
	if i < 0 {
		writeError(w, http.StatusNotFound, "unknown_item", "no such item")
		return
	}
	it := Items[i]
	body, _ := json.Marshal(map[string]any{
		"line_items": []map[string]any{{"name": it.Name, "unit_amount": it.Amount, "quantity": 1}},
		"currency":   it.Currency, "option": it.Option, "expires_in": 600,
		"metadata": map[string]string{"item": it.ID},
	})
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, b.APIURL+"/v1/checkout/sessions", bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "backend_error", err.Error())
		return
	}
	req.Header.Set("Authorization", "Bearer "+b.SecretKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		writeError(w, http.StatusBadGateway, "network", err.Error())
		return
	}
	defer res.Body.Close()
	var sess struct {
		ID           string `json:"id"`
		ClientSecret string `json:"client_secret"`
		AmountTotal  string `json:"amount_total"`
		Currency     string `json:"currency"`
		Error        *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&sess); err != nil || sess.Error != nil {
		code, msg := "api_error", fmt.Sprint(err)
		if sess.Error != nil {
			code, msg = sess.Error.Code, sess.Error.Message
		}
		writeError(w, res.StatusCode, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"session_id": sess.ID, "client_secret": sess.ClientSecret,
		"amount": sess.AmountTotal, "currency": sess.Currency})
}

// subscribe creates a subscription to the membership's plan for the user
// of this mini-app, to be signed in the host's agreement sheet: the plan
// and its price come from the backend, never from the browser.
func (b *Backend) subscribe(w http.ResponseWriter, r *http.Request) {
	plan, err := b.plan(r.Context())
	if err != nil {
		writeAPIError(w, err)
		return
	}
	var sub struct {
		ID           string `json:"id"`
		ClientSecret string `json:"client_secret"`
	}
	body := map[string]any{"plan": plan, "metadata": map[string]string{"membership": "tea_club"}}
	if err := b.api(r.Context(), http.MethodPost, "/v1/subscriptions", body, "", &sub); err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"subscription_id": sub.ID, "client_secret": sub.ClientSecret, "membership": TeaClub})
}

// plan is the membership's plan (plan_…): found among the app's plans, or
// made, once per process.
func (b *Backend) plan(ctx context.Context) (string, error) {
	b.mu.Lock()
	id := b.planID
	b.mu.Unlock()
	if id != "" {
		return id, nil
	}
	// The plan outlives this process (dev keeps its database): look for
	// it before making another.
	var plans struct {
		Data []struct {
			ID, Name, Amount, Currency, Option, Interval string
			IntervalCount                                int  `json:"interval_count"`
			TrialPeriodDays                              int  `json:"trial_period_days"`
			Active                                       bool `json:"active"`
		} `json:"data"`
	}
	if err := b.api(ctx, http.MethodGet, "/v1/plans?limit=100", nil, "", &plans); err != nil {
		return "", err
	}
	m := TeaClub
	for _, p := range plans.Data {
		if p.Active && p.Name == m.Name && p.Amount == m.Amount && p.Currency == m.Currency && p.Option == m.Option &&
			p.Interval == m.Interval && p.IntervalCount == m.IntervalCount && p.TrialPeriodDays == m.TrialDays {
			id = p.ID
		}
	}
	if id == "" {
		var made struct{ ID string }
		body := map[string]any{"name": m.Name, "amount": m.Amount, "currency": m.Currency, "option": m.Option,
			"interval": m.Interval, "interval_count": m.IntervalCount, "trial_period_days": m.TrialDays}
		// Two clicks racing on a fresh start make one plan: the key is the
		// plan's content.
		key := fmt.Sprintf("demo-plan:%s:%s:%s:%s:%d", m.Name, m.Amount, m.Currency, m.Interval, m.TrialDays)
		if err := b.api(ctx, http.MethodPost, "/v1/plans", body, key, &made); err != nil {
			return "", err
		}
		id = made.ID
	}
	b.mu.Lock()
	b.planID = id
	b.mu.Unlock()
	return id, nil
}

// apiError is minipay's error answer to a call of the backend.
type apiError struct {
	Status        int
	Code, Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("minipay: %d %s: %s", e.Status, e.Code, e.Message)
}

// api is one call to minipay with the app's secret key; an error answer
// is an *apiError.
func (b *Backend) api(ctx context.Context, method, path string, body any, idemKey string, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.APIURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.SecretKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if res.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(raw, &e)
		if e.Error.Code == "" {
			e.Error.Code, e.Error.Message = "api_error", string(raw)
		}
		return &apiError{Status: res.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	return json.Unmarshal(raw, out)
}

// writeAPIError answers the mini-app with what went wrong at minipay. An
// app made before the demo sold memberships lacks the subscription option:
// say how to get a new one.
func writeAPIError(w http.ResponseWriter, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		writeError(w, http.StatusBadGateway, "network", err.Error())
		return
	}
	msg := e.Message
	if strings.Contains(e.Code, "option") {
		msg += " (this demo app was made before it sold memberships: restart with minipay dev --reset)"
	}
	writeError(w, e.Status, e.Code, msg)
}

func (b *Backend) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	secret := b.secret
	b.mu.Unlock()
	verifier, err := standardwebhooks.NewWebhook(secret)
	if err == nil {
		err = verifier.Verify(body, r.Header)
	}
	if err != nil {
		http.Error(w, "signature: "+err.Error(), http.StatusBadRequest)
		return
	}
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Object struct {
				ID          string `json:"id"`
				Status      string `json:"status"`
				AmountTotal string `json:"amount_total"`
				Amount      string `json:"amount"`
				Currency    string `json:"currency"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	o := ev.Data.Object
	amount := o.AmountTotal
	if amount == "" {
		amount = o.Amount
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	// Deliveries are at least once: the event id makes a repeat harmless.
	if !b.seen[ev.ID] {
		b.seen[ev.ID] = true
		b.received = append(b.received, Received{ID: ev.ID, Type: ev.Type, Object: o.ID, Status: o.Status,
			Amount: amount, Currency: o.Currency, ReceivedAt: time.Now().UTC().Format(time.RFC3339)})
	}
	w.WriteHeader(http.StatusNoContent)
}
