package wasm

import "github.com/tetratelabs/wazero/experimental"

// limitedAllocator backs one instance's linear memory and refuses to grow it past
// limit bytes, so memory.grow returns -1 to the guest. wazero's runtime-wide page
// limit is the server maximum; this gives each tool its own.
//
// An instance restored from a snapshot may get the memory of a closed instance of
// the same module (reuse) instead of a new allocation, and gives its own back when
// it is closed (recycle): restore overwrites it before the guest runs (see
// snapshot.go), so that the Go heap does not allocate and collect a whole memory
// per call.
type limitedAllocator struct {
	limit   uint64
	reserve uint64 // capacity to allocate at first, within limit
	reuse   *usedMemory
	recycle func(usedMemory) // nil: the memory is left to the garbage collector
	mem     *limitedMemory
	denied  bool // a grow was refused; read after the call returns
}

// usedMemory is the memory of a closed instance: its bytes up to dirty may hold
// anything the guest wrote, the rest of its capacity is zero.
type usedMemory struct {
	buf   []byte // length 0
	dirty int
}

func (a *limitedAllocator) Allocate(capacity, maxBytes uint64) experimental.LinearMemory {
	m := &limitedMemory{a: a}
	c := min(max(capacity, a.reserve), a.limit, maxBytes)
	switch {
	case a.reuse != nil && uint64(cap(a.reuse.buf)) >= c:
		m.buf, m.dirty = a.reuse.buf[:0], a.reuse.dirty
		a.reuse = nil
	case c > 0:
		m.buf = make([]byte, 0, c)
	}
	a.mem = m
	return m
}

type limitedMemory struct {
	a       *limitedAllocator
	buf     []byte
	dirty   int // bytes that may not be zero: the previous owner's, or the high-water length
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
	} else {
		newCap := max(size, min(2*uint64(cap(m.buf)), m.a.limit))
		nb := make([]byte, size, newCap)
		copy(nb, m.buf)
		m.buf = nb
	}
	m.dirty = max(m.dirty, len(m.buf))
	return m.buf
}

// scrub makes the memory hold exactly image followed by zeros: it is called before
// the guest runs, on a memory of len(image) bytes.
func (m *limitedMemory) scrub(image []byte) {
	n := copy(m.buf, image)
	if m.dirty > n {
		clear(m.buf[n:m.dirty])
	}
	m.dirty = n
}

func (m *limitedMemory) Free() {
	if m.a.recycle != nil && m.buf != nil {
		m.a.recycle(usedMemory{buf: m.buf[:0], dirty: m.dirty})
	}
	m.buf = nil
}
