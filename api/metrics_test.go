package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMetricsOffTheAPI: /metrics counts every route's requests and the
// ledger's volumes, which are nobody's business on the public listener.
// The API answers 404 there, with a key or without; MetricsHandler serves
// them for the listener of MINIPAY_METRICS_ADDR.
func TestMetricsOffTheAPI(t *testing.T) {
	e := newEnv(t)
	e.tenant("shop", []string{"goods"}, []string{"CNY"})
	for _, key := range []string{"", e.adminKey} {
		if r := e.call("GET", "/metrics", key, nil); r.status != http.StatusNotFound || strings.Contains(string(r.raw), "minipay_") {
			t.Fatalf("GET /metrics on the API with key %q: %d %.200s", key, r.status, r.raw)
		}
	}
	srv := httptest.NewServer(e.metrics)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(body), `minipay_http_requests_total{method="POST",route="/v1/apps",status="201"}`) {
		t.Fatalf("metrics listener: %d %.500s", res.StatusCode, body)
	}
}
