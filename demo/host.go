package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// User is a signed-in user of the demo super-app.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Host is the super-app's side: the host page and its server half, which
// keeps the host key and calls minipay for the page.
type Host struct {
	// APIURL is minipay's base URL as this process reaches it.
	APIURL  string
	HostKey string
	Users   []User
	// AppPort is the port of the mini-app's origin; the page loads the
	// mini-app from the same host name on that port.
	AppPort string
	HTTP    *http.Client

	mu    sync.Mutex
	appID string // the mini-app the page loads; see SetApp
}

// SetApp names the mini-app the page loads (app_…). The host knows which
// mini-app it put in the frame, so its payment sheet shows only that app's
// sessions; until the app is set it shows none.
func (h *Host) SetApp(appID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.appID = appID
}

func (h *Host) app() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.appID
}

// Handler serves the host page and its API, to be mounted at /demo/.
func (h *Host) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo/api/config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"users": h.Users, "app_port": h.AppPort})
	})
	mux.HandleFunc("GET /demo/api/wallets/{user}", h.wallet)
	mux.HandleFunc("GET /demo/api/sessions/{id}", h.session)
	mux.HandleFunc("POST /demo/api/sessions/{id}/confirm", h.confirm)
	mux.HandleFunc("GET /demo/api/subscriptions/{id}", h.subscription)
	mux.HandleFunc("POST /demo/api/subscriptions/{id}/sign", h.sign)
	mux.HandleFunc("POST /demo/api/subscriptions/{id}/cancel", h.cancelSubscription)
	mux.HandleFunc("GET /demo/api/users/{user}/subscriptions", h.memberships)
	mux.Handle("/demo/", http.StripPrefix("/demo", files("host")))
	return mux
}

func (h *Host) known(user string) bool {
	return slices.ContainsFunc(h.Users, func(u User) bool { return u.ID == user })
}

func (h *Host) wallet(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if !h.known(user) {
		writeError(w, http.StatusNotFound, "unknown_user", "not a demo user")
		return
	}
	h.proxy(w, r, http.MethodGet, "/v1/wallets/"+url.PathEscape(user), nil, "")
}

// session reads what the payment sheet shows of a session, as any host
// would: GET /v1/checkout/sessions/{id} with the host key, which answers
// the session without its client secret and the app's customer id, with
// the app's name.
func (h *Host) session(w http.ResponseWriter, r *http.Request) {
	h.readOwn(w, r, "/v1/checkout/sessions/", "session_not_found", "no such checkout session")
}

// subscription reads what the agreement sheet shows of a subscription:
// GET /v1/subscriptions/{id} with the host key, which answers it without
// its client secret and customer, with the app's name and the plan.
func (h *Host) subscription(w http.ResponseWriter, r *http.Request) {
	h.readOwn(w, r, "/v1/subscriptions/", "subscription_not_found", "no such subscription")
}

// readOwn answers minipay's host-key read of prefix+{id}, if the object
// belongs to the mini-app in the frame: another mini-app's session or
// subscription is not this page's to show.
func (h *Host) readOwn(w http.ResponseWriter, r *http.Request, prefix, notFound, msg string) {
	status, body, err := h.call(r.Context(), http.MethodGet, prefix+url.PathEscape(r.PathValue("id")), nil, "")
	if err != nil {
		writeError(w, http.StatusBadGateway, "network", err.Error())
		return
	}
	var s struct {
		App string `json:"app"`
	}
	foreign := status == http.StatusOK && (json.Unmarshal(body, &s) != nil || s.App == "" || s.App != h.app())
	if foreign || status == http.StatusNotFound {
		writeError(w, http.StatusNotFound, notFound, msg)
		return
	}
	writeRaw(w, status, body)
}

// userRequest is what the page sends to act for its signed-in user.
type userRequest struct {
	UserID       string `json:"user_id"`
	ClientSecret string `json:"client_secret,omitempty"`
}

