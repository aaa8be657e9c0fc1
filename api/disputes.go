package api

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/disputes"
)

// disputeRoutes: the host opens a dispute for its user, the app answers,
// the platform rules; every kind of key reads (an app key its own).
func (s *Server) disputeRoutes(r chi.Router) {
	anyKey := s.allow(apps.KindAdmin, apps.KindHost, apps.KindSecret)
	r.With(s.allow(apps.KindHost)).Post("/disputes", s.h(s.openDispute))
	r.With(anyKey).Get("/disputes", s.h(s.listDisputes))
	r.With(anyKey).Get("/disputes/{id}", s.h(s.getDispute))
	r.With(s.allow(apps.KindSecret)).Post("/disputes/{id}/respond", s.h(s.respondToDispute))
	r.With(s.allow(apps.KindAdmin)).Post("/disputes/{id}/close", s.h(s.closeDispute))
}

func (s *Server) openDispute(r *http.Request) (int, any, error) {
	var in struct {
		Payment     string `json:"payment"`
		UserID      string `json:"user_id"`
		Amount      string `json:"amount"`
		Reason      string `json:"reason"`
		Description string `json:"description"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	d, err := s.Disputes.Open(r.Context(), disputes.OpenParams{ID: idempotentID(r, "dp"), PaymentID: in.Payment,
		UserID: in.UserID, Amount: in.Amount, Reason: in.Reason, Description: in.Description})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, d.Public(), nil
}

func (s *Server) respondToDispute(r *http.Request) (int, any, error) {
	var in struct {
		Evidence *struct {
			Text  string   `json:"text"`
			Files []string `json:"files"`
		} `json:"evidence"`
		Accept bool `json:"accept"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	p := disputes.RespondParams{AppID: principal(r).AppID, DisputeID: chi.URLParam(r, "id"), Accept: in.Accept}
	if in.Evidence != nil {
		p.Evidence = &disputes.Evidence{Text: in.Evidence.Text, Files: in.Evidence.Files}
	}
	d, err := s.Disputes.Respond(r.Context(), p)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, d.Public(), nil
}

func (s *Server) closeDispute(r *http.Request) (int, any, error) {
	var in struct {
		Outcome string `json:"outcome"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	d, err := s.Disputes.Close(r.Context(), chi.URLParam(r, "id"), in.Outcome)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, d.Public(), nil
}

// disputeScope is the app whose disputes a key reads: an app key its own,
// the admin and host keys any ("").
func disputeScope(r *http.Request) string {
	if p := principal(r); p.Kind == apps.KindSecret {
		return p.AppID
	}
	return ""
}

func (s *Server) getDispute(r *http.Request) (int, any, error) {
	d, err := s.Disputes.Get(r.Context(), disputeScope(r), chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, d.Public(), nil
}

func (s *Server) listDisputes(r *http.Request) (int, any, error) {
	limit, after, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	f := disputes.Filter{AppID: q.Get("app"), Status: q.Get("status"), PaymentID: q.Get("payment"), Limit: limit, StartingAfter: after}
	if own := disputeScope(r); own != "" {
		if f.AppID != "" && f.AppID != own {
			return 0, nil, minipay.Field("app", fmt.Errorf("%w: an app key lists its own app's disputes", errInvalidParam))
		}
		f.AppID = own
	}
	ds, more, err := s.Disputes.List(r.Context(), f)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, listOf(ds, more, disputes.Dispute.Public), nil
}
