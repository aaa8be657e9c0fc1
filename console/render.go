package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/ledger"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// assets maps an asset's name with its content hash (chart.3f2a….js) to
// its file: a name changes whenever its content does, so browsers may
// cache each for a year.
var (
	assets     = map[string]string{} // hashed name → file in staticFS
	assetNames = map[string]string{} // file name → hashed name
)

func init() {
	entries, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		panic("console: " + err.Error())
	}
	for _, e := range entries {
		b, err := staticFS.ReadFile("static/" + e.Name())
		if err != nil {
			panic("console: " + err.Error())
		}
		sum := sha256.Sum256(b)
		ext := path.Ext(e.Name())
		hashed := strings.TrimSuffix(e.Name(), ext) + "." + hex.EncodeToString(sum[:6]) + ext
		assets[hashed] = "static/" + e.Name()
		assetNames[e.Name()] = hashed
	}
}

// asset is the URL of a static file, by its plain name.
func asset(name string) string {
	h, ok := assetNames[name]
	if !ok {
		panic("console: no asset " + name)
	}
	return "/console/static/" + h
}

func serveAsset(w http.ResponseWriter, r *http.Request) {
	file, ok := assets[chi.URLParam(r, "name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeFileFS(w, r, staticFS, file)
}

// layout is what every page template gets: who is signed in, the CSRF
// token for its forms, and the page's own data.
type layout struct {
	Title string
	Who   apps.Principal
	CSRF  string
	Path  string
	Data  any
}

// templates holds one template set per page: the layout with the page's
// file, parsed once at start.
var templates = map[string]*template.Template{}

var funcs = template.FuncMap{
	"asset":   asset,
	"money":   money,
	"amount":  ledger.FormatAmount,
	"join":    strings.Join,
	"excerpt": excerpt,
	"query":   query,
}

func init() {
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic("console: " + err.Error())
	}
	for _, p := range pages {
		name := strings.TrimSuffix(path.Base(p), ".html")
		if name == "layout" {
			continue
		}
		templates[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, p))
	}
}

// render writes page name with data, or a 500 if it cannot be rendered
// (a template bug, caught by the tests that render every page).
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	t, ok := templates[name]
	if !ok {
		panic("console: no template " + name)
	}
	l := layout{Title: title, Data: data, Path: r.URL.Path}
	if p, ok := principalFrom(r.Context()); ok {
		l.Who = p
		l.CSRF = csrfToken(sessionFrom(r.Context()))
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", l); err != nil {
		s.Log.Error("console render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// money is an amount in minor units as people read it: "12.34 CNY".
func money(currency string, minor int64) string {
	return ledger.FormatAmount(currency, minor) + " " + currency
}

// excerpt is at most n characters of s, with an ellipsis when cut.
func excerpt(n int, s string) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// query is the current page's URL query with one parameter set, for
// paging links that keep the page's filters: query .Query "starting_after" id.
func query(q url.Values, pairs ...string) string {
	out := url.Values{}
	for k, v := range q {
		out[k] = v
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			out.Del(pairs[i])
		} else {
			out.Set(pairs[i], pairs[i+1])
		}
	}
	if len(out) == 0 {
		return "?"
	}
	return "?" + out.Encode()
}

// when formats t in the console's time zone; zero is "—".
func (s *Server) when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(s.Location).Format("2006-01-02 15:04:05 MST")
}
