package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
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
	status, body, err := h.call(r.Context(), http.MethodGet, "/v1/checkout/sessions/"+url.PathEscape(r.PathValue("id")), nil, "")
	if err != nil {
		writeError(w, http.StatusBadGateway, "network", err.Error())
		return
	}
	var s struct {
		App string `json:"app"`
	}
	// Another mini-app's session is not this page's to show.
	foreign := status == http.StatusOK && (json.Unmarshal(body, &s) != nil || s.App == "" || s.App != h.app())
	if foreign || status == http.StatusNotFound {
		writeError(w, http.StatusNotFound, "session_not_found", "no such checkout session")
		return
	}
	writeRaw(w, status, body)
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
