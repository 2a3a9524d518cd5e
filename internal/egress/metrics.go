package egress

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clawbox/clawbox/internal/audit"
)

// metrics are the gateway's Prometheus collectors. Label values come from fixed sets:
// caller is "container" or "tool", decision is an audit.Decision, direction is "in" or
// "out".
type metrics struct {
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	bytes      *prometheus.CounterVec
	redactions prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clawbox_gateway_requests_total",
			Help: "Egress requests by caller kind and decision.",
		}, []string{"caller", "decision"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "clawbox_gateway_upstream_duration_seconds",
			Help:    "Time from sending an egress request to reading the end of its response.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"caller"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clawbox_gateway_bytes_total",
			Help: "Body bytes sent upstream (out) and received from upstream (in).",
		}, []string{"direction"}),
		redactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clawbox_gateway_redactions_total",
			Help: "Secret values redacted from upstream responses.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.bytes, m.redactions} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("egress: gateway metrics are already registered")
			}
			return nil, err
		}
	}
	// Create the series up front so that dashboards see zeros, not gaps.
	for _, caller := range []string{callerContainer, callerTool} {
		for _, d := range []audit.Decision{audit.DecisionAllowed, audit.DecisionBlocked, audit.DecisionLeak, audit.DecisionRateLimited, audit.DecisionError} {
			m.requests.WithLabelValues(caller, string(d))
		}
	}
	return m, nil
}

const (
	callerContainer = "container"
	callerTool      = "tool"
)
