package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// User is a signed-in user of the demo super-app.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// ErrNoSession is what Host.ReadSession returns for a session the host
// cannot show.
var ErrNoSession = errors.New("no such checkout session")

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
	// ReadSession returns what the payment sheet shows of a session of
	// the mini-app in the frame (no client secret). The host knows which
	// mini-app it loaded, so it reads only that app's sessions.
	ReadSession func(ctx context.Context, id string) (any, error)
	HTTP        *http.Client
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

func (h *Host) session(w http.ResponseWriter, r *http.Request) {
	s, err := h.ReadSession(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNoSession) {
		writeError(w, http.StatusNotFound, "session_not_found", err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusBadGateway, "host_error", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s)
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

func (h *Host) proxy(w http.ResponseWriter, r *http.Request, method, path string, body []byte, idemKey string) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(h.APIURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "host_error", err.Error())
		return
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
		writeError(w, http.StatusBadGateway, "network", err.Error())
		return
	}
	defer res.Body.Close()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(res.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(res.Body, 1<<20))
}
