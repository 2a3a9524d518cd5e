package server

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/clawbox/clawbox/internal/poll"
)

// TestLimiterIsGlobalAndBounded drives the real router: two different limited routes
// share one slot; a request beyond the queue bound gets 503 busy with Retry-After; an
// unauthenticated request never takes a slot.
func TestLimiterIsGlobalAndBounded(t *testing.T) {
	s, _ := newTestServer(t, Config{MaxConcurrent: 1, MaxQueued: 1})
	entered := make(chan string, 4)
	release := make(chan struct{})
	for _, p := range []string{"/test/slow-a", "/test/slow-b"} {
		s.Handle(Route{Method: http.MethodPost, Pattern: p, Limited: true, Handler: func(w http.ResponseWriter, r *http.Request) error {
			entered <- r.URL.Path
			<-release
			WriteJSON(w, 200, map[string]string{"ok": r.URL.Path})
			return nil
		}, Doc: Doc{Summary: "slow"}})
	}
	ts := start(t, s)

	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	send := func(path string) {
		defer wg.Done()
		r := do(t, ts, "POST", path, testToken, "application/json", "{}")
		statuses <- r.status
	}
	wg.Add(1)
	go send("/test/slow-a")
	<-entered // a holds the only slot

	// Unauthenticated requests are refused before the limiter, whatever its state.
	if r := do(t, ts, "POST", "/test/slow-b", "", "application/json", "{}"); r.status != 401 {
		t.Fatalf("unauthenticated limited request = %d, want 401", r.status)
	}

	wg.Add(1)
	go send("/test/slow-b") // waits in the queue (bound 1)
	waitFor(t, func() bool { _, w := s.Limiter().InUse(); return w == 1 })

	r := do(t, ts, "POST", "/test/slow-b", testToken, "application/json", "{}")
	if r.status != 503 || r.err.Code != "busy" || r.header.Get("Retry-After") == "" {
		t.Fatalf("request beyond the queue = %d %q Retry-After=%q", r.status, r.err.Code, r.header.Get("Retry-After"))
	}
	close(release)
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 200 {
			t.Errorf("queued request finished with %d", st)
		}
	}
	if run, wait := s.Limiter().InUse(); run != 0 || wait != 0 {
		t.Errorf("slots not released: running %d waiting %d", run, wait)
	}
}

func TestLimiterCanceledWaiter(t *testing.T) {
	l := NewLimiter(1, 5)
	rel, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := l.Acquire(ctx); done <- err }()
	waitFor(t, func() bool { _, w := l.InUse(); return w == 1 })
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("canceled waiter got %v", err)
	}
	rel()
	rel() // release is idempotent
	if run, wait := l.InUse(); run != 0 || wait != 0 {
		t.Errorf("after release: running %d waiting %d", run, wait)
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	poll.Until(t, poll.Short, "the condition", func() (bool, error) { return cond(), nil })
}
