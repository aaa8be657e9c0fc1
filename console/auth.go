package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/internal/ratelimit"
)

// Cookies. The session cookie is scoped to /console, HttpOnly (no script
// can read it) and SameSite=Strict (no other site's page can make the
// browser send it). The login cookie carries the sign-in form's CSRF
// token until a session exists.
const (
	sessionCookie = "minipay_console"
	loginCookie   = "minipay_console_login"
	formBodyMax   = 64 << 10
)

type principalKey struct{}
type sessionKey struct{}

func principalFrom(ctx context.Context) (apps.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(apps.Principal)
	return p, ok
}

func who(r *http.Request) apps.Principal {
	p, _ := principalFrom(r.Context())
	return p
}

func sessionFrom(ctx context.Context) string {
	s, _ := ctx.Value(sessionKey{}).(string)
	return s
}

// csrfToken is the CSRF token of a session: a hash of its id, which only
// the signed-in browser knows (the cookie is HttpOnly and the database
// keeps a different hash). It needs no storage and is the same on every
// replica.
func csrfToken(sessionID string) string {
	sum := sha256.Sum256([]byte("minipay/console/csrf\x00" + sessionID))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("console: crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func equalTokens(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// signedIn admits requests with a live session: a page asked for without
// one goes to the sign-in form, a form posted without one is refused. A
// POST must carry the session's CSRF token.
func (s *Server) signedIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Cookie(sessionCookie)
		var (
			p   apps.Principal
			err error = apps.ErrConsoleSession
		)
		if c != nil {
			p, err = s.Apps.ConsoleSession(r.Context(), c.Value)
		}
		if err != nil && !errors.Is(err, apps.ErrConsoleSession) {
			s.fail(w, r, err)
			return
		}
		if err != nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.fail(w, r, errSignedOut)
			return
		}
		ctx := context.WithValue(context.WithValue(r.Context(), principalKey{}, p), sessionKey{}, c.Value)
		r = r.WithContext(ctx)
		if r.Method == http.MethodPost {
			if err := parseForm(w, r); err != nil {
				s.fail(w, r, err)
				return
			}
			if !equalTokens(r.PostFormValue("csrf_token"), csrfToken(c.Value)) {
				s.fail(w, r, errCSRF)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// allow admits only principals of the kinds of key given.
func (s *Server) allow(kinds ...apps.KeyKind) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !slices.Contains(kinds, who(r).Kind) {
				s.fail(w, r, errWrongKind)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, formBodyMax)
	if err := r.ParseForm(); err != nil {
		return errForm
	}
	return nil
}

type loginPage struct {
	CSRF  string
	Next  string
	Error string
}

// loginForm shows the sign-in form, with a fresh CSRF token in a cookie
// and in the form (signing in needs both to match).
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) error {
	return s.showLogin(w, r, http.StatusOK, "")
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, status int, errMsg string) error {
	token := randomToken()
	http.SetCookie(w, s.cookie(r, loginCookie, token, "/console/login", 3600))
	s.render(w, r, status, "login", "Sign in", &loginPage{CSRF: token, Next: safeNext(r.FormValue("next")), Error: errMsg})
	return nil
}

// login exchanges a key for a session. A wrong key is told only that it is
// wrong; attempts are limited per client address.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	c, _ := r.Cookie(loginCookie)
	if c == nil || !equalTokens(r.PostFormValue("csrf_token"), c.Value) {
		return errCSRF
	}
	if ok, delay := s.signIns.Allow(s.clientAddr(r), signInPerSecond, signInBurst); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(delay)))
		return errTooMany
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	sessionID, _, err := s.Apps.SignIn(r.Context(), key, apps.KindSecret, apps.KindAdmin)
	switch {
	case errors.Is(err, apps.ErrUnauthenticated):
		return s.showLogin(w, r, http.StatusUnauthorized, errWrongKey.Error())
	case errors.Is(err, apps.ErrSignInRefused):
		return s.showLogin(w, r, http.StatusForbidden, err.Error())
	case err != nil:
		return err
	}
	http.SetCookie(w, s.cookie(r, loginCookie, "", "/console/login", -1))
	http.SetCookie(w, s.cookie(r, sessionCookie, sessionID, "/console", 0))
	next := safeNext(r.PostFormValue("next"))
	if next == "" {
		next = "/console/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// logout ends the session here and in the database.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if err := s.Apps.SignOut(r.Context(), sessionFrom(r.Context())); err != nil {
		return err
	}
	http.SetCookie(w, s.cookie(r, sessionCookie, "", "/console", -1))
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
	return nil
}

// cookie is a console cookie: HttpOnly, SameSite=Strict, Secure when the
// browser reached us over TLS. maxAge 0 makes a browser-session cookie,
// negative deletes it.
func (s *Server) cookie(r *http.Request, name, value, path string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.overTLS(r)}
}

// overTLS reports whether the browser's connection is encrypted: this
// process terminated TLS, or a trusted proxy says it did.
func (s *Server) overTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return s.TrustProxy && strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
}

// clientAddr is the address sign-in attempts are counted under: the peer,
// or behind a trusted proxy the last address it appended to
// X-Forwarded-For (earlier entries come from the client and can be forged).
func (s *Server) clientAddr(r *http.Request) string {
	if s.TrustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if a := strings.TrimSpace(parts[len(parts)-1]); a != "" {
				return a
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// safeNext keeps a post-sign-in destination only if it is a console page
// of this site, so the sign-in form cannot be used to send people away.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.HasPrefix(next, "/console/login") || strings.HasPrefix(next, "/console/logout") {
		return ""
	}
	return next
}
