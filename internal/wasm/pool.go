package wasm

import (
	"context"
	"time"
)

// pool keeps up to size pristine, initialised instances of a reactor module, made by
// one background goroutine. Nothing is prepared before the tool's first call, and
// the instances are closed again once no call has taken one for the idle time, so
// that a tool nobody uses holds no instance. An instance is handed to exactly one
// call and never reused.
type pool struct {
	m      *Module
	idle   time.Duration  // drain after this long without a take; <= 0: never
	after  timerFunc      // the idle timer
	ready  chan *instance // only the fill goroutine sends
	wake   chan struct{}  // capacity 1: "refill"
	cancel context.CancelFunc
	done   chan struct{} // closed when the fill goroutine has returned
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

// run waits for the first take, then keeps the pool full until ctx is canceled; when
// no take came for the idle time it closes the ready instances and waits for the
// next take again.
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

// fill prepares instances until the pool is full. After a failed start-up it stops
// until the next take instead of retrying in a loop.
func (p *pool) fill(ctx context.Context) {
	for len(p.ready) < cap(p.ready) {
		ictx, cancel := context.WithTimeout(ctx, p.m.lim.maxTimeout)
		inst, err := p.m.instantiate(ictx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				p.m.e.log.Warn("wasm: preparing an instance failed", "tool", p.m.name, "err", err)
			}
			return
		}
		p.ready <- inst
	}
}

// drain closes the instances that are ready.
func (p *pool) drain(ctx context.Context) {
	for {
		select {
		case inst := <-p.ready:
			inst.mod.Close(context.WithoutCancel(ctx))
		default:
			return
		}
	}
}

// take returns a ready instance, or initialises one under ctx when none is ready.
// The caller calls refill once its call is over, so that preparing the next instance
// does not compete with the call for CPU.
func (p *pool) take(ctx context.Context) (*instance, error) {
	select {
	case inst := <-p.ready:
		return inst, nil
	default:
	}
	return p.m.instantiate(ctx)
}

// refill wakes the fill goroutine.
func (p *pool) refill() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// close stops the fill goroutine, waits for it and closes the idle instances. It is
// called once, by Module.Close.
func (p *pool) close(ctx context.Context) {
	p.cancel()
	<-p.done
	p.drain(ctx)
}
