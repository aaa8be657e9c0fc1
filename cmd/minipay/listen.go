package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/minipay/minipay/webhooks"
)

// listen's limits.
const (
	listenPageMax        = 100              // events per poll
	listenRetryMax       = 5 * time.Second  // longest wait between tries while the API is away
	listenForwardTimeout = 15 * time.Second // as minipay's own deliveries
)

func listenCommand(fs *flag.FlagSet, e *env) runFunc {
	api := apiFlags(fs, e.getenv)
	forwardTo := fs.String("forward-to", "", "where to POST each event, e.g. http://localhost:4242/webhooks (required)")
	events := fs.String("events", "", "only these event types, comma-separated (default: all)")
	printSecret := fs.Bool("print-secret", false, "print the local signing secret and exit")
	poll := fs.Duration("poll", 250*time.Millisecond, "how often to ask the API for new events")
	return noArgs("listen", func(ctx context.Context) error {
		if err := api.check("listen"); err != nil {
			return err
		}
		l := &listener{api: api, stdout: e.stdout, stderr: e.stderr, poll: *poll,
			client: &http.Client{Timeout: listenForwardTimeout}}
		if *printSecret {
			return l.printSecret(ctx)
		}
		if err := l.setTarget(*forwardTo, *events); err != nil {
			return err
		}
		return l.run(ctx)
	})
}

// listener follows an app's events through the API and forwards each,
// signed with a local secret, to a local URL.
type listener struct {
	api            *apiClient
	stdout, stderr io.Writer
	poll           time.Duration
	client         *http.Client
	target         string
	types          []string // empty: every type
	signer         *standardwebhooks.Webhook
	away           bool // the API did not answer last time
}

func (l *listener) setTarget(forwardTo, events string) error {
	u, err := url.Parse(forwardTo)
	if forwardTo == "" {
		return usageError("listen: --forward-to is required, e.g. --forward-to http://localhost:4242/webhooks")
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError("listen: --forward-to %q is not an http(s) URL such as http://localhost:4242/webhooks", forwardTo)
	}
	l.target = forwardTo
	for _, t := range strings.Split(events, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if !slices.Contains(webhooks.Types, t) {
			return usageError("listen: --events: no event type %q; the types are %s", t, strings.Join(webhooks.Types, ", "))
		}
		l.types = append(l.types, t)
	}
	return nil
}

// appInfo is what GET /v1/app says of the key's app.
type appInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// whoAmI asks which app the key belongs to, waiting for the API if it is
// not up yet, and returns the server's clock from the answer.
func (l *listener) whoAmI(ctx context.Context) (appInfo, time.Time, error) {
	var app appInfo
	var h http.Header
	err := l.retry(ctx, func() (err error) {
		h, err = l.api.do(ctx, "GET", "/v1/app", nil, &app)
		return err
	})
	if err != nil {
		return app, time.Time{}, err
	}
	now, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		now = time.Now()
	}
	return app, now, nil
}

func (l *listener) printSecret(ctx context.Context) error {
	app, _, err := l.whoAmI(ctx)
	if err != nil {
		return err
	}
	secret, _, err := localSecret(app.ID)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(l.stdout, secret)
	return err
}

