package poll_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/poll"
)

// fakeTB records what Until reports instead of ending the test.
type fakeTB struct {
	testing.TB
	deadline time.Time
	failures []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failures = append(f.failures, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Deadline() (time.Time, bool) { return f.deadline, !f.deadline.IsZero() }

func TestUntilStopsAtDone(t *testing.T) {
	f := &fakeTB{}
	calls := 0
	poll.Until(f, poll.Server, "the third call", func() (bool, error) {
		calls++
		return calls == 3, errors.New("not yet")
	})
	if calls != 3 {
		t.Errorf("check called %d times, want 3", calls)
	}
	if len(f.failures) != 0 {
		t.Errorf("failed although done: %q", f.failures)
	}
}

func TestUntilDoneWithErrorStops(t *testing.T) {
	f := &fakeTB{}
	calls := 0
	poll.Until(f, poll.Server, "anything", func() (bool, error) {
		calls++
		return true, errors.New("final")
	})
	if calls != 1 || len(f.failures) != 0 {
		t.Errorf("calls = %d, failures = %q", calls, f.failures)
	}
}

func TestUntilReportsWhatAndLastError(t *testing.T) {
	f := &fakeTB{}
	calls := 0
	poll.Until(f, 20*time.Millisecond, "the server to answer", func() (bool, error) {
		calls++
		return false, fmt.Errorf("attempt %d refused", calls)
	})
	if len(f.failures) != 1 {
		t.Fatalf("failures = %q, want one", f.failures)
	}
	msg := f.failures[0]
	if !strings.Contains(msg, "the server to answer") || !strings.Contains(msg, fmt.Sprintf("attempt %d refused", calls)) {
		t.Errorf("failure %q does not name what it waited for and the last error (attempt %d)", msg, calls)
	}
	if calls < 2 {
		t.Errorf("check called %d times before giving up, want a retry", calls)
	}
}

func TestUntilWithoutErrorSaysWhat(t *testing.T) {
	f := &fakeTB{}
	poll.Until(f, time.Millisecond, "nothing", func() (bool, error) { return false, nil })
	if len(f.failures) != 1 || !strings.Contains(f.failures[0], "waiting for nothing") || strings.Contains(f.failures[0], "last error") {
		t.Errorf("failures = %q", f.failures)
	}
}

func TestUntilHonoursTestDeadline(t *testing.T) {
	// A test binary deadline already (almost) reached bounds a long timeout: the
	// wait gives up at once instead of outliving the binary.
	f := &fakeTB{deadline: time.Now()}
	calls := 0
	poll.Until(f, time.Hour, "the deadline", func() (bool, error) {
		calls++
		return false, errors.New("never")
	})
	if len(f.failures) != 1 || calls != 1 {
		t.Errorf("calls = %d, failures = %q", calls, f.failures)
	}
}
