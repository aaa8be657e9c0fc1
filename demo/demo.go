// Package demo is what "minipay dev" shows a newcomer: a host page (the
// super-app's side, at /demo/ next to the API) that runs a demo mini-app in
// a frame, and the mini-app's own backend, which creates checkout sessions
// with the app's secret key and receives webhooks.
//
// The two sides are separate origins, as in production: the mini-app talks
// to the host page only through the SDK's postMessage bridge
// (static/minipay.js, built from sdk/js/src/browser.ts), and to its own
// backend. Secret keys stay on the servers: the host page's server half
// holds the host key, reads the sessions its payment sheet shows and
// confirms payments through minipay's API, as a real host's server does;
// the mini-app's backend holds the app's secret key.
package demo

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// files serves static/<dir> plus the shared SDK bundle.
func files(dir string) http.Handler {
	sub, err := fs.Sub(static, "static/"+dir)
	if err != nil {
		panic("demo: " + err.Error())
	}
	fileServer := http.FileServer(http.FS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == "/minipay.js" {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			http.ServeFileFS(w, r, static, "static/minipay.js")
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeRaw answers with a JSON body as it came from minipay.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
