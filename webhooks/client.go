package webhooks

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// newClient returns the HTTP client of the dispatcher: one pooled
// transport that dials through the SSRF guard and never uses a proxy,
// redirects returned as they are (a 3xx is a failed attempt, as the
// Standard Webhooks specification recommends), and go-retryablehttp
// retrying failures below HTTP (refused or reset connections) a few times
// within one attempt. HTTP answers are never retried inside an attempt:
// the delivery schedule does that.
func (s *Service) newClient() *retryablehttp.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           s.newGuard().DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * s.opts.Workers,
		MaxIdleConnsPerHost:   s.opts.EndpointConcurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: s.opts.Timeout,
	}
	return &retryablehttp.Client{
		HTTPClient: &http.Client{
			// keepIdle: retryablehttp closes the client's idle connections
			// whenever a request fails, which would cut every healthy
			// endpoint's kept-alive connections each time a dead one fails.
			Transport:     keepIdle{tr},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		RetryWaitMin: 50 * time.Millisecond,
		RetryWaitMax: 500 * time.Millisecond,
		RetryMax:     s.opts.TransportRetries,
		CheckRetry:   retryTransportErrors,
		Backoff:      retryablehttp.DefaultBackoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

// keepIdle hides the transport's CloseIdleConnections.
type keepIdle struct{ rt http.RoundTripper }

func (k keepIdle) RoundTrip(r *http.Request) (*http.Response, error) { return k.rt.RoundTrip(r) }

// retryTransportErrors retries a request that got no HTTP answer, unless
// the attempt's time is up or the address was refused.
func retryTransportErrors(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil || err == nil || resp != nil {
		return false, nil
	}
	if errors.Is(err, ErrAddressRefused) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false, nil
	}
	return true, nil
}
