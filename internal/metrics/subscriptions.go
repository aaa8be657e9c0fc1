package metrics

import "github.com/prometheus/client_golang/prometheus"

// Renewals holds the subscription renewer's collectors.
type Renewals struct {
	// Results counts renewal outcomes by result: paid, failed (the wallet
	// was short; dunning retries it), canceled (the retries ran out),
	// step (a notice, an expiry or an end at period end).
	Results      *prometheus.CounterVec
	PassDuration prometheus.Histogram
}

func newRenewals(reg *prometheus.Registry) *Renewals {
	r := &Renewals{
		Results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "minipay_renewals_total", Help: "Subscription renewal work this process did, by result (paid, failed, canceled, step).",
		}, []string{"result"}),
		PassDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "minipay_renewal_pass_duration_seconds", Help: "Time this process spent on one pass of the renewer that found work.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
	}
	reg.MustRegister(r.Results, r.PassDuration)
	return r
}
