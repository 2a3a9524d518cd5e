package toolexec

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/wasm"
)

type nopSink struct{}

func (nopSink) Record(audit.Record) {}

// TestLoaderFailureKeepsInternalsInTheLog: when the tools cannot be loaded, the
// routes answer 503 without the loading error's text (paths, engine internals),
// which goes to the log only; Close returns.
func TestLoaderFailureKeepsInternalsInTheLog(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	l := StartLoader(context.Background(), LoaderConfig{
		Load: func(context.Context, func()) (*wasm.Engine, *wasm.Registry, error) {
			return nil, nil, errors.New("open /srv/secret-internal-path/cache: permission denied")
		},
		Audit: nopSink{}, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	_, err = l.Execute(context.Background(), api.ExecuteRequest{Tool: "x"}, "req")
	e, ok := api.AsError(err)
	if !ok || e.Code != api.CodeUnavailable {
		t.Fatalf("execute: %v; want 503 unavailable", err)
	}
	if strings.Contains(e.Message, "secret-internal-path") {
		t.Errorf("the loading error reached the client: %q", e.Message)
	}
	if h := l.Health(context.Background()); h.Status != "error" {
		t.Errorf("health %+v", h)
	}
	if _, err := l.Status(context.Background(), "x"); errCode(err) != api.CodeUnavailable {
		t.Errorf("status with no tools: %v; want unavailable", err)
	}
	l.Close(context.Background())
	if !strings.Contains(logs.String(), "secret-internal-path") {
		t.Errorf("the loading error is not in the log: %s", logs.String())
	}
}

// TestLoaderCloseStopsLoading: Close cancels a load in progress and waits for it.
func TestLoaderCloseStopsLoading(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	l := StartLoader(context.Background(), LoaderConfig{
		Load: func(ctx context.Context, _ func()) (*wasm.Engine, *wasm.Registry, error) {
			<-ctx.Done()
			return nil, nil, ctx.Err()
		},
		Audit: nopSink{}, Metrics: m, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if h := l.Health(context.Background()); h.Status != api.StatusOK {
		t.Errorf("health while loading %+v", h)
	}
	// A tool's status answers at once during the initial load: loading, nothing loaded.
	if st, err := l.Status(context.Background(), "greet"); err != nil || !st.Loading || st.Name != "greet" || st.SHA256 != "" {
		t.Errorf("status while loading: %+v, %v", st, err)
	}
	l.Close(context.Background())
}

func errCode(err error) string {
	if e, ok := api.AsError(err); ok {
		return e.Code
	}
	return ""
}
