package audit

import (
	"sync"
	"time"
	"unicode/utf8"
)

// TruncationMarker ends every audit field that was cut to its cap.
const TruncationMarker = "…[truncated]"

// Caps of the fields of one record, in bytes (the marker included). With them one
// record is at most a few KiB, whatever a sandbox sends.
const (
	MaxURLBytes    = 2048
	MaxHostBytes   = 256
	MaxMethodBytes = 32
	MaxTextBytes   = 512 // Reason, Error, Rule, Event
	MaxIDBytes     = 128 // ContainerID, Tool, RequestID, each credential name
	MaxCredentials = 32
)

// truncate returns s cut to at most max bytes on a rune boundary, ending in
// TruncationMarker when it was cut.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max - len(TruncationMarker)
	if n < 0 {
		n = 0
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + TruncationMarker
}

// capFields applies the field caps to r.
func capFields(r *Record) {
	r.URL = truncate(r.URL, MaxURLBytes)
	r.Host = truncate(r.Host, MaxHostBytes)
	r.Method = truncate(r.Method, MaxMethodBytes)
	r.Reason = truncate(r.Reason, MaxTextBytes)
	r.Error = truncate(r.Error, MaxTextBytes)
	r.Rule = truncate(r.Rule, MaxTextBytes)
	r.Event = truncate(r.Event, MaxTextBytes)
	r.ContainerID = truncate(r.ContainerID, MaxIDBytes)
	r.Tool = truncate(r.Tool, MaxIDBytes)
	r.RequestID = truncate(r.RequestID, MaxIDBytes)
	if len(r.Credentials) > MaxCredentials {
		r.Credentials = append(r.Credentials[:MaxCredentials:MaxCredentials], TruncationMarker)
	}
	for i, c := range r.Credentials {
		r.Credentials[i] = truncate(c, MaxIDBytes)
	}
}

// isRefusal reports whether r is an egress request that did not go through: the
// records a hostile sandbox can produce as fast as it can send.
func isRefusal(r Record) bool {
	return r.Kind == KindRequest && r.Decision != DecisionAllowed && r.Decision != ""
}

// aggregator keeps a flood of refusals from one caller out of the log: each caller
// (sandbox or tool) may have Budget refusal records written per Window; the refusals
// beyond it are counted by decision, and one record per decision with Count set
// stands for them when the window ends (the last refusal's fields, Count the number
// of refusals it stands for). Allowed requests, lifecycle and execution records are
// never aggregated.
type aggregator struct {
	budget int
	window time.Duration

	mu      sync.Mutex
	callers map[string]*callerWindow // guarded by mu
}

type callerWindow struct {
	start      time.Time
	written    int
	suppressed map[Decision]*Record // the last suppressed record per decision, Count so far
}

func newAggregator(budget int, window time.Duration) *aggregator {
	return &aggregator{budget: budget, window: window, callers: make(map[string]*callerWindow)}
}

// admit reports whether r is written now. A refusal over its caller's budget is
// counted instead. Summaries of windows that have ended are returned for writing
// before r.
func (a *aggregator) admit(r Record, now time.Time) (summaries []Record, write bool) {
	if a.budget <= 0 || !isRefusal(r) {
		return nil, true
	}
	key := "container/" + r.ContainerID
	if r.ContainerID == "" {
		key = "tool/" + r.Tool
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cw := a.callers[key]
	if cw != nil && now.Sub(cw.start) >= a.window {
		summaries = cw.summaries(now)
		cw = nil
	}
	if cw == nil {
		cw = &callerWindow{start: now}
		a.callers[key] = cw
	}
	if cw.written < a.budget {
		cw.written++
		return summaries, true
	}
	if cw.suppressed == nil {
		cw.suppressed = make(map[Decision]*Record)
	}
	prev := cw.suppressed[r.Decision]
	r.Count = 1
	if prev != nil {
		r.Count = prev.Count + 1
	}
	r.RequestID = ""
	cw.suppressed[r.Decision] = &r
	return summaries, false
}

// flush returns the summaries of the windows that ended by now (all of them when
// all is set) and forgets those windows.
func (a *aggregator) flush(now time.Time, all bool) []Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Record
	for key, cw := range a.callers {
		if all || now.Sub(cw.start) >= a.window {
			out = append(out, cw.summaries(now)...)
			delete(a.callers, key)
		}
	}
	return out
}

func (cw *callerWindow) summaries(now time.Time) []Record {
	var out []Record
	for _, d := range []Decision{DecisionBlocked, DecisionLeak, DecisionRateLimited, DecisionError} {
		if r := cw.suppressed[d]; r != nil {
			s := *r
			s.Time = now.UTC()
			out = append(out, s)
		}
	}
	for d, r := range cw.suppressed { // decisions not listed above, if any
		switch d {
		case DecisionBlocked, DecisionLeak, DecisionRateLimited, DecisionError:
		default:
			s := *r
			s.Time = now.UTC()
			out = append(out, s)
		}
	}
	return out
}
