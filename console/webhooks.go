package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/minipay/minipay/webhooks"
)

func owner(r *http.Request) webhooks.Owner {
	p := who(r)
	return webhooks.Owner{AppID: p.AppID, DeveloperID: p.DeveloperID}
}

type endpointRow struct {
	ID, URL, Description, Events, Status, DisabledReason, Created string
}

func endpointRowOf(e webhooks.EndpointObject) endpointRow {
	row := endpointRow{ID: e.ID, URL: e.URL, Description: e.Description, Events: strings.Join(e.EnabledEvents, ", "),
		Status: e.Status, Created: e.Created}
	if e.DisabledReason != nil {
		row.DisabledReason = *e.DisabledReason
	}
	return row
}

type endpointsPage struct {
	Rows  []endpointRow
	Pager pager
}

// endpoints lists the app's webhook endpoints.
func (s *Server) endpoints(w http.ResponseWriter, r *http.Request) error {
	limit, after := paging(r, "starting_after")
	eps, more, err := s.Webhooks.ListEndpoints(r.Context(), owner(r), limit, after)
	if err != nil {
		return err
	}
	pg := &endpointsPage{}
	for _, e := range eps {
		pg.Rows = append(pg.Rows, endpointRowOf(e))
	}
	if len(eps) > 0 {
		pg.Pager = newPager(r, "starting_after", more, eps[len(eps)-1].ID)
	}
	s.render(w, r, http.StatusOK, "webhooks", "Webhooks", pg)
	return nil
}

type attemptRow struct {
	ID, Event, Outcome, Status, Latency, Excerpt, Error, NextAttempt, Created string
	Attempt                                                                   int
	Failed                                                                    bool
}

type endpointPage struct {
	endpointRow
	PreviousSecretExpires string
	Secret                string // a new secret, shown once, right after rotating
	Attempts              []attemptRow
	Pager                 pager
	Note                  string
}

var endpointNotes = map[string]string{"redelivered": "Queued for delivery again:"}

// endpoint is one endpoint's page: its settings and its attempt log, each
// failed attempt with a button that delivers its event again.
func (s *Server) endpoint(w http.ResponseWriter, r *http.Request) error {
	pg, err := s.endpointPage(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	pg.Note = flash(r.URL.Query(), endpointNotes)
	s.render(w, r, http.StatusOK, "webhook", "Webhook endpoint "+pg.ID, pg)
	return nil
}

func (s *Server) endpointPage(r *http.Request, id string) (*endpointPage, error) {
	e, err := s.Webhooks.GetEndpoint(r.Context(), owner(r), id)
	if err != nil {
		return nil, err
	}
	limit, after := paging(r, "starting_after")
	attempts, more, err := s.Webhooks.ListAttempts(r.Context(), owner(r), id, limit, after)
	if err != nil {
		return nil, err
	}
	pg := &endpointPage{endpointRow: endpointRowOf(e)}
	if e.PreviousSecretExpiresAt != nil {
		pg.PreviousSecretExpires = s.whenText(*e.PreviousSecretExpiresAt)
	}
	for _, a := range attempts {
		row := attemptRow{ID: a.ID, Event: a.Event, Attempt: a.Attempt, Outcome: a.Outcome, Status: "—",
			Latency: strconv.FormatFloat(a.LatencyMs, 'f', 1, 64) + " ms", Excerpt: a.ResponseExcerpt, Error: a.Error,
			Created: s.whenText(a.Created), Failed: a.Outcome != "succeeded"}
		if a.StatusCode != nil {
			row.Status = strconv.Itoa(*a.StatusCode)
		}
		if a.NextAttemptAt != nil {
			row.NextAttempt = s.whenText(*a.NextAttemptAt)
		}
		pg.Attempts = append(pg.Attempts, row)
	}
	if len(attempts) > 0 {
		pg.Pager = newPager(r, "starting_after", more, attempts[len(attempts)-1].ID)
	}
	return pg, nil
}

// whenText is an API timestamp in the console's time zone.
func (s *Server) whenText(ts string) string {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return ts
	}
	return s.when(t)
}

// rotateSecret gives the endpoint a new signing secret and shows it, once,
// on the page this answers with; it is never shown again.
func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	e, err := s.Webhooks.RotateSecret(r.Context(), owner(r), id, webhooks.Rotation{})
	if err != nil {
		return err
	}
	pg, err := s.endpointPage(r, id)
	if err != nil {
		return err
	}
	pg.Secret = e.Secret
	s.render(w, r, http.StatusOK, "webhook", "Webhook endpoint "+pg.ID, pg)
	return nil
}

// redeliver queues one event again to this endpoint.
func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) error {
	id, event := chi.URLParam(r, "id"), r.PostFormValue("event")
	if event == "" {
		return fmt.Errorf("%w: which event?", errForm)
	}
	if _, err := s.Webhooks.Redeliver(r.Context(), owner(r), event, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/console/webhooks/"+url.PathEscape(id)+"?done=redelivered&id="+url.QueryEscape(event), http.StatusSeeOther)
	return nil
}
