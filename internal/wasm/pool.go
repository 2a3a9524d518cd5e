package wasm

import (
	"context"
)

// pool keeps up to size pristine, initialised instances of a reactor module, made by
// one background goroutine. An instance is handed to exactly one call and never
// reused.
type pool struct {
	m      *Module
	ready  chan *instance // only the fill goroutine sends
	wake   chan struct{}  // capacity 1: "refill"
	cancel context.CancelFunc
	done   chan struct{} // closed when the fill goroutine has returned
}

func newPool(m *Module, size int) *pool {
	ctx, cancel := context.WithCancel(m.e.ctx)
	p := &pool{
		m:      m,
		ready:  make(chan *instance, size),
		wake:   make(chan struct{}, 1),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	m.e.wg.Add(1)
	go func() {
		defer m.e.wg.Done()
		defer close(p.done)
		p.fill(ctx)
	}()
	return p
}

// fill keeps the pool full until ctx is canceled. After a failed start-up it waits
// for the next take instead of retrying in a loop.
func (p *pool) fill(ctx context.Context) {
	for {
		for len(p.ready) < cap(p.ready) {
			ictx, cancel := context.WithTimeout(ctx, p.m.lim.maxTimeout)
			inst, err := p.m.instantiate(ictx)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				p.m.e.log.Warn("wasm: preparing an instance failed", "tool", p.m.name, "err", err)
				break
			}
			p.ready <- inst
		}
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
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

// close stops the fill goroutine, waits for it and closes the idle instances.
func (p *pool) close(ctx context.Context) {
	p.cancel()
	<-p.done
	for {
		select {
		case inst := <-p.ready:
			inst.mod.Close(ctx)
		default:
			return
		}
	}
}
