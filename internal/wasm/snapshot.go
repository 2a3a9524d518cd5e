package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	wapi "github.com/tetratelabs/wazero/api"
)

// A reactor's instances are started from a snapshot: the first call of a tool
// initialises an instance as usual (instantiate, _initialize), and before it runs
// the call its linear memory and the values of its mutable globals are copied
// aside. Every later call gets a new instance of its own (new tables, new WASI
// state, new data and element segments) whose memory and globals are set to the
// copy before the guest runs, instead of running _initialize again (the Go
// runtime's start-up: most of an instantiation's cost). Nothing a call does can
// reach the next one: the instance is closed after the call, its memory is never
// used again, and the snapshot is read-only once taken, before any call ran.
//
// wazero does not let the host read or set a global the module does not export, so
// the module is compiled with one more export per mutable global (exportGlobals).

// snapshotGlobalPrefix begins the names of the exports snapshotForm adds.
const snapshotGlobalPrefix = "clawbox:snapshot:global:"

// snapshot is a reactor's state right after _initialize.
type snapshot struct {
	mem     []byte   // the linear memory, whole
	globals []uint64 // the mutable globals, in the order of Module.globals
}

// dataSegment is an active data segment: the bytes dataSegments.bytes[start:end]
// copied into memory 0 at offset when the module is instantiated.
type dataSegment struct {
	offset, start, end uint32
}

// dataSegments are a module's active data segments, their bytes in one buffer of
// their own (so that the module's binary is not kept for them).
type dataSegments struct {
	segs  []dataSegment
	bytes []byte
}

// snapshotForm is a module rewritten so that its instances can be started from a
// snapshot: one more export per mutable global the module defines (so the host can
// read and set it), and every active data segment turned into an empty passive one
// (so that instantiating does not copy data the snapshot overwrites anyway: a Go
// module has tens of thousands of segments). An empty passive segment behaves as a
// dropped one, which is what an active segment is once the module is
// instantiated; the engine copies the segments itself (applyData) into an instance
// that is to run _initialize.
type snapshotForm struct {
	bin     []byte // the rewritten module; nil once compiled
	globals []string
	data    dataSegments
}

// newSnapshotForm rewrites bin (which passed inspectModule). ok is false, and the
// module must be used as it is, when it cannot be started from a snapshot: it
// imports a global (which can be mutable and shared), has a mutable global of a
// type other than i32, i64, f32 or f64, has a start function (which would run
// before the engine copies the data), or an active segment whose offset is not a
// constant.
func newSnapshotForm(bin []byte) (f snapshotForm, ok bool, err error) {
	type span struct{ from, to int }
	var (
		mutable    []uint32 // indices of the mutable globals
		exportSec  = span{-1, -1}
		dataSec    = span{-1, -1}
		exportBody []byte
		newData    []byte
		dataCount  bool // the module has a data count section (which precedes data)
	)
	ok = true
	err = eachSection(bin, func(id byte, from, to int, body []byte) bool {
		sec := span{from, to}
		switch id {
		case 2:
			var imported uint32
			imported, err = importedGlobalCount(body)
			ok = err == nil && imported == 0
		case 6:
			mutable, ok, err = mutableGlobals(body)
		case 7:
			exportSec, exportBody = sec, body
		case 8:
			ok = false
		case 12:
			dataCount = true
		case 11:
			dataSec = sec
			f.data, newData, ok, err = emptyDataSegments(body, dataCount)
		}
		return ok && err == nil
	})
	if !ok || err != nil {
		return snapshotForm{}, false, err
	}

	var entries []byte
	var count uint32
	if exportSec.from >= 0 {
		c, k := uleb32(exportBody)
		if k == 0 {
			return f, false, errMalformed
		}
		count, entries = c, exportBody[k:]
	}
	f.globals = make([]string, len(mutable))
	var added []byte
	for i, idx := range mutable {
		name := snapshotGlobalPrefix + strconv.FormatUint(uint64(idx), 10)
		if bytes.Contains(entries, []byte(name)) {
			return f, false, nil // a name of ours is taken
		}
		f.globals[i] = name
		added = appendULEB(added, uint32(len(name)))
		added = append(added, name...)
		added = append(added, 0x03) // global
		added = appendULEB(added, idx)
	}
	exports := appendULEB(nil, count+uint32(len(mutable)))
	exports = append(exports, entries...)
	exports = append(exports, added...)

	// The sections again, the export and data sections replaced. With no export
	// section, one goes before the first section that must follow it.
	out := make([]byte, 0, len(bin)+len(added)+len(newData)+32)
	out = append(out, bin[:8]...)
	wrote := false
	eachSection(bin, func(id byte, from, to int, _ []byte) bool {
		if !wrote && (from == exportSec.from || exportSec.from < 0 && (id >= 8 && id <= 12)) {
			out = appendSection(out, 7, exports)
			wrote = true
		}
		switch from {
		case exportSec.from:
		case dataSec.from:
			out = appendSection(out, 11, newData)
		default:
			out = append(out, bin[from:to]...)
		}
		return true
	})
	if !wrote {
		out = appendSection(out, 7, exports)
	}
	f.bin = out
	return f, true, nil
}

