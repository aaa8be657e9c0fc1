package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/webhooks"
)

// webhookRoutes serves webhook endpoints and the event log to app keys.
func (s *Server) webhookRoutes(r chi.Router) {
	r.Post("/webhook_endpoints", s.h(s.createEndpoint))
	r.Get("/webhook_endpoints", s.h(s.listEndpoints))
	r.Get("/webhook_endpoints/{id}", s.h(s.getEndpoint))
	r.Patch("/webhook_endpoints/{id}", s.h(s.updateEndpoint))
	r.Delete("/webhook_endpoints/{id}", s.h(s.deleteEndpoint))
	r.Post("/webhook_endpoints/{id}/rotate_secret", s.h(s.rotateSecret))
	r.Get("/webhook_endpoints/{id}/attempts", s.h(s.listAttempts))
	r.Get("/events", s.h(s.listEvents))
	r.Get("/events/{id}", s.h(s.getEvent))
	r.Post("/events/{id}/redeliver", s.h(s.redeliver))
}

func owner(r *http.Request) webhooks.Owner {
	p := principal(r)
	return webhooks.Owner{AppID: p.AppID, DeveloperID: p.DeveloperID}
}

func (s *Server) createEndpoint(r *http.Request) (int, any, error) {
	var in struct {
		URL           string   `json:"url"`
		EnabledEvents []string `json:"enabled_events"`
		Description   string   `json:"description"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	e, err := s.Webhooks.CreateEndpoint(r.Context(), owner(r), webhooks.EndpointParams{
		ID: idempotentID(r, "we"), RequestHash: requestHash(r), URL: in.URL, EnabledEvents: in.EnabledEvents, Description: in.Description})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, e, nil
}

func (s *Server) listEndpoints(r *http.Request) (int, any, error) {
	limit, after, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	out, more, err := s.Webhooks.ListEndpoints(r.Context(), owner(r), limit, after)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newList(out, more), nil
}

func (s *Server) getEndpoint(r *http.Request) (int, any, error) {
	e, err := s.Webhooks.GetEndpoint(r.Context(), owner(r), chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, e, nil
}

func (s *Server) updateEndpoint(r *http.Request) (int, any, error) {
	var in struct {
		URL           *string   `json:"url"`
		EnabledEvents *[]string `json:"enabled_events"`
		Description   *string   `json:"description"`
		Status        *string   `json:"status"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	e, err := s.Webhooks.UpdateEndpoint(r.Context(), owner(r), chi.URLParam(r, "id"), webhooks.EndpointUpdate{
		URL: in.URL, EnabledEvents: in.EnabledEvents, Description: in.Description, Status: in.Status})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, e, nil
}

func (s *Server) deleteEndpoint(r *http.Request) (int, any, error) {
	endpointID := chi.URLParam(r, "id")
	if err := s.Webhooks.DeleteEndpoint(r.Context(), owner(r), endpointID); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"id": endpointID, "object": "webhook_endpoint", "deleted": true}, nil
}

func (s *Server) rotateSecret(r *http.Request) (int, any, error) {
	if err := decode(r, &struct{}{}); err != nil {
		return 0, nil, err
	}
	e, err := s.Webhooks.RotateSecret(r.Context(), owner(r), chi.URLParam(r, "id"),
		webhooks.Rotation{RotationID: idempotentID(r, "whrot"), RequestHash: requestHash(r)})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, e, nil
}

func (s *Server) listAttempts(r *http.Request) (int, any, error) {
	limit, after, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	out, more, err := s.Webhooks.ListAttempts(r.Context(), owner(r), chi.URLParam(r, "id"), limit, after)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newList(out, more), nil
}

func (s *Server) listEvents(r *http.Request) (int, any, error) {
	limit, after, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	f := webhooks.EventFilter{Type: r.URL.Query().Get("type"), Limit: limit, StartingAfter: after}
	switch order := r.URL.Query().Get("order"); order {
	case "", "desc":
	case "asc":
		f.OldestFirst = true
	default:
		return 0, nil, minipay.Field("order", fmt.Errorf("%w: order must be asc or desc", errInvalidParam))
	}
	// created[gte] and created[gt] bound from below, created[lt] and
	// created[lte] from above; RFC 3339 or Unix seconds.
	for _, b := range []struct {
		param string
		into  *time.Time
		shift time.Duration
	}{
		{"created[gte]", &f.CreatedGTE, 0}, {"created[gt]", &f.CreatedGTE, time.Microsecond},
		{"created[lt]", &f.CreatedLT, 0}, {"created[lte]", &f.CreatedLT, time.Microsecond},
	} {
		v := r.URL.Query().Get(b.param)
		if v == "" {
			continue
		}
		t, err := parseTime(v)
		if err != nil {
			return 0, nil, minipay.Field(b.param, fmt.Errorf("%w: %s must be an RFC 3339 time or Unix seconds", errInvalidParam, b.param))
		}
		*b.into = t.Add(b.shift)
	}
	out, more, err := s.Webhooks.ListEvents(r.Context(), owner(r), f)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newList(out, more), nil
}

func parseTime(v string) (time.Time, error) {
	if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
		if sec < 0 || sec > 253402300799 { // 9999-12-31
			return time.Time{}, fmt.Errorf("out of range")
		}
		return time.Unix(sec, 0), nil
	}
	return time.Parse(time.RFC3339Nano, v)
}

func (s *Server) getEvent(r *http.Request) (int, any, error) {
	e, err := s.Webhooks.GetEvent(r.Context(), owner(r), chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, e, nil
}

func (s *Server) redeliver(r *http.Request) (int, any, error) {
	var in struct {
		Endpoint string `json:"webhook_endpoint"` // optional: one endpoint instead of all subscribed
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	out, err := s.Webhooks.Redeliver(r.Context(), owner(r), chi.URLParam(r, "id"), in.Endpoint)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}