// decodeUser reads a userRequest of a known demo user, or answers why not.
func (h *Host) decodeUser(w http.ResponseWriter, r *http.Request) (userRequest, bool) {
	var in userRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "parameter_invalid", err.Error())
		return in, false
	}
	if !h.known(in.UserID) {
		writeError(w, http.StatusForbidden, "unknown_user", "not a demo user")
		return in, false
	}
	return in, true
}

// sign signs a subscription for the signed-in user once they agreed on
// the sheet: POST /v1/subscriptions/{id}/sign with the host key and the
// client secret the mini-app handed over. The first period is charged at
// once (402 insufficient_funds leaves the subscription unsigned).
func (h *Host) sign(w http.ResponseWriter, r *http.Request) {
	in, ok := h.decodeUser(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	body, _ := json.Marshal(in)
	status, out, err := h.call(r.Context(), http.MethodPost, "/v1/subscriptions/"+url.PathEscape(id)+"/sign", body, r.Header.Get("Idempotency-Key"))
	if err != nil {
		writeError(w, http.StatusBadGateway, "network", err.Error())
		return
	}
	writeRaw(w, status, out)
}

// cancelSubscription is the user's cancel, from the host's list of their
// memberships: POST /v1/subscriptions/{id}/cancel with the host key and
// the user's id, which minipay honours only for the user who signed, and
// always at the end of the period already paid for.
func (h *Host) cancelSubscription(w http.ResponseWriter, r *http.Request) {
	in, ok := h.decodeUser(w, r)
	if !ok {
		return
	}
	body, _ := json.Marshal(userRequest{UserID: in.UserID})
	h.proxy(w, r, http.MethodPost, "/v1/subscriptions/"+url.PathEscape(r.PathValue("id"))+"/cancel", body, r.Header.Get("Idempotency-Key"))
}

// membershipsShownMax bounds the list of a user's memberships: the newest.
const membershipsShownMax = 20

// memberships lists the subscriptions the user signed, with every
// mini-app, newest first, as the host key reads them:
// GET /v1/subscriptions?user_id= with the host key.
func (h *Host) memberships(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if !h.known(user) {
		writeError(w, http.StatusNotFound, "unknown_user", "not a demo user")
		return
	}
	q := url.Values{"user_id": {user}, "limit": {strconv.Itoa(membershipsShownMax)}}
	h.proxy(w, r, http.MethodGet, "/v1/subscriptions?"+q.Encode(), nil, "")
}

// confirm pays a session for the signed-in user: the page sends the
// client secret it got from the mini-app, this server adds the host key.
func (h *Host) confirm(w http.ResponseWriter, r *http.Request) {
	var in struct {
		UserID       string `json:"user_id"`
		ClientSecret string `json:"client_secret"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "parameter_invalid", err.Error())
		return
	}
	if !h.known(in.UserID) {
		writeError(w, http.StatusForbidden, "unknown_user", "not a demo user")
		return
	}
	body, _ := json.Marshal(in)
	// One key per payment request of the page, so a retried request is
	// confirmed once, while a new attempt (after a top-up) is new.
	key := r.Header.Get("Idempotency-Key")
	h.proxy(w, r, http.MethodPost, "/v1/checkout/sessions/"+url.PathEscape(r.PathValue("id"))+"/confirm", body, key)
}

// proxy answers the page with minipay's answer to a call with the host key.
func (h *Host) proxy(w http.ResponseWriter, r *http.Request, method, path string, body []byte, idemKey string) {
	status, out, err := h.call(r.Context(), method, path, body, idemKey)
	if err != nil {
		writeError(w, http.StatusBadGateway, "network", err.Error())
		return
	}
	writeRaw(w, status, out)
}

// call is one call to minipay with the host key; it returns the status and
// the body (at most 1 MiB).
func (h *Host) call(ctx context.Context, method, path string, body []byte, idemKey string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(h.APIURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+h.HostKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	client := h.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	return res.StatusCode, out, nil
}
