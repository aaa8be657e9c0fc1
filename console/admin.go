package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/internal/idempotency"
	"github.com/minipay/minipay/ledger"
)

type developerRow struct{ ID, Name, Created string }

type developersPage struct {
	Rows           []developerRow
	Pager          pager
	IdempotencyKey string
}

// developers lists developers, with a form to add one.
func (s *Server) developers(w http.ResponseWriter, r *http.Request) error {
	limit, after := paging(r, "starting_after")
	devs, more, err := s.Apps.ListDevelopers(r.Context(), limit, after)
	if err != nil {
		return err
	}
	pg := &developersPage{IdempotencyKey: randomToken()}
	for _, d := range devs {
		pg.Rows = append(pg.Rows, developerRow{ID: d.ID, Name: d.Name, Created: s.when(d.Created)})
	}
	if len(devs) > 0 {
		pg.Pager = newPager(r, "starting_after", more, devs[len(devs)-1].ID)
	}
	s.render(w, r, http.StatusOK, "developers", "Developers", pg)
	return nil
}

// formID is the id an object created by this form gets: derived from the
// form's idempotency key, so submitting the form twice creates one.
func formID(r *http.Request, prefix string) string {
	key := r.PostFormValue("idempotency_key")
	if key == "" || len(key) > 255 {
		return ""
	}
	return idempotency.DeriveID(prefix, "console:admin", key)
}

func (s *Server) createDeveloper(w http.ResponseWriter, r *http.Request) error {
	d, err := s.Apps.CreateDeveloper(r.Context(), apps.DeveloperSpec{ID: formID(r, "dev"), Name: r.PostFormValue("name")})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/console/developers/"+url.PathEscape(d.ID), http.StatusSeeOther)
	return nil
}

type appRow struct {
	ID, Developer, Name, Options, Currencies, Created string
}

func (s *Server) appRowOf(a apps.App) appRow {
	return appRow{ID: a.ID, Developer: a.DeveloperID, Name: a.Name, Options: strings.Join(a.Options, ", "),
		Currencies: strings.Join(a.Currencies, ", "), Created: s.when(a.Created)}
}

type developerPage struct {
	developerRow
	Apps           []appRow
	Pager          pager
	Options        []string
	Currencies     []string
	IdempotencyKey string
}

// developer is a developer's page: its apps and a form to add one with the
// monetization options the platform enables for it.
func (s *Server) developer(w http.ResponseWriter, r *http.Request) error {
	d, err := s.Apps.GetDeveloper(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	limit, after := paging(r, "starting_after")
	list, more, err := s.Apps.ListApps(r.Context(), d.ID, limit, after)
	if err != nil {
		return err
	}
	pg := &developerPage{developerRow: developerRow{ID: d.ID, Name: d.Name, Created: s.when(d.Created)},
		Options: s.Catalog.Names(), Currencies: ledger.Currencies(), IdempotencyKey: randomToken()}
	for _, a := range list {
		pg.Apps = append(pg.Apps, s.appRowOf(a))
	}
	if len(list) > 0 {
		pg.Pager = newPager(r, "starting_after", more, list[len(list)-1].ID)
	}
	s.render(w, r, http.StatusOK, "developer", "Developer "+d.Name, pg)
	return nil
}

type appPage struct {
	appRow
	SecretKey      string // shown once, right after the app is created or its key rolled
	PreviousExpire string // when the keys before the new one stop working
	Repeated       bool   // the form was submitted again: the key was shown the first time
	// The form that changes what the app may sell: every option of the
	// catalog and every currency, the app's ticked.
	Options, Currencies []choice
	Saved               bool // the grants were just changed
}

// choice is a checkbox of a form.
type choice struct {
	Value   string
	Checked bool
}

func choices(all, ticked []string) []choice {
	out := make([]choice, len(all))
	for i, v := range all {
		out[i] = choice{Value: v, Checked: slices.Contains(ticked, v)}
	}
	return out
}

// appPageOf is an app's page with its grants form.
func (s *Server) appPageOf(a apps.App) *appPage {
	return &appPage{appRow: s.appRowOf(a), Options: choices(s.Catalog.Names(), a.Options),
		Currencies: choices(ledger.Currencies(), a.Currencies)}
}

// createApp creates an app with the options and currencies ticked, as
// POST /v1/apps does, and shows its secret key once.
func (s *Server) createApp(w http.ResponseWriter, r *http.Request) error {
	options, currencies := r.PostForm["options"], r.PostForm["currencies"]
	if err := s.Catalog.CheckGrants(options, currencies); err != nil {
		return err
	}
	id := formID(r, "app")
	a, key, err := s.Apps.CreateApp(r.Context(), apps.AppSpec{ID: id, DeveloperID: r.PostFormValue("developer"),
		Name: r.PostFormValue("name"), Options: options, Currencies: currencies})
	if errors.Is(err, idempotency.ErrSecretUnavailable) {
		// The form was sent again: the first made the app and showed its key.
		a, err = s.Apps.GetApp(r.Context(), id)
	}
	if err != nil {
		return err
	}
	pg := s.appPageOf(a)
	pg.SecretKey, pg.Repeated = key, key == ""
	s.render(w, r, http.StatusCreated, "app", "App "+a.Name, pg)
	return nil
}

// app is an app's page, with the button that rolls its secret key.
func (s *Server) app(w http.ResponseWriter, r *http.Request) error {
	a, err := s.Apps.GetApp(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	pg := s.appPageOf(a)
	pg.Saved = r.URL.Query().Get("done") == "saved"
	s.render(w, r, http.StatusOK, "app", "App "+a.Name, pg)
	return nil
}

// updateGrants sets the options and currencies the app may sell with to
// those ticked, as PATCH /v1/apps/{id} does.
func (s *Server) updateGrants(w http.ResponseWriter, r *http.Request) error {
	// Nothing ticked is an empty list, which the update refuses, not an
	// absent one, which it would leave as it is.
	options := append([]string{}, r.PostForm["options"]...)
	currencies := append([]string{}, r.PostForm["currencies"]...)
	if err := s.Catalog.CheckGrants(options, currencies); err != nil {
		return err
	}
	a, err := s.Apps.UpdateApp(r.Context(), chi.URLParam(r, "id"), apps.AppUpdate{Options: options, Currencies: currencies})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/console/apps/"+url.PathEscape(a.ID)+"?done=saved", http.StatusSeeOther)
	return nil
}

// rollKey gives the app a new secret key and shows it once; the keys
// before it keep working for apps.RollGrace.
func (s *Server) rollKey(w http.ResponseWriter, r *http.Request) error {
	a, err := s.Apps.GetApp(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	key, oldExpire, err := s.Apps.RollKey(r.Context(), apps.RollParams{AppID: a.ID})
	if err != nil {
		return err
	}
	pg := s.appPageOf(a)
	pg.SecretKey, pg.PreviousExpire = key, s.when(oldExpire)
	s.render(w, r, http.StatusOK, "app", "App "+a.Name, pg)
	return nil
}
