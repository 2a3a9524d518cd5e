package daemon

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestShutdownReleasesInReverseOnce: the parts are released in reverse start order,
// each with its own deadline (none for a release that waits on nothing), even when
// Run's context is already canceled; a second shutdown releases nothing again.
func TestShutdownReleasesInReverseOnce(t *testing.T) {
	var p parts
	var order []string
	deadlines := map[string]bool{}
	for _, s := range []struct {
		name    string
		timeout time.Duration
	}{{"store", 0}, {"audit", 5 * time.Second}, {"containers", 30 * time.Second}, {"listeners", 0}} {
		p.onStop(s.timeout, func(ctx context.Context) {
			if ctx.Err() != nil {
				t.Errorf("%s: released with a done context: %v", s.name, ctx.Err())
			}
			_, ok := ctx.Deadline()
			deadlines[s.name] = ok
			order = append(order, s.name)
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run's context is canceled when the server stops
	p.shutdown(ctx)
	p.shutdown(ctx)
	if want := []string{"listeners", "containers", "audit", "store"}; !slices.Equal(order, want) {
		t.Errorf("release order %v, want %v", order, want)
	}
	if deadlines["store"] || deadlines["listeners"] || !deadlines["audit"] || !deadlines["containers"] {
		t.Errorf("deadlines %v, want one for audit and containers only", deadlines)
	}
}
