package egress

import (
	"sync"
	"testing"
	"time"
)

func TestLimitersPerKey(t *testing.T) {
	l := newLimiters(1, 2, time.Minute)
	now := time.Unix(1000, 0)
	steps := []struct {
		name    string
		key     string
		advance time.Duration
		want    bool
	}{
		{"first token", "container/a", 0, true},
		{"second token", "container/a", 0, true},
		{"bucket empty", "container/a", 0, false},
		{"other key has its own bucket", "container/b", 0, true},
		{"tools and containers do not share", "tool/a", 0, true},
		{"half a token is not enough", "container/a", 500 * time.Millisecond, false},
		{"refilled one token", "container/a", 500 * time.Millisecond, true},
		{"and only one", "container/a", 0, false},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		if got := l.allow(s.key, now); got != s.want {
			t.Fatalf("%s: allow(%q) = %v, want %v", s.name, s.key, got, s.want)
		}
	}
}

func TestLimitersEvictIdle(t *testing.T) {
	l := newLimiters(10, 5, time.Minute)
	now := time.Unix(1000, 0)
	for _, k := range []string{"a", "b", "c"} {
		l.allow(k, now)
	}
	if n := l.len(); n != 3 {
		t.Fatalf("%d buckets, want 3", n)
	}
	now = now.Add(30 * time.Second)
	l.allow("a", now)
	now = now.Add(45 * time.Second) // b and c idle for 75 s, a for 45 s
	l.allow("d", now)
	if n := l.len(); n != 2 {
		t.Fatalf("%d buckets after eviction, want 2 (a and d)", n)
	}
	// An evicted key starts with a full bucket, as it would have been anyway.
	for i := range 5 {
		if !l.allow("b", now) {
			t.Fatalf("token %d of a re-created bucket refused", i)
		}
	}
}

func TestLimitersIdleNeverShorterThanRefill(t *testing.T) {
	l := newLimiters(0.01, 10, time.Second) // 1000 s to refill
	if l.idle < 1000*time.Second {
		t.Fatalf("idle = %v, want at least the refill time", l.idle)
	}
}

func TestLimitersUnlimited(t *testing.T) {
	l := newLimiters(-1, 1, time.Minute)
	now := time.Unix(1000, 0)
	for i := range 100 {
		if !l.allow("k", now) {
			t.Fatalf("request %d refused with rate limiting disabled", i)
		}
	}
}

// Many goroutines on a few keys: each key hands out exactly its burst.
func TestLimitersHammer(t *testing.T) {
	const burst, workers, perWorker = 20, 8, 50
	l := newLimiters(0.001, burst, time.Minute)
	now := time.Unix(1000, 0)
	keys := []string{"a", "b", "c"}
	var mu sync.Mutex
	granted := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				k := keys[(w+i)%len(keys)]
				if l.allow(k, now) {
					mu.Lock()
					granted[k]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for _, k := range keys {
		if granted[k] != burst {
			t.Errorf("key %s granted %d tokens, want %d", k, granted[k], burst)
		}
	}
}
