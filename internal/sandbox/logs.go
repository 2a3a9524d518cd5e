package sandbox

import "sync"

// cappedBuffer keeps at most limit bytes and remembers whether more were offered. It
// never fails a write, so a demultiplexer feeding it keeps draining the stream.
type cappedBuffer struct {
	mu        sync.Mutex
	limit     int64
	buf       []byte
	truncated bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.limit - int64(len(c.buf))
	if room < int64(len(p)) {
		c.truncated = true
		if room > 0 {
			c.buf = append(c.buf, p[:room]...)
		}
		return len(p), nil
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *cappedBuffer) bytes() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.buf...), c.truncated
}
