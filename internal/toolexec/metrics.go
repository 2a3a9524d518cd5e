package toolexec

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the tool metrics (reference 9.1 names).
type Metrics struct {
	executions *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	fuel       *prometheus.HistogramVec
	sanitized  prometheus.Counter
	loaded     prometheus.Gauge
}

// NewMetrics registers the tool metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clawbox_wasm_executions_total", Help: "WASM tool executions by tool (unknown for names not loaded) and status.",
		}, []string{"tool", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clawbox_wasm_execution_ms", Help: "WASM tool execution wall time in milliseconds.",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000},
		}, []string{"tool"}),
		fuel: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clawbox_wasm_fuel_consumed", Help: "Kept for compatibility: wazero has no fuel, so this is never observed.",
		}, []string{"tool"}),
		sanitized: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clawbox_sanitization_issues_total", Help: "Executions whose output had secrets redacted.",
		}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "clawbox_tools_loaded", Help: "Tools currently loaded.",
		}),
	}
	for _, c := range []prometheus.Collector{m.executions, m.duration, m.fuel, m.sanitized, m.loaded} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
