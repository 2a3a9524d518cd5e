package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/poll"
)

// manualTimer is a pool's idle timer that fires when the test says so: each timer
// started is sent on armed.
type manualTimer struct{ armed chan chan time.Time }

func newManualTimer() *manualTimer { return &manualTimer{armed: make(chan chan time.Time, 16)} }

func (mt *manualTimer) after(time.Duration) (<-chan time.Time, func() bool) {
	c := make(chan time.Time, 1)
	mt.armed <- c
	return c, func() bool { return true }
}

// next waits for the pool to start its idle timer, which it does after a call.
func (mt *manualTimer) next(t *testing.T) chan time.Time {
	t.Helper()
	select {
	case c := <-mt.armed:
		return c
	case <-time.After(poll.Short):
		t.Fatal("the pool did not start its idle timer after a call")
		return nil
	}
}

func echoCall(t *testing.T, m *Module) {
	t.Helper()
	res, err := m.Execute(context.Background(), Call{Params: json.RawMessage(`{"mode":"echo","value":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != `{"value":1}` {
		t.Fatalf("output %s", res.Output)
	}
}

func TestPoolSnapshotOnFirstUseDrainedWhenIdle(t *testing.T) {
	mt := newManualTimer()
	e := newTestEngine(t, Config{PoolSize: 2, timer: mt.after})
	m := compile(t, e, "guest", guests.reactor)
	_, form := m.loadCompiled()
	if form == nil || len(form.globals) == 0 || len(form.data.segs) == 0 {
		t.Fatal("the Go reactor was not compiled in its snapshot form (globals exported, data segments applied by the engine)")
	}
	if n := len(m.pool.ready); n != 0 || m.pool.load() != nil {
		t.Fatalf("%d instances ready and a snapshot %v before the first call, want none", n, m.pool.load() != nil)
	}
	select {
	case <-mt.armed:
		t.Fatal("the pool filled before the first call")
	default:
	}

	echoCall(t, m)
	mt.next(t)
	s := m.pool.load()
	if s == nil || len(s.mem) == 0 || len(s.globals) != len(form.globals) {
		t.Fatalf("after the first call: snapshot %v, want memory and %d globals", s, len(form.globals))
	}
	if n := len(m.pool.ready); n != 2 {
		t.Fatalf("%d instances ready after the first call, want 2", n)
	}
	// A call before the idle time is up takes a ready instance, refills from the
	// same snapshot and restarts the timer.
	echoCall(t, m)
	mt.next(t) <- time.Now()
	if m.pool.load() != nil && m.pool.load() != s {
		t.Fatal("the second call took a new snapshot")
	}
	poll.Until(t, poll.Short, "the idle pool to be drained", func() (bool, error) {
		return len(m.pool.ready) == 0 && m.pool.load() == nil, nil
	})

	// Drained, the pool still serves, takes a new snapshot and fills again.
	echoCall(t, m)
	mt.next(t)
	if n := len(m.pool.ready); n != 2 || m.pool.load() == nil {
		t.Fatalf("%d instances ready after a call on the drained pool, want 2 and a snapshot", n)
	}
}

func TestDeferWork(t *testing.T) {
	mt := newManualTimer()
	e := newTestEngine(t, Config{PoolSize: 1, timer: mt.after})
	m := compile(t, e, "guest", guests.reactor)
	ctx, after := DeferWork(context.Background())
	if _, err := m.Execute(ctx, Call{Params: json.RawMessage(`{"mode":"echo","value":1}`)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-mt.armed:
		t.Fatal("the pool was refilled before the deferred work ran")
	case <-time.After(50 * time.Millisecond):
	}
	after()
	mt.next(t)
	if n := len(m.pool.ready); n != 1 {
		t.Fatalf("%d instances ready after the deferred refill, want 1", n)
	}
	after() // idempotent
	// Work deferred after the function ran is done at once.
	if _, err := m.Execute(ctx, Call{Params: json.RawMessage(`{"mode":"echo","value":1}`)}); err != nil {
		t.Fatal(err)
	}
	mt.next(t)
}

func TestCompileLazy(t *testing.T) {
	e := newTestEngine(t, Config{PoolSize: -1})
	for _, form := range forms() {
		t.Run(form.name, func(t *testing.T) {
			var reads atomic.Int32
			m, err := e.CompileLazy(context.Background(), "guest", form.bin, nil, func() ([]byte, error) {
				reads.Add(1)
				return form.bin, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(context.Background())
			if loaded(m) {
				t.Fatal("the lazy module kept its compiled code before its first call")
			}
			if want := form.name == "reactor"; m.Reactor() != want {
				t.Fatalf("Reactor() = %v, want %v", m.Reactor(), want)
			}
			echoCall(t, m)
			echoCall(t, m)
			if !loaded(m) {
				t.Fatal("no compiled code after the first call")
			}
			if n := reads.Load(); n != 1 {
				t.Fatalf("the module was read %d times for two calls, want once", n)
			}
			if err := m.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(context.Background()); err != nil {
				t.Fatalf("second close: %v", err)
			}
			if loaded(m) {
				t.Fatal("the closed module kept its compiled code")
			}
		})
	}
}

func TestCompileLazyRefusesAChangedModule(t *testing.T) {
	e := newTestEngine(t, Config{})
	tests := []struct {
		name   string
		reread func() ([]byte, error)
	}{
		{"other bytes", func() ([]byte, error) { return guests.command, nil }},
		{"read error", func() ([]byte, error) { return nil, errors.New("gone") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := e.CompileLazy(context.Background(), "guest", guests.reactor, nil, tc.reread)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(context.Background())
			_, err = m.Execute(context.Background(), Call{Params: json.RawMessage(`{"mode":"echo","value":1}`)})
			if code := errCode(err); code != api.CodeUnavailable {
				t.Fatalf("err = %v (code %q), want %s", err, code, api.CodeUnavailable)
			}
			if loaded(m) {
				t.Fatal("compiled code of a module that failed to read")
			}
		})
	}
}

func TestCompileLazyChecksAtLoad(t *testing.T) {
	e := newTestEngine(t, Config{})
	called := false
	_, err := e.CompileLazy(context.Background(), "bad", []byte("\x00asm\x01\x00\x00\x00\x01"), nil, func() ([]byte, error) {
		called = true
		return nil, nil
	})
	if code := errCode(err); code != api.CodeInvalidModule {
		t.Fatalf("err = %v (code %q), want %s", err, code, api.CodeInvalidModule)
	}
	if called {
		t.Fatal("reread called at load")
	}
}

func loaded(m *Module) bool {
	c, _ := m.loadCompiled()
	return c != nil
}
