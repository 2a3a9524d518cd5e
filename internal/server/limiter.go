package server

import (
	"context"
	"errors"
	"sync"

	"github.com/clawbox/clawbox/api"
)

// Limiter bounds the executions running at once across the whole server (one
// semaphore, not one per route), with a bounded queue of waiters: beyond it, Acquire
// fails at once with 503 busy.
type Limiter struct {
	slots chan struct{}

	mu       sync.Mutex // guards waiting
	waiting  int
	maxQueue int
}

// NewLimiter returns a limiter with n slots and room for maxQueue waiters.
func NewLimiter(n, maxQueue int) *Limiter {
	if n < 1 {
		n = 1
	}
	return &Limiter{slots: make(chan struct{}, n), maxQueue: maxQueue}
}

var errBusy = api.Errorf(api.CodeBusy, "too many executions in progress; retry later")

func isBusy(err error) bool { return errors.Is(err, errBusy) }

// Acquire takes a slot, waiting in the queue if none is free. It returns the release
// function, or errBusy when the queue is full, or ctx's error.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	select {
	case l.slots <- struct{}{}:
		return l.releaseFunc(), nil
	default:
	}
	l.mu.Lock()
	if l.waiting >= l.maxQueue {
		l.mu.Unlock()
		return nil, errBusy
	}
	l.waiting++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.waiting--
		l.mu.Unlock()
	}()
	select {
	case l.slots <- struct{}{}:
		return l.releaseFunc(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *Limiter) releaseFunc() func() {
	var once sync.Once
	return func() { once.Do(func() { <-l.slots }) }
}

// InUse returns the number of slots taken and of waiters.
func (l *Limiter) InUse() (running, waiting int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.slots), l.waiting
}
