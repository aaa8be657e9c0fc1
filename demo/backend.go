package demo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
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