func (l *listener) run(ctx context.Context) error {
	app, since, err := l.whoAmI(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	if err != nil {
		return err
	}
	secret, path, err := localSecret(app.ID)
	if err != nil {
		return err
	}
	if l.signer, err = standardwebhooks.NewWebhook(secret); err != nil {
		return fmt.Errorf("listen: the secret in %s: %w", path, err)
	}
	fmt.Fprintf(l.stdout, "Ready. Forwarding the events of %s (%s) from %s to %s.\n", app.ID, app.Name, l.api.baseURL, l.target)
	fmt.Fprintf(l.stdout, "Your local webhook signing secret is %s\n", secret)
	fmt.Fprintf(l.stdout, "(kept in %s: the same for this app on this machine). Press Ctrl-C to stop.\n", path)
	after := ""
	for {
		page, more, err := l.next(ctx, after, since)
		if ctx.Err() != nil {
			fmt.Fprintln(l.stdout, "Stopped.")
			return nil
		}
		if apiCode(err) == "event_not_found" && after != "" {
			// The API came back without the last event seen: its database
			// was reset (minipay dev --reset). Go on from now.
			fmt.Fprintf(l.stdout, "%s  the API no longer has event %s (was its database reset?); following new events\n", stamp(time.Now()), after)
			if _, since, err = l.whoAmI(ctx); err != nil {
				return err
			}
			after = ""
			continue
		}
		if err != nil {
			return err
		}
		for _, raw := range page {
			var ev struct{ ID, Type string }
			if err := json.Unmarshal(raw, &ev); err != nil {
				return fmt.Errorf("listen: an event the API sent: %w", err)
			}
			after = ev.ID
			if len(l.types) == 0 || slices.Contains(l.types, ev.Type) {
				l.forward(ctx, ev.ID, ev.Type, raw)
			}
		}
		if more {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(l.poll):
		}
	}
}

// next fetches the events after the cursor (or, before the first one,
// those since listen started), waiting out an API that is away.
func (l *listener) next(ctx context.Context, after string, since time.Time) ([]json.RawMessage, bool, error) {
	q := url.Values{"order": {"asc"}, "limit": {strconv.Itoa(listenPageMax)}}
	if after != "" {
		q.Set("starting_after", after)
	} else {
		q.Set("created[gte]", since.UTC().Format(time.RFC3339))
	}
	var page struct {
		Data    []json.RawMessage `json:"data"`
		HasMore bool              `json:"has_more"`
	}
	err := l.retry(ctx, func() error {
		_, err := l.api.do(ctx, "GET", "/v1/events?"+q.Encode(), nil, &page)
		return err
	})
	return page.Data, page.HasMore, err
}

// retry calls fn until it succeeds, fails for good, or ctx ends. While the
// API is away (restarting, say) it says so once and tries again with
// growing pauses; when it is back it says that too.
func (l *listener) retry(ctx context.Context, fn func() error) error {
	wait := 250 * time.Millisecond
	for {
		err := fn()
		if err == nil || !transient(err) || ctx.Err() != nil {
			if err == nil && l.away {
				l.away = false
				fmt.Fprintf(l.stdout, "%s  reconnected to %s\n", stamp(time.Now()), l.api.baseURL)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if !l.away {
			l.away = true
			fmt.Fprintf(l.stdout, "%s  lost the API: %v; retrying until it is back (Ctrl-C to stop)\n", stamp(time.Now()), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, listenRetryMax)
	}
}

// forward POSTs one event to the target, signed as minipay signs its
// deliveries but with the local secret, and prints one line about it.
func (l *listener) forward(ctx context.Context, eventID, typ string, body []byte) {
	start := time.Now()
	status, err := l.send(ctx, eventID, body, start)
	ms := time.Since(start).Milliseconds()
	result := strconv.Itoa(status)
	switch {
	case err != nil:
		result = "error: " + err.Error()
	case status < 200 || status > 299:
		result += " " + http.StatusText(status)
	}
	fmt.Fprintf(l.stdout, "%s  %-28s %s  -> %s (%d ms)\n", stamp(start), typ, eventID, result, ms)
}

func (l *listener) send(ctx context.Context, eventID string, body []byte, at time.Time) (int, error) {
	sig, err := l.signer.Sign(eventID, at, body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", l.target, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "minipay-listen")
	req.Header.Set(webhooks.HeaderID, eventID)
	req.Header.Set(webhooks.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(webhooks.HeaderSignature, sig)
	res, err := l.client.Do(req)
	if err != nil {
		return 0, unwrapURLError(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, nil
}

func stamp(t time.Time) string { return t.Format("2006-01-02 15:04:05") }

// localSecret returns the signing secret listen uses for an app on this
// machine, creating it on first use, and the file that keeps it (under the
// user's configuration directory, readable by the user only). A lock file
// keeps two listens starting at once from each writing the file without
// the other's new secret.
func localSecret(appID string) (secret, path string, err error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", "", fmt.Errorf("listen: where to keep the local secret: %w", err)
	}
	path = filepath.Join(dir, "minipay", "listen-secrets.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", path, fmt.Errorf("listen: %w", err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", path, fmt.Errorf("listen: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", path, fmt.Errorf("listen: lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	secrets := map[string]string{}
	if raw, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(raw, &secrets); err != nil {
			return "", path, fmt.Errorf("listen: %s is damaged (%v); delete it to start with new secrets", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", path, fmt.Errorf("listen: %w", err)
	}
	if s, ok := secrets[appID]; ok {
		return s, path, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", path, err
	}
	secrets[appID] = "whsec_" + base64.StdEncoding.EncodeToString(key)
	raw, _ := json.MarshalIndent(secrets, "", "  ")
	// Written whole or not at all: a crash mid-write must not lose the
	// other apps' secrets.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return "", path, fmt.Errorf("listen: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", path, fmt.Errorf("listen: %w", err)
	}
	return secrets[appID], path, nil
}
