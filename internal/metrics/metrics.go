// Package metrics defines minipay's Prometheus metrics in one place, so
// their names and labels are easy to find and alert on.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector. Create one per process with New.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests *prometheus.CounterVec   // route, method, status
	HTTPDuration *prometheus.HistogramVec // route, method

	LedgerGroups        prometheus.Counter
	LedgerGroupSize     prometheus.Histogram
	LedgerGroupDuration prometheus.Histogram
	LedgerTransfers     prometheus.Counter
	LedgerGroupAttempts prometheus.Counter

	// (webhooks metrics)
	webhooks
	// (settlement metrics)
	Settlement *Settlement
	Renewals   *Renewals
}

// New creates and registers the collectors, with Go and process metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "minipay_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "minipay_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		LedgerGroups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "minipay_ledger_groups_total", Help: "Group commits run by the ledger poster.",
		}),
		LedgerGroupSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "minipay_ledger_group_size", Help: "Transfers gathered into one group commit.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
		LedgerGroupDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "minipay_ledger_group_duration_seconds", Help: "Time to write one group commit.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		LedgerTransfers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "minipay_ledger_transfers_written_total", Help: "Transfers written by the ledger.",
		}),
		LedgerGroupAttempts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "minipay_ledger_group_attempts_total", Help: "Database transactions used by group commits (more than groups means retries).",
		}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPRequests, m.HTTPDuration,
		m.LedgerGroups, m.LedgerGroupSize, m.LedgerGroupDuration, m.LedgerTransfers, m.LedgerGroupAttempts,
	)
	// (webhooks collectors)
	m.registerWebhooks()
	// (settlement collectors)
	m.Settlement = newSettlement(reg)
	m.Renewals = newRenewals(reg)
	return m
}
