package metrics

import "github.com/prometheus/client_golang/prometheus"

// Settlement holds the settlement run collectors.
type Settlement struct {
	RunDuration prometheus.Histogram
	Runs        *prometheus.CounterVec // status
	Payouts     prometheus.Counter
}

func newSettlement(reg *prometheus.Registry) *Settlement {
	s := &Settlement{
		RunDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "minipay_settlement_run_duration_seconds", Help: "Time this process spent advancing a settlement run to its end.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "minipay_settlement_runs_total", Help: "Settlement runs this process finished, by final status (completed, mismatch).",
		}, []string{"status"}),
		Payouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "minipay_settlement_payouts_total", Help: "Payout transfers this process posted.",
		}),
	}
	reg.MustRegister(s.RunDuration, s.Runs, s.Payouts)
	return s
}
