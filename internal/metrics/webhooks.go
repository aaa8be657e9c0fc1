package metrics

import "github.com/prometheus/client_golang/prometheus"

// webhooks holds the webhook dispatcher's collectors.
type webhooks struct {
	WebhookAttempts        *prometheus.CounterVec // outcome: succeeded, failed, skipped, released
	WebhookAttemptDuration prometheus.Histogram
	WebhookEventToDelivery prometheus.Histogram
	WebhookBreakers        *prometheus.GaugeVec // state: closed, half-open, open; endpoints this process knows
	WebhookBacklog         *prometheus.GaugeVec // which: pending, due; deliveries waiting, in the whole database
	WebhookOldestDue       prometheus.Gauge     // seconds the oldest due delivery has waited
}

func (m *Metrics) registerWebhooks() {
	m.WebhookAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "minipay_webhook_attempts_total", Help: "Webhook delivery attempts by outcome (skipped: the endpoint's circuit was open).",
	}, []string{"outcome"})
	m.WebhookAttemptDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "minipay_webhook_attempt_duration_seconds", Help: "Time from sending a webhook to its answer (or failure).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
	})
	m.WebhookEventToDelivery = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "minipay_webhook_event_to_delivery_seconds", Help: "Time from writing an event to a successful delivery of it.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
	})
	m.WebhookBreakers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "minipay_webhook_breakers", Help: "Webhook endpoints by the state of this process's circuit breaker for them.",
	}, []string{"state"})
	m.WebhookBacklog = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "minipay_webhook_backlog", Help: "Webhook deliveries waiting (pending: not finished; due: whose attempt time has come), database-wide.",
	}, []string{"which"})
	m.WebhookOldestDue = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "minipay_webhook_oldest_due_seconds", Help: "How long the oldest due webhook delivery has waited, database-wide.",
	})
	m.Registry.MustRegister(m.WebhookAttempts, m.WebhookAttemptDuration, m.WebhookEventToDelivery,
		m.WebhookBreakers, m.WebhookBacklog, m.WebhookOldestDue)
}
