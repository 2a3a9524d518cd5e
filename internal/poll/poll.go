// Package poll is how clawbox's tests wait for something that happens in the
// background (a server that comes up, a tool that loads, an audit record that lands):
// Until calls a check with short, growing sleeps between calls until it reports done,
// and fails the test with what it waited for and the check's last error when the
// time is up. The timeouts are generous on purpose, for a loaded 2-core machine: a
// wait bounds a hang, it never asserts a timing.
package poll

import (
	"testing"
	"time"
)

// Default timeouts; tests pick the one that names their kind of wait.
const (
	// Short is for in-process work: a goroutine, a file, an httptest server.
	Short = 30 * time.Second
	// Server is for a server or a Docker daemon to come up or come back.
	Server = 3 * time.Minute
	// Slow is for work that compiles or builds (WASM tools, images).
	Slow = 10 * time.Minute
)

const (
	firstSleep = 2 * time.Millisecond
	maxSleep   = 200 * time.Millisecond
	// grace is kept before the test binary's own deadline (-timeout) so that the
	// test fails with its message rather than with a panic and every goroutine's stack.
	grace = 5 * time.Second
)

// deadliner is the part of *testing.T that testing.TB lacks.
type deadliner interface {
	Deadline() (time.Time, bool)
}

// Until calls check until it returns done, sleeping a little longer after each call
// (from 2ms up to 200ms). A check that returns done stops the wait even with an
// error. When timeout (Short when zero or negative) has passed, or the test binary's
// deadline is near, Until fails t with Fatalf naming what it waited for and the last
// error. check runs on the caller's goroutine, so it may call t.Fatal itself for an
// answer that waiting cannot change.
func Until(t testing.TB, timeout time.Duration, what string, check func() (done bool, err error)) {
	t.Helper()
	if timeout <= 0 {
		timeout = Short
	}
	start := time.Now()
	end := start.Add(timeout)
	if d, ok := t.(deadliner); ok {
		if td, ok := d.Deadline(); ok && td.Add(-grace).Before(end) {
			end = td.Add(-grace)
		}
	}
	sleep := firstSleep
	for {
		done, err := check()
		if done {
			return
		}
		if !time.Now().Before(end) {
			if err != nil {
				t.Fatalf("timed out after %v waiting for %s: last error: %v", time.Since(start).Round(time.Millisecond), what, err)
			} else {
				t.Fatalf("timed out after %v waiting for %s", time.Since(start).Round(time.Millisecond), what)
			}
			return
		}
		if left := time.Until(end); sleep > left {
			sleep = max(left, time.Millisecond)
		}
		time.Sleep(sleep)
		sleep = min(sleep*2, maxSleep)
	}
}
