package sandbox

import "github.com/prometheus/client_golang/prometheus"

// metrics are the sandbox metrics; they are always recorded and registered only when
// the Manager is given a Registerer.
type metrics struct {
	byStatus *prometheus.GaugeVec   // clawbox_sandboxes{status}
	total    *prometheus.CounterVec // clawbox_containers_total{status}
	active   prometheus.Gauge       // clawbox_containers_active (creating or running)
	spawn    prometheus.Histogram   // clawbox_container_spawn_seconds

	poolReady        *prometheus.GaugeVec   // clawbox_pool_ready{pool}
	poolClaims       *prometheus.CounterVec // clawbox_pool_claims_total{pool,result}
	poolClaim        prometheus.Histogram   // clawbox_pool_claim_seconds
	poolFillFailures *prometheus.CounterVec // clawbox_pool_fill_failures_total{pool}
}

var allStatuses = []Status{StatusCreating, StatusRunning, StatusCompleted, StatusFailed, StatusTimedOut, StatusKilled, StatusLost}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		byStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "clawbox_sandboxes",
			Help: "Container sandbox records by status.",
		}, []string{"status"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clawbox_containers_total",
			Help: "Container sandbox events: spawned, then the final status each reached.",
		}, []string{"status"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "clawbox_containers_active",
			Help: "Container sandboxes creating or running.",
		}),
		spawn: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "clawbox_container_spawn_seconds",
			Help:    "Time from a spawn request to a running container.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 10),
		}),
		poolReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "clawbox_pool_ready",
			Help: "Ready (claimable) sandboxes in each warm pool.",
		}, []string{"pool"}),
		poolClaims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clawbox_pool_claims_total",
			Help: "Spawns matching a warm pool: hit (claimed a ready sandbox) or miss (started cold).",
		}, []string{"pool", "result"}),
		poolClaim: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "clawbox_pool_claim_seconds",
			Help:    "Time from a spawn request to a claimed, running pooled sandbox.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 12),
		}),
		poolFillFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clawbox_pool_fill_failures_total",
			Help: "Failed attempts to start a pooled sandbox, by pool.",
		}, []string{"pool"}),
	}
	for _, s := range allStatuses {
		m.byStatus.WithLabelValues(string(s))
	}
	for _, s := range append([]string{"spawned"}, "completed", "failed", "timed_out", "killed", "lost") {
		m.total.WithLabelValues(s)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.byStatus, m.total, m.active, m.spawn, m.poolReady, m.poolClaims, m.poolClaim, m.poolFillFailures} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// set replaces the by-status gauges with counts.
func (m *metrics) set(counts map[Status]int) {
	active := 0
	for _, s := range allStatuses {
		m.byStatus.WithLabelValues(string(s)).Set(float64(counts[s]))
		if s.Active() {
			active += counts[s]
		}
	}
	m.active.Set(float64(active))
}
