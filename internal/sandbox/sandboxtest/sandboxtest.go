// Package sandboxtest provides test doubles for internal/sandbox that the real thing
// cannot replace in a test: a manual clock and a minimal egress door.
package sandboxtest

import (
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/clawbox/clawbox/internal/sandbox"
)

// Clock is a manual sandbox.Clock: time moves only with Advance.
type Clock struct {
	mu      sync.Mutex // guards now, timers, changed
	now     time.Time
	timers  map[*timer]struct{}
	changed chan struct{} // closed and replaced whenever timers change
}

var _ sandbox.Clock = (*Clock)(nil)

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, timers: map[*timer]struct{}{}, changed: make(chan struct{})}
}

type timer struct {
	c     *Clock
	at    time.Time
	ch    chan time.Time
	fired bool
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, active := t.c.timers[t]
	delete(t.c.timers, t)
	t.c.notifyLocked()
	return active
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the clock is advanced past now+d.
func (c *Clock) NewTimer(d time.Duration) sandbox.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.fired = true
		t.ch <- c.now
		return t
	}
	c.timers[t] = struct{}{}
	c.notifyLocked()
	return t
}

func (c *Clock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves the clock forward by d and fires every timer that is due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.at.After(c.now) {
			delete(c.timers, t)
			t.fired = true
			t.ch <- c.now
		}
	}
	c.notifyLocked()
}

// Timers returns how many timers are armed.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// WaitTimers blocks until at least n timers are armed or ctx ends.
func (c *Clock) WaitTimers(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		got, ch := len(c.timers), c.changed
		c.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Doors is a minimal sandbox.DoorOpener: each door listens on its socket (0666) and
// answers GET /health, authenticated with the sandbox's token, with the sandbox id.
// As a forward proxy it answers every absolute-form request (GET http://host/path)
// authenticated by Proxy-Authorization: Bearer with "door <id>: <method> <url>",
// and refuses every CONNECT with 403; it records the Proxy-Authorization of each.
// Set Fail to make OpenDoor fail.
type Doors struct {
	Fail error

	mu     sync.Mutex // guards open, closes, specs, proxied
	open   map[string]int
	closes map[string]int
	specs  map[string][]sandbox.DoorSpec
	// proxied holds, per sandbox, "METHOD target Proxy-Authorization" of every
	// forward-proxy request and CONNECT its doors got.
	proxied map[string][]string
}

// Specs returns the DoorSpecs that sandbox id's doors were opened with, in order
// (one per spawn or adoption).
func (d *Doors) Specs(id string) []sandbox.DoorSpec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]sandbox.DoorSpec(nil), d.specs[id]...)
}

// Proxied returns what sandbox id's doors got as a proxy: "METHOD target
// Proxy-Authorization" per request, in order.
func (d *Doors) Proxied(id string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.proxied[id]...)
}

// Closes returns how many times Close was called on sandbox id's doors,
// counting repeated calls on one door: a release path that closes a door twice
// shows here.
func (d *Doors) Closes(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closes[id]
}

// CloseCounts returns Closes for every sandbox whose door was ever closed.
func (d *Doors) CloseCounts() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.closes)
}

var _ sandbox.DoorOpener = (*Doors)(nil)

// Open returns how many doors are open now.
func (d *Doors) Open() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.open {
		n += c
	}
	return n
}

// OpenDoor implements sandbox.DoorOpener.
func (d *Doors) OpenDoor(spec sandbox.DoorSpec) (io.Closer, error) {
	if d.Fail != nil {
		return nil, d.Fail
	}
	ln, err := net.Listen("unix", spec.SocketPath)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(spec.SocketPath, 0o666); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !spec.Authenticate(tok) {
			http.Error(w, `{"error":"unauthorized","code":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		io.WriteString(w, spec.SandboxID)
	})
	proxy := func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Proxy-Authorization")
		d.mu.Lock()
		if d.proxied == nil {
			d.proxied = map[string][]string{}
		}
		d.proxied[spec.SandboxID] = append(d.proxied[spec.SandboxID], r.Method+" "+r.RequestURI+" "+auth)
		d.mu.Unlock()
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || !spec.Authenticate(tok) {
			http.Error(w, `{"error":"unauthorized","code":"unauthorized"}`, http.StatusProxyAuthRequired)
			return
		}
		if r.Method == http.MethodConnect {
			http.Error(w, `{"error":"the test door does not tunnel","code":"blocked_by_policy"}`, http.StatusForbidden)
			return
		}
		io.WriteString(w, "door "+spec.SandboxID+": "+r.Method+" "+r.URL.String())
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect || r.URL.IsAbs() {
			proxy(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln) // returns when Close closes the listener
	}()
	d.mu.Lock()
	if d.open == nil {
		d.open = map[string]int{}
	}
	d.open[spec.SandboxID]++
	if d.specs == nil {
		d.specs = map[string][]sandbox.DoorSpec{}
	}
	d.specs[spec.SandboxID] = append(d.specs[spec.SandboxID], spec)
	d.mu.Unlock()
	return &door{d: d, id: spec.SandboxID, srv: srv, done: done}, nil
}

type door struct {
	d    *Doors
	id   string
	srv  *http.Server
	done chan struct{}
	once sync.Once
}

func (c *door) Close() error {
	c.d.mu.Lock()
	if c.d.closes == nil {
		c.d.closes = map[string]int{}
	}
	c.d.closes[c.id]++
	c.d.mu.Unlock()
	var err error
	c.once.Do(func() {
		err = c.srv.Close()
		<-c.done
		c.d.mu.Lock()
		c.d.open[c.id]--
		if c.d.open[c.id] == 0 {
			delete(c.d.open, c.id)
		}
		c.d.mu.Unlock()
	})
	return err
}

// Get sends GET /health over the Unix socket at path with token, and returns the
// status and body.
func Get(ctx context.Context, path, token string) (int, string, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://door/health", nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
