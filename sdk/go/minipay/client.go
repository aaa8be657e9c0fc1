// Package minipay is a typed client of the minipay API for developers' Go
// backends (Client: checkout sessions, refunds, the balance, the event log
// and webhook endpoints, with an app's secret key), for hosts' wallet
// services (HostClient, with the host key), and VerifyWebhook for the
// webhooks minipay sends.
//
// Every call takes a context. POST requests carry an Idempotency-Key, one
// per logical call (given in the params or generated), and the same key is
// sent again when the call is retried after a network error, a 5xx or a
// 429, so a retry never pays or refunds twice. Retry-After is honored.
// Failed calls return *Error, with the API's type, code, param and request
// id.
package minipay

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultBaseURL is where a local "minipay serve" or "minipay dev" listens.
const DefaultBaseURL = "http://localhost:8080"

// Client calls the minipay API with one secret key (sk_…). It is safe for
// concurrent use.
type Client struct {
	key        string
	baseURL    string
	httpClient *http.Client
	maxRetries int
	minBackoff time.Duration
	maxBackoff time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithBaseURL sets the API's address (default DefaultBaseURL).
func WithBaseURL(u string) Option { return func(c *Client) { c.baseURL = strings.TrimRight(u, "/") } }

// WithHTTPClient sets the HTTP client (default: one with a 30 s timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.httpClient = h } }

// WithMaxRetries sets how many times a failed call is retried (default 3;
// 0 turns retries off).
func WithMaxRetries(n int) Option { return func(c *Client) { c.maxRetries = n } }

// WithBackoff sets the first retry delay and the cap on any delay,
// Retry-After included (defaults 200 ms and 10 s).
func WithBackoff(first, max time.Duration) Option {
	return func(c *Client) { c.minBackoff, c.maxBackoff = first, max }
}

// New returns a client that authenticates with key.
func New(key string, opts ...Option) *Client {
	c := &Client{key: key, baseURL: DefaultBaseURL, httpClient: &http.Client{Timeout: 30 * time.Second},
		maxRetries: 3, minBackoff: 200 * time.Millisecond, maxBackoff: 10 * time.Second}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Error is a failed API call: the API's error object, with the HTTP status.
type Error struct {
	Status    int    `json:"-"`
	Type      string `json:"type"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Param     string `json:"param"`
	RequestID string `json:"request_id"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("minipay: %d %s: %s", e.Status, e.Code, e.Message)
	if e.Param != "" {
		s += " (param " + e.Param + ")"
	}
	if e.RequestID != "" {
		s += " [" + e.RequestID + "]"
	}
	return s
}

// ErrorCode is the API error code of err ("insufficient_funds", …), or ""
// when err is not an API error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// NewIdempotencyKey returns a random key, for callers that want to store
// the key of a call before making it.
func NewIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = crand.Read(b)
	return "idk_" + hex.EncodeToString(b)
}

// call sends one logical request, retrying it, and decodes the response
// into out. idemKey is sent with POSTs; empty means generate one.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body any, idemKey string, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("minipay: encode %s %s: %w", method, path, err)
		}
	}
	if method == http.MethodPost && idemKey == "" {
		idemKey = NewIdempotencyKey()
	}
	u := c.baseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	for attempt := 0; ; attempt++ {
		retryAfter, err := c.once(ctx, method, u, payload, idemKey, out)
		if err == nil {
			return nil
		}
		if !retryable(err) || attempt >= c.maxRetries {
			return err
		}
		// The context ended before a retry, whether while the answer came
		// or during the backoff: either way the caller sees why it stopped
		// (errors.Is(err, context.Canceled)) beside the last answer.
		if ctx.Err() != nil {
			return stoppedRetrying(err, ctx.Err())
		}
		t := time.NewTimer(c.backoff(attempt, retryAfter))
		select {
		case <-ctx.Done():
			t.Stop()
			return stoppedRetrying(err, ctx.Err())
		case <-t.C:
		}
	}
}

func stoppedRetrying(last, cause error) error {
	return fmt.Errorf("%w (stopped retrying: %w)", last, cause)
}

// networkError is a failure to get any response: the request and the
// cause, once each.
type networkError struct {
	method, url string
	err         error
}

func (e *networkError) Error() string {
	return "minipay: " + e.method + " " + e.url + ": " + e.err.Error()
}
func (e *networkError) Unwrap() error { return e.err }

// IsNetworkError reports whether err is a call that got no answer at all
// (after the retries): the server down, unreachable, or too slow.
func IsNetworkError(err error) bool {
	var ne *networkError
	return errors.As(err, &ne)
}

func retryable(err error) bool {
	var ne *networkError
	if errors.As(err, &ne) {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	var ae *Error
	return errors.As(err, &ae) && (ae.Status >= 500 || ae.Status == http.StatusTooManyRequests)
}

// backoff is exponential with full jitter, or the server's Retry-After,
// capped at maxBackoff either way.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := retryAfter
	if d <= 0 {
		ceiling := c.minBackoff << attempt
		if ceiling <= 0 || ceiling > c.maxBackoff {
			ceiling = c.maxBackoff
		}
		d = ceiling/2 + rand.N(ceiling/2+1)
	}
	return min(d, c.maxBackoff)
}

func (c *Client) once(ctx context.Context, method, u string, payload []byte, idemKey string, out any) (time.Duration, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, fmt.Errorf("minipay: %s %s: %w", method, u, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "minipay-go")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named once, by networkError
		}
		return 0, &networkError{method: method, url: strings.SplitN(u, "?", 2)[0], err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, &networkError{method: method, url: u, err: fmt.Errorf("read the response: %w", err)}
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		var env struct {
			Error *Error `json:"error"`
		}
		env.Error = e
		if json.Unmarshal(raw, &env) != nil || e.Code == "" {
			e.Type, e.Code, e.Message = "api_error", "http_"+strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(raw))
		}
		e.Status = resp.StatusCode
		if e.RequestID == "" {
			e.RequestID = resp.Header.Get("Request-Id")
		}
		return retryAfter(resp.Header.Get("Retry-After")), e
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return 0, nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return 0, fmt.Errorf("minipay: decode response of %s %s: %w", method, u, err)
	}
	return 0, nil
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// ListParams pages through a list: Limit 1–100 (0: the server's default
// of 10), StartingAfter an object id from the previous page.
type ListParams struct {
	Limit         int
	StartingAfter string
}

func (p ListParams) values() url.Values {
	v := url.Values{}
	if p.Limit > 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.StartingAfter != "" {
		v.Set("starting_after", p.StartingAfter)
	}
	return v
}

// List is one page of a list.
type List[T any] struct {
	Data    []T  `json:"data"`
	HasMore bool `json:"has_more"`
}

// errMissing is a required parameter the caller left empty; nothing was sent.
func errMissing(field string) error {
	return &Error{Type: "invalid_request_error", Code: "parameter_missing", Message: field + " is required", Param: field}
}
