package wasm

import "github.com/tetratelabs/wazero/experimental"

// limitedAllocator backs one instance's linear memory and refuses to grow it past
// limit bytes, so memory.grow returns -1 to the guest. wazero's runtime-wide page
// limit is the server maximum; this gives each tool its own.
type limitedAllocator struct {
	limit  uint64
	mem    *limitedMemory
	denied bool // a grow was refused; read after the call returns
}

func (a *limitedAllocator) Allocate(capacity, maxBytes uint64) experimental.LinearMemory {
	m := &limitedMemory{a: a}
	if c := min(capacity, a.limit, maxBytes); c > 0 {
		m.buf = make([]byte, 0, c)
	}
	a.mem = m
	return m
}

type limitedMemory struct {
	a       *limitedAllocator
	buf     []byte
	started bool
}

func (m *limitedMemory) Reallocate(size uint64) []byte {
	first := !m.started
	m.started = true
	// The first call sizes the initial memory: wazero cannot fail it, and Compile
	// refuses modules whose minimum is over the limit (see memoryMinPages).
	if size > m.a.limit && !first {
		m.a.denied = true
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	newCap := max(size, min(2*uint64(cap(m.buf)), m.a.limit))
	nb := make([]byte, size, newCap)
	copy(nb, m.buf)
	m.buf = nb
	return m.buf
}

func (m *limitedMemory) Free() { m.buf = nil }
