package egress

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters holds one token bucket per key (a sandbox or a tool). Buckets idle for
// longer than idle are dropped during a later call; a dropped bucket would have been
// full again anyway, because idle is never shorter than the time to refill a bucket.
// It starts no goroutine.
type limiters struct {
	limit rate.Limit
	burst int
	idle  time.Duration

	mu        sync.Mutex
	buckets   map[string]*bucket // guarded by mu
	lastSweep time.Time          // guarded by mu
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

func newLimiters(perSecond float64, burst int, idle time.Duration) *limiters {
	l := &limiters{limit: rate.Limit(perSecond), burst: burst, idle: idle, buckets: make(map[string]*bucket)}
	if perSecond < 0 {
		l.limit = rate.Inf
	}
	if perSecond > 0 {
		if refill := time.Duration(float64(burst) / perSecond * float64(time.Second)); refill > l.idle {
			l.idle = refill
		}
	}
	return l
}

// allow takes one token from key's bucket at time now and reports whether there was one.
func (l *limiters) allow(key string, now time.Time) bool {
	if l.limit == rate.Inf {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.idle/2 {
		l.sweepLocked(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.used = now
	return b.lim.AllowN(now, 1)
}

func (l *limiters) sweepLocked(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.used) >= l.idle {
			delete(l.buckets, k)
		}
	}
}

// len returns the number of live buckets.
func (l *limiters) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// peek reports whether key's bucket holds a token at time now, taking none. A key
// without a bucket has a full one.
func (l *limiters) peek(key string, now time.Time) bool {
	if l.limit == rate.Inf {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return true
	}
	return b.lim.TokensAt(now) >= 1
}
