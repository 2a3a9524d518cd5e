package egress

import (
	"errors"
	"sync"

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

	// The series every request touches, looked up once: the requests series are
	// made up front, the others when first used, as WithLabelValues makes them.
	bytesIn, bytesOut func() prometheus.Counter
	latencyBy         map[string]func() prometheus.Observer            // by caller
	requestsBy        map[string]map[audit.Decision]prometheus.Counter // by caller, decision
}

// request is the requests counter of caller and d.
func (m *metrics) request(caller string, d audit.Decision) prometheus.Counter {
	if c, ok := m.requestsBy[caller][d]; ok {
		return c
	}
	return m.requests.WithLabelValues(caller, string(d))
}

// upstreamLatency is the latency histogram of caller.
func (m *metrics) upstreamLatency(caller string) prometheus.Observer {
	if o, ok := m.latencyBy[caller]; ok {
		return o()
	}
	return m.latency.WithLabelValues(caller)
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
	m.bytesIn = sync.OnceValue(func() prometheus.Counter { return m.bytes.WithLabelValues("in") })
	m.bytesOut = sync.OnceValue(func() prometheus.Counter { return m.bytes.WithLabelValues("out") })
	m.latencyBy = map[string]func() prometheus.Observer{}
	// The requests series are made up front so that dashboards see zeros, not gaps.
	m.requestsBy = map[string]map[audit.Decision]prometheus.Counter{}
	for _, caller := range []string{callerContainer, callerTool} {
		m.latencyBy[caller] = sync.OnceValue(func() prometheus.Observer { return m.latency.WithLabelValues(caller) })
		m.requestsBy[caller] = map[audit.Decision]prometheus.Counter{}
		for _, d := range []audit.Decision{audit.DecisionAllowed, audit.DecisionBlocked, audit.DecisionLeak, audit.DecisionRateLimited, audit.DecisionError} {
			m.requestsBy[caller][d] = m.requests.WithLabelValues(caller, string(d))
		}
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
	return m, nil
}

const (
	callerContainer = "container"
	callerTool      = "tool"
)
