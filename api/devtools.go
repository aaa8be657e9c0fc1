package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// developerToolRoutes serve what developers' tools need of an app key:
// which app it is (minipay listen keeps a signing secret per app) and, in a
// sandbox only, triggers that make real objects so that an event of a
// given type happens (minipay trigger).
func (s *Server) developerToolRoutes(r chi.Router) {
	r.Get("/app", s.h(s.currentApp))
	r.Post("/test_helpers/trigger", s.h(s.trigger))
}

func (s *Server) currentApp(r *http.Request) (int, any, error) {
	a, err := s.Apps.GetApp(r.Context(), principal(r).AppID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, appOut(a), nil
}

func (s *Server) trigger(r *http.Request) (int, any, error) {
	var in struct {
		EventType string `json:"event_type"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	out, err := s.Sandbox.Trigger(r.Context(), s.IsSandbox, principal(r).AppID, in.EventType)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}
