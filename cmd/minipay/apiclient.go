package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// apiClient is how listen and trigger talk to a minipay API with an app's
// secret key, as a developer's tools would from another machine.
type apiClient struct {
	baseURL string
	key     string
	http    *http.Client
}

// apiFlags registers --api-key and --api-url, defaulting to the variables
// the quickstart exports.
func apiFlags(fs *flag.FlagSet, getenv func(string) string) *apiClient {
	c := &apiClient{http: &http.Client{Timeout: 30 * time.Second}}
	fs.StringVar(&c.key, "api-key", getenv("MINIPAY_SECRET_KEY"), "the app's secret key, sk_… (MINIPAY_SECRET_KEY)")
	def := getenv("MINIPAY_URL")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	fs.StringVar(&c.baseURL, "api-url", def, "the minipay API (MINIPAY_URL)")
	return c
}

// check reports what is missing from the flags, in words a person can act on.
func (c *apiClient) check(cmd string) error {
	if c.key == "" {
		return usageError("%s: no API key: pass --api-key sk_… or set MINIPAY_SECRET_KEY (minipay dev prints the demo app's)", cmd)
	}
	if !strings.HasPrefix(c.key, "sk_") {
		return usageError("%s: --api-key must be an app's secret key (sk_…), not %s…", cmd, strings.SplitN(c.key, "_", 2)[0])
	}
	u, err := url.Parse(c.baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError("%s: --api-url %q is not an http(s) URL such as http://127.0.0.1:8080", cmd, c.baseURL)
	}
	c.baseURL = strings.TrimRight(c.baseURL, "/")
	return nil
}

// apiError is an error answer of the API.
type apiError struct {
	Status    int    `json:"-"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Param     string `json:"param"`
	RequestID string `json:"request_id"`
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// networkError is a call that got no answer: the URL and the cause.
type networkError struct {
	url string
	err error
}

func (e *networkError) Error() string { return fmt.Sprintf("cannot reach %s: %v", e.url, e.err) }
func (e *networkError) Unwrap() error { return e.err }

// transient reports whether a call may succeed if tried again: no answer,
// or the server restarting, overloaded or limiting.
func transient(err error) bool {
	var ne *networkError
	if errors.As(err, &ne) {
		return true
	}
	var ae *apiError
	return errors.As(err, &ae) && (ae.Status >= 500 || ae.Status == http.StatusTooManyRequests)
}

// do sends one request and decodes a 2xx answer into out; it returns the
// answer's headers.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := c.baseURL + path
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("User-Agent", "minipay-cli")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &networkError{url: strings.SplitN(u, "?", 2)[0], err: unwrapURLError(err)}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, &networkError{url: u, err: err}
	}
	if res.StatusCode >= 300 {
		var env struct{ Error apiError }
		if json.Unmarshal(raw, &env) != nil || env.Error.Code == "" {
			env.Error = apiError{Code: "http_error", Message: strings.TrimSpace(string(raw))}
		}
		env.Error.Status = res.StatusCode
		return res.Header, &env.Error
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return res.Header, fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
		}
	}
	return res.Header, nil
}

// unwrapURLError drops *url.Error's "Get "…": " prefix: the caller names
// the URL once.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