// eachSection calls fn with each section of bin (past the header): its id, where
// it begins and ends in bin, and its body, until fn returns false. A section
// running past the end is errMalformed.
func eachSection(bin []byte, fn func(id byte, from, to int, body []byte) bool) error {
	for off := 8; off < len(bin); {
		size, n := uleb32(bin[off+1:])
		if n == 0 || uint64(size) > uint64(len(bin)-off-1-n) {
			return errMalformed
		}
		to := off + 1 + n + int(size)
		if !fn(bin[off], off, to, bin[off+1+n:to]) {
			return nil
		}
		off = to
	}
	return nil
}

func appendSection(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = appendULEB(out, uint32(len(body)))
	return append(out, body...)
}

// mutableGlobals reads a global section: the indices of its mutable globals, and
// whether all of them are of a type a snapshot can hold.
func mutableGlobals(body []byte) ([]uint32, bool, error) {
	count, k := uleb32(body)
	if k == 0 {
		return nil, false, errMalformed
	}
	b := body[k:]
	var mutable []uint32
	for i := range count {
		rest, err := skipValType(b)
		if err != nil || len(rest) == 0 {
			return nil, false, errMalformed
		}
		if rest[0] == 1 { // mutable
			if len(b)-len(rest) != 1 {
				return nil, false, nil // a typed reference
			}
			switch b[0] {
			case 0x7f, 0x7e, 0x7d, 0x7c: // i32 i64 f32 f64
			default:
				return nil, false, nil
			}
			mutable = append(mutable, i)
		}
		if b, err = skipConstExpr(rest[1:]); err != nil {
			return nil, false, err
		}
	}
	return mutable, true, nil
}

// emptyDataSegments reads a data section: its active segments, and the section
// without them (passive ones are kept). When the module has a data count section,
// its code may name segments by index (memory.init, data.drop), so each active
// segment is replaced by an empty passive one instead of being left out; without
// one, no code can name a segment.
func emptyDataSegments(body []byte, dataCount bool) (active dataSegments, section []byte, ok bool, err error) {
	count, k := uleb32(body)
	if k == 0 {
		return dataSegments{}, nil, false, errMalformed
	}
	b := body[k:]
	var kept uint32
	var entries []byte
	for range count {
		entry := b
		flag, n := uleb32(b)
		if n == 0 {
			return dataSegments{}, nil, false, errMalformed
		}
		b = b[n:]
		if flag == 2 { // active, with a memory index
			mem, n := uleb32(b)
			if n == 0 {
				return dataSegments{}, nil, false, errMalformed
			}
			if mem != 0 {
				return dataSegments{}, nil, false, nil
			}
			b = b[n:]
		}
		var offset uint32
		if flag == 0 || flag == 2 {
			// The offset: i32.const n, end; anything else is not a constant.
			if len(b) < 2 || b[0] != 0x41 {
				return dataSegments{}, nil, false, nil
			}
			v, n := sleb32(b[1:])
			if n == 0 || len(b) < 2+n || b[1+n] != 0x0b {
				return dataSegments{}, nil, false, nil
			}
			offset, b = uint32(v), b[2+n:]
		} else if flag != 1 {
			return dataSegments{}, nil, false, errMalformed
		}
		size, n := uleb32(b)
		if n == 0 || uint64(size) > uint64(len(b)-n) {
			return dataSegments{}, nil, false, errMalformed
		}
		data := b[n : n+int(size)]
		b = b[n+int(size):]
		if flag == 1 {
			entries = append(entries, entry[:len(entry)-len(b)]...)
			kept++
			continue
		}
		active.segs = append(active.segs, dataSegment{offset: offset, start: uint32(len(active.bytes)), end: uint32(len(active.bytes) + len(data))})
		active.bytes = append(active.bytes, data...)
		if dataCount {
			entries = append(entries, 0x01, 0x00)
			kept++
		}
	}
	return active, append(appendULEB(nil, kept), entries...), true, nil
}

