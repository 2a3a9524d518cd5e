package audit

import (
	"context"
	"sync"
	"time"
)

// subscribers is the set of live subscriptions. The writer goroutine publishes to
// them with non-blocking sends only, so a slow subscriber never holds it up.
type subscribers struct {
	mu     sync.Mutex // guards every field below and each subscriber's fields
	closed bool       // set by closeAll: no new subscriptions
	next   uint64
	m      map[uint64]*subscriber
}

type subscriber struct {
	ch     chan Record
	f      Filter
	missed int64       // matching records not delivered since the last gap record
	stop   func() bool // releases the context.AfterFunc registration
}

func (s *subscribers) init() { s.m = make(map[uint64]*subscriber) }

// Subscribe returns a channel of the records written from now on that match f (its
// Limit is ignored), and a function that ends the subscription. The subscription also
// ends when ctx is done or the Writer is closed; the channel is then closed.
//
// Each subscription has a bounded buffer (Config.SubscriberBuffer) and the writer
// never waits for it. When it is full, records are not delivered; the next matching
// record that finds room is preceded by a gap record whose Dropped says how many
// matching records the subscriber missed. The cancel function is safe to call more than
// once.
func (w *Writer) Subscribe(ctx context.Context, f Filter) (<-chan Record, func()) {
	s := &subscriber{ch: make(chan Record, w.cfg.SubscriberBuffer), f: f}
	w.subs.mu.Lock()
	if w.subs.closed {
		w.subs.mu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	id := w.subs.next
	w.subs.next++
	w.subs.m[id] = s
	cancel := func() { w.subs.remove(id) }
	// Registered under the lock so that closeAll always finds stop set.
	s.stop = context.AfterFunc(ctx, cancel)
	w.subs.mu.Unlock()
	return s.ch, func() {
		s.stop()
		cancel()
	}
}

// remove ends one subscription; removing it twice is a no-op.
func (s *subscribers) remove(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub, ok := s.m[id]; ok {
		delete(s.m, id)
		close(sub.ch)
	}
}

// closeAll ends every subscription and refuses new ones.
func (s *subscribers) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for id, sub := range s.m {
		sub.stop()
		close(sub.ch)
		delete(s.m, id)
	}
}

// publish offers each record of batch to every subscriber whose filter matches.
func (s *subscribers) publish(batch []Record, now func() time.Time, m *metrics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.m {
		for _, r := range batch {
			if sub.f.Match(r) {
				sub.offer(r, now, m)
			}
		}
	}
}

// offer sends r without blocking, preceded by a gap record when records were missed.
// A gap record in the stream is merged into the pending one.
func (sub *subscriber) offer(r Record, now func() time.Time, m *metrics) {
	if sub.missed > 0 {
		gap := Record{Time: now().UTC(), Kind: KindGap, Dropped: sub.missed}
		if r.Kind == KindGap {
			gap.Dropped += r.Dropped
		}
		select {
		case sub.ch <- gap:
			sub.missed = 0
			if r.Kind == KindGap {
				return
			}
		default:
			sub.lose(r, m)
			return
		}
	}
	select {
	case sub.ch <- r:
	default:
		sub.lose(r, m)
	}
}

// lose counts r as missed. A gap record stands for the records it counts.
func (sub *subscriber) lose(r Record, m *metrics) {
	n := int64(1)
	if r.Kind == KindGap {
		n = r.Dropped
	}
	sub.missed += n
	m.subscriberGap.Add(float64(n))
}
