package wasm

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// pool serves a reactor's calls with instances started from its snapshot (see
// snapshot.go) and keeps up to size of them ready, made by one background
// goroutine. The snapshot is taken on the tool's first call, so a tool nobody calls
// holds nothing; once no call came for the idle time the ready instances are closed
// and the snapshot dropped, and the next call initialises an instance and takes a
// new one. An instance is handed to exactly one call and never reused.
type pool struct {
	m      *Module
	idle   time.Duration   // drain after this long without a take; <= 0: never
	after  timerFunc       // the idle timer
	ready  chan *instance  // only the fill goroutine sends
	free   chan usedMemory // memories of closed instances, for the next ones
	wake   chan struct{}   // capacity 1: "refill"
	cancel context.CancelFunc
	done   chan struct{} // closed when the fill goroutine has returned

	mu   sync.Mutex
	snap *snapshot // nil before the first call and after the idle time

	reused atomic.Int64 // instances restored in a recycled memory (for tests)
}

// timerFunc starts a timer of d: its channel receives when d has passed, and stop
// stops it (see time.NewTimer).
type timerFunc func(d time.Duration) (c <-chan time.Time, stop func() bool)

func realTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

func newPool(m *Module, size int, idle time.Duration, after timerFunc) *pool {
	ctx, cancel := context.WithCancel(m.e.ctx)
	if after == nil {
		after = realTimer
	}
	p := &pool{
		m:      m,
		idle:   idle,
		after:  after,
		ready:  make(chan *instance, size),
		free:   make(chan usedMemory, size),
		wake:   make(chan struct{}, 1),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	m.e.wg.Add(1)
	go func() {
		defer m.e.wg.Done()
		defer close(p.done)
		p.run(ctx)
	}()
	return p
}

// run waits for the first refill, then keeps the pool full until ctx is canceled;
// when no take came for the idle time it drains the pool and waits again.
func (p *pool) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		p.fill(ctx)
		if p.idle <= 0 {
			continue
		}
		idle, stop := p.after(p.idle)
	waiting:
		for {
			select {
			case <-ctx.Done():
				stop()
				return
			case <-p.wake:
				stop()
				p.fill(ctx)
				idle, stop = p.after(p.idle)
			case <-idle:
				p.drain(ctx)
				break waiting
			}
		}
	}
}

// fill restores instances from the snapshot until the pool is full. Without a
// snapshot (none taken yet, or the module has no snapshot form) there is nothing
// to do: each call initialises its own instance. After a failure it stops until
// the next refill instead of retrying in a loop.
func (p *pool) fill(ctx context.Context) {
	s := p.load()
	if s == nil {
		return
	}
	for len(p.ready) < cap(p.ready) {
		inst, err := p.restore(ctx, s)
		if err != nil {
			if ctx.Err() == nil {
				p.m.e.log.Warn("wasm: preparing an instance failed", "tool", p.m.name, "err", err)
			}
			return
		}
		p.ready <- inst
	}
}

// drain closes the ready instances and drops the snapshot and the memories kept
// for reuse.
func (p *pool) drain(ctx context.Context) {
	p.mu.Lock()
	p.snap = nil
	p.mu.Unlock()
	for {
		select {
		case inst := <-p.ready:
			inst.mod.Close(context.WithoutCancel(ctx))
		default:
			for {
				select {
				case <-p.free:
				default:
					return
				}
			}
		}
	}
}

// restore restores an instance from s in a memory kept for reuse, if there is one.
func (p *pool) restore(ctx context.Context, s *snapshot) (*instance, error) {
	var reuse *usedMemory
	select {
	case u := <-p.free:
		reuse = &u
		p.reused.Add(1)
	default:
	}
	return p.m.restore(ctx, s, reuse, p.recycle)
}

// recycle keeps a closed instance's memory for the next instance, unless enough
// are kept already.
func (p *pool) recycle(u usedMemory) {
	select {
	case p.free <- u:
	default:
	}
}

func (p *pool) load() *snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.snap
}

// take returns an instance for one call: a ready one, one restored from the
// snapshot under ctx, or, without a snapshot, one initialised under ctx, whose
// state is then taken as the snapshot. The caller calls refill once its call is
// answered, so that preparing the next instances does not compete with it.
func (p *pool) take(ctx context.Context) (*instance, error) {
	select {
	case inst := <-p.ready:
		return inst, nil
	default:
	}
	if s := p.load(); s != nil {
		return p.restore(ctx, s)
	}
	inst, err := p.m.instantiate(ctx)
	if err != nil {
		return nil, err
	}
	s, err := takeSnapshot(inst)
	if err != nil {
		p.m.e.log.Warn("wasm: taking the snapshot of an initialised instance failed", "tool", p.m.name, "err", err)
	}
	if s != nil {
		p.mu.Lock()
		if p.snap == nil {
			p.snap = s
		}
		p.mu.Unlock()
	}
	return inst, nil
}

// refill wakes the fill goroutine.
func (p *pool) refill() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// close stops the fill goroutine, waits for it and drains the pool. It is called
// once, by Module.Close.
func (p *pool) close(ctx context.Context) {
	p.cancel()
	<-p.done
	p.drain(ctx)
}

// deferKey is the context key of a *deferred.
type deferKey struct{}

// deferred is the work calls under one context left for after their answer.
type deferred struct {
	mu  sync.Mutex
	ran bool
	fns []func()
}

// DeferWork returns a context under which Execute leaves the work that does not
// belong to the call (preparing the tool's next instances) to the caller, and the
// function that does it: call it once the answer is sent. It is idempotent; work
// left after it ran is done at once.
func DeferWork(ctx context.Context) (context.Context, func()) {
	d := &deferred{}
	return context.WithValue(ctx, deferKey{}, d), func() {
		d.mu.Lock()
		fns := d.fns
		d.fns, d.ran = nil, true
		d.mu.Unlock()
		for _, f := range fns {
			f()
		}
	}
}

// afterCall runs f once the call under ctx is answered (see DeferWork), or now.
func afterCall(ctx context.Context, f func()) {
	if d, ok := ctx.Value(deferKey{}).(*deferred); ok {
		d.mu.Lock()
		later := !d.ran
		if later {
			d.fns = append(d.fns, f)
		}
		d.mu.Unlock()
		if later {
			return
		}
	}
	f()
}