// sleb32 decodes a signed LEB128 i32 and returns it with its length (0: invalid).
func sleb32(b []byte) (int32, int) {
	var v int64
	for i := 0; i < len(b) && i < 5; i++ {
		v |= int64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if shift := 7 * (i + 1); shift < 64 && b[i]&0x40 != 0 {
				v |= -1 << shift
			}
			if v < -1<<31 || v > 1<<31-1 {
				return 0, 0
			}
			return int32(v), i + 1
		}
	}
	return 0, 0
}

// importedGlobalCount counts the globals an import section imports.
func importedGlobalCount(body []byte) (uint32, error) {
	count, k := uleb32(body)
	if k == 0 {
		return 0, errMalformed
	}
	b := body[k:]
	var globals uint32
	for range count {
		var err error
		for range 2 {
			if b, err = skipBytes(b); err != nil {
				return 0, err
			}
		}
		if len(b) == 0 {
			return 0, errMalformed
		}
		kind := b[0]
		if kind == 0x03 {
			globals++
		}
		if b, err = skipImportDesc(kind, b[1:]); err != nil {
			return 0, err
		}
	}
	return globals, nil
}

func appendULEB(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// applyData copies the module's active data segments into a new instance of its
// snapshot form, as instantiating the module as it was would have.
func (inst *instance) applyData() error {
	if inst.form == nil {
		return nil
	}
	mem := inst.mod.Memory()
	d := &inst.form.data
	for i, seg := range d.segs {
		if mem == nil || !mem.Write(seg.offset, d.bytes[seg.start:seg.end]) {
			return fmt.Errorf("data[%d]: out of bounds memory access", i)
		}
	}
	return nil
}

// takeSnapshot copies inst's memory and mutable globals: inst has just run
// _initialize and no call yet. It is nil when the module has no snapshot form.
func takeSnapshot(inst *instance) (*snapshot, error) {
	if inst.form == nil {
		return nil, nil
	}
	globals := inst.form.globals
	s := &snapshot{globals: make([]uint64, len(globals))}
	if mem := inst.mod.Memory(); mem != nil {
		b, ok := mem.Read(0, mem.Size())
		if !ok {
			return nil, errors.New("reading the initialised memory")
		}
		s.mem = bytes.Clone(b)
	}
	for i, name := range globals {
		g := inst.mod.ExportedGlobal(name)
		if g == nil {
			return nil, fmt.Errorf("the module has no export %s", name)
		}
		s.globals[i] = g.Get()
	}
	return s, nil
}

// restore makes a new instance in the snapshot's state: instantiated (without
// _initialize, nor data segments), its memory grown to the snapshot's size and
// overwritten with it, the rest of it zero, its mutable globals set. The memory
// is reuse when that is large enough (nil: a new one), and given to recycle when
// the instance is closed (nil: left to the garbage collector).
func (m *Module) restore(ctx context.Context, s *snapshot, reuse *usedMemory, recycle func(usedMemory)) (*instance, error) {
	inst, err := m.newInstance(ctx, &limitedAllocator{reserve: uint64(len(s.mem)), reuse: reuse, recycle: recycle})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*instance, error) {
		inst.mod.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	if inst.form == nil || len(inst.form.globals) != len(s.globals) {
		return fail(errors.New("the snapshot is not of this module's form"))
	}
	mem := inst.mod.Memory()
	if mem == nil || inst.alloc.mem == nil {
		if len(s.mem) > 0 {
			return fail(errors.New("the instance has no memory"))
		}
	} else {
		if size := mem.Size(); uint64(size) < uint64(len(s.mem)) {
			if _, ok := mem.Grow(uint32((uint64(len(s.mem)) - uint64(size)) / 65536)); !ok {
				return fail(errors.New("growing the memory to the snapshot's size"))
			}
		}
		if uint64(mem.Size()) != uint64(len(s.mem)) || len(inst.alloc.mem.buf) != len(s.mem) {
			return fail(errors.New("the memory does not have the snapshot's size"))
		}
		inst.alloc.mem.scrub(s.mem)
	}
	for i, name := range inst.form.globals {
		g, ok := inst.mod.ExportedGlobal(name).(wapi.MutableGlobal)
		if !ok {
			return fail(fmt.Errorf("the module's export %s is not a mutable global", name))
		}
		g.Set(s.globals[i])
	}
	return inst, nil
}
