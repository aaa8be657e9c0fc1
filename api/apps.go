package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
)

func (s *Server) adminAppRoutes(r chi.Router) {
	r.Post("/developers", s.h(s.createDeveloper))
	r.Get("/developers/{id}", s.h(s.getDeveloper))
	r.Post("/apps", s.h(s.createApp))
	r.Get("/apps/{id}", s.h(s.getApp))
	r.Patch("/apps/{id}", s.h(s.updateApp))
	r.Post("/apps/{id}/keys/roll", s.h(s.rollKey))
}

func (s *Server) catalogRoutes(r chi.Router) {
	r.Get("/monetization_options", s.h(s.listOptions))
}

type developerJSON struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Name    string `json:"name"`
	Created string `json:"created"`
}

func developerOut(d apps.Developer) developerJSON {
	return developerJSON{ID: d.ID, Object: "developer", Name: d.Name, Created: minipay.Timestamp(d.Created)}
}

func (s *Server) createDeveloper(r *http.Request) (int, any, error) {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	d, err := s.Apps.CreateDeveloper(r.Context(), apps.DeveloperSpec{ID: idempotentID(r, "dev"), RequestHash: requestHash(r), Name: in.Name})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, developerOut(d), nil
}

func (s *Server) getDeveloper(r *http.Request) (int, any, error) {
	d, err := s.Apps.GetDeveloper(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, developerOut(d), nil
}

type appJSON struct {
	ID         string   `json:"id"`
	Object     string   `json:"object"`
	Developer  string   `json:"developer"`
	Name       string   `json:"name"`
	Options    []string `json:"options"`
	Currencies []string `json:"currencies"`
	Created    string   `json:"created"`
	SecretKey  string   `json:"secret_key,omitempty"`
}

func appOut(a apps.App) appJSON {
	return appJSON{ID: a.ID, Object: "app", Developer: a.DeveloperID, Name: a.Name, Options: a.Options,
		Currencies: a.Currencies, Created: minipay.Timestamp(a.Created)}
}

func (s *Server) createApp(r *http.Request) (int, any, error) {
	var in struct {
		Developer  string   `json:"developer"`
		Name       string   `json:"name"`
		Options    []string `json:"options"`
		Currencies []string `json:"currencies"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if err := s.Checkout.Catalog().CheckGrants(in.Options, in.Currencies); err != nil {
		return 0, nil, err
	}
	a, key, err := s.Apps.CreateApp(r.Context(), apps.AppSpec{ID: idempotentID(r, "app"), RequestHash: requestHash(r), DeveloperID: in.Developer,
		Name: in.Name, Options: in.Options, Currencies: in.Currencies})
	if err != nil {
		return 0, nil, err
	}
	out := appOut(a)
	out.SecretKey = key
	return http.StatusCreated, out, nil
}

func (s *Server) getApp(r *http.Request) (int, any, error) {
	a, err := s.Apps.GetApp(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, appOut(a), nil
}

// updateApp changes what the platform enabled for an app: its name,
// options or currencies, each left as it is when absent.
func (s *Server) updateApp(r *http.Request) (int, any, error) {
	var in struct {
		Name       *string  `json:"name"`
		Options    []string `json:"options"`
		Currencies []string `json:"currencies"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if err := s.Checkout.Catalog().CheckGrants(in.Options, in.Currencies); err != nil {
		return 0, nil, err
	}
	a, err := s.Apps.UpdateApp(r.Context(), chi.URLParam(r, "id"), apps.AppUpdate{Name: in.Name, Options: in.Options, Currencies: in.Currencies})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, appOut(a), nil
}

func (s *Server) rollKey(r *http.Request) (int, any, error) {
	var in struct {
		ExpireOldNow bool `json:"expire_old_now"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	key, oldExpire, err := s.Apps.RollKey(r.Context(), apps.RollParams{AppID: chi.URLParam(r, "id"), ExpireOldNow: in.ExpireOldNow,
		KeyID: idempotentID(r, "key"), RequestHash: requestHash(r)})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"object": "api_key", "app": chi.URLParam(r, "id"), "secret_key": key,
		"previous_keys_expire_at": minipay.Timestamp(oldExpire)}, nil
}

type optionJSON struct {
	Name          string   `json:"name"`
	Object        string   `json:"object"`
	Version       string   `json:"version"`
	FeeBPS        int64    `json:"fee_bps"`
	FeeFixed      string   `json:"fee_fixed"`
	MinAmount     string   `json:"min_amount"`
	MaxAmount     string   `json:"max_amount"`
	Currencies    []string `json:"currencies"`
	Refundable    bool     `json:"refundable"`
	RefundWindow  string   `json:"refund_window"`
	HoldingPeriod string   `json:"holding_period"`
	Recurring     bool     `json:"recurring"`
	EffectiveFrom string   `json:"effective_from"`
	Current       bool     `json:"current"`
}

// listOptions lists every version of every option, marking the ones in
// effect now; future versions show what will change and when.
func (s *Server) listOptions(r *http.Request) (int, any, error) {
	cat := s.Checkout.Catalog()
	var out []optionJSON
	now := timeNow()
	for _, name := range cat.Names() {
		current, _ := cat.At(name, now)
		for _, o := range cat.Versions(name) {
			out = append(out, optionJSON{Name: o.Name, Object: "monetization_option", Version: o.Version(), FeeBPS: o.FeeBPS,
				FeeFixed: o.FeeFixed.String(), MinAmount: o.MinAmount.String(), MaxAmount: o.MaxAmount.String(),
				Currencies: o.Currencies, Refundable: o.Refundable, RefundWindow: o.RefundWindow.String(),
				HoldingPeriod: o.HoldingPeriod.String(), Recurring: o.Recurring, EffectiveFrom: minipay.Timestamp(o.EffectiveFrom),
				Current: o.Version() == current.Version()})
		}
	}
	return http.StatusOK, newList(out, false), nil
}
