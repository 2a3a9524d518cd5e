package wasm

import (
	"errors"
	"fmt"

	"github.com/clawbox/clawbox/api"
)

// This file is a small, bounded reader of the WebAssembly binary format. It does not
// decode a module: it reads just enough of its structure (section sizes, vector
// counts, memory and table limits, and each function body's size and local
// declarations) to refuse a module whose shape would make wazero's compiler or an
// instance allocate far more than the module's size suggests, before wazero sees it.
// A 55-byte module that declares 50 million locals in one function is the example:
// wazero accepts it and compiling it takes well over a gigabyte.
//
// The reader never allocates in proportion to what the module declares, only reads
// within the buffer it was given, and stops at the first limit exceeded. It accepts
// every module wazero compiles (FuzzInspectModule checks that); a module it calls
// malformed is one wazero would refuse too.

// ModuleLimits bound the structure of a module, checked before it is compiled. Zero
// fields take the defaults of [DefaultModuleLimits]. Each limit is named in errors by
// its configuration key in the [sandbox] table.
type ModuleLimits struct {
	// MaxFunctions bounds the functions a module defines (its function section).
	MaxFunctions int
	// MaxFunctionLocals bounds the locals one function declares.
	MaxFunctionLocals int
	// MaxLocals bounds the locals all functions declare together.
	MaxLocals int
	// MaxFunctionBytes bounds the size of one function body.
	MaxFunctionBytes int
	// MaxCodeBytes bounds the code section.
	MaxCodeBytes int
	// MaxDataBytes bounds the data section (the bytes copied into memory at start).
	MaxDataBytes int
	// MaxTableElements bounds the initial size of the tables together, and the
	// entries the element section can hold (each takes at least one byte of it).
	MaxTableElements int
	// MaxImports and MaxExports bound the import and export sections.
	MaxImports int
	MaxExports int
}

// DefaultModuleLimits are far above what Go-built tools need and far below what
// hurts. Measured here: the example tools have up to 2,432 functions, 20 locals in
// the largest function (10,441 in all), 29 KiB in the largest body, 2.6 MiB of code,
// 1.5 MiB of data and 6,528 table elements; a Go program linking net/http, crypto/tls,
// go/parser and both template packages has 3,316 functions, 17 locals at most
// (14,757 in all), a 50 KiB body, 3.7 MiB of code, 2.2 MiB of data and 7,412 table
// elements. At the limits, 100 functions of 10,000 locals compile in 8 MB and one
// 1 MiB function in 60 MB.
var DefaultModuleLimits = ModuleLimits{
	MaxFunctions:      100_000,
	MaxFunctionLocals: 10_000,
	MaxLocals:         1_000_000,
	MaxFunctionBytes:  1 << 20,
	MaxCodeBytes:      32 << 20,
	MaxDataBytes:      16 << 20,
	MaxTableElements:  200_000,
	MaxImports:        1_000,
	MaxExports:        1_000,
}

// Fixed bounds of the vectors that have no limit of their own: wazero allocates an
// entry per declared element before reading them, so each count must be bounded.
const (
	maxTypes        = 100_000
	maxGlobals      = 100_000
	maxTables       = 100
	maxMemories     = 1       // wazero supports one memory
	maxSegments     = 100_000 // element and data segments, each
	maxSectionIDTag = 13      // the exception-handling proposal's tag section
)

func (l ModuleLimits) withDefaults() ModuleLimits {
	d := DefaultModuleLimits
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxFunctions, d.MaxFunctions)
	set(&l.MaxFunctionLocals, d.MaxFunctionLocals)
	set(&l.MaxLocals, d.MaxLocals)
	set(&l.MaxFunctionBytes, d.MaxFunctionBytes)
	set(&l.MaxCodeBytes, d.MaxCodeBytes)
	set(&l.MaxDataBytes, d.MaxDataBytes)
	set(&l.MaxTableElements, d.MaxTableElements)
	set(&l.MaxImports, d.MaxImports)
	set(&l.MaxExports, d.MaxExports)
	return l
}

// moduleShape is what the reader found.
type moduleShape struct {
	functions         int    // defined functions (function section)
	codeBodies        int    // entries of the code section
	maxFunctionLocals uint64 // locals of the function with the most
	locals            uint64 // locals of all functions
	maxFunctionBytes  int
	codeBytes         int
	dataBytes         int
	tableElements     uint64 // sum of the tables' minimum sizes
	elemBytes         int
	imports, exports  int
	memoryMinPages    uint32 // the largest initial size of the memories defined
}

// errMalformed is a module the reader cannot read; wazero would refuse it too.
var errMalformed = errors.New("malformed module")

// limitError is the error of a module over one of its structural limits.
// what describes the value ("declares 7 tables"); key names the limit.
func limitError(key string, value uint64, limit int, what string) error {
	name := key
	if key == keyFixed {
		name = "a fixed limit of clawbox"
	}
	return &api.Error{
		Code:    api.CodeModuleLimitExceeded,
		Message: fmt.Sprintf("the module %s, over the limit of %d (%s)", what, limit, name),
		Details: map[string]any{"limit": key, "max": limit, "value": value},
	}
}

func malformed(format string, args ...any) error {
	return &api.Error{
		Code:    api.CodeInvalidModule,
		Message: "not a valid WebAssembly module: " + fmt.Sprintf(format, args...),
	}
}

// Configuration keys of the limits, as errors name them.
const (
	keyMaxFunctions      = "sandbox.max_module_functions"
	keyMaxFunctionLocals = "sandbox.max_function_locals"
	keyMaxLocals         = "sandbox.max_module_locals"
	keyMaxFunctionBytes  = "sandbox.max_function_bytes"
	keyMaxCodeBytes      = "sandbox.max_code_bytes"
	keyMaxDataBytes      = "sandbox.max_data_bytes"
	keyMaxTableElements  = "sandbox.max_table_elements"
	keyMaxImports        = "sandbox.max_module_imports"
	keyMaxExports        = "sandbox.max_module_exports"
	keyFixed             = "fixed"
)

// inspectModule reads bin's structure and checks it against lim (with defaults
// applied by the caller). Errors are *api.Error with code module_limit_exceeded
// (naming the limit) or invalid_module.
func inspectModule(bin []byte, lim ModuleLimits) (moduleShape, error) {
	var s moduleShape
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return s, malformed("no WebAssembly header")
	}
	if string(bin[4:8]) != "\x01\x00\x00\x00" {
		return s, malformed("unsupported binary version")
	}
	p := bin[8:]
	for len(p) > 0 {
		id := p[0]
		size, n := uleb32(p[1:])
		if n == 0 || uint64(size) > uint64(len(p)-1-n) {
			return s, malformed("section %d: size beyond the end of the module", id)
		}
		body := p[1+n : 1+n+int(size)]
		p = p[1+n+int(size):]
		if id > maxSectionIDTag {
			return s, malformed("unknown section id %d", id)
		}
		if err := s.section(id, body, lim); err != nil {
			if errors.Is(err, errMalformed) {
				return s, malformed("section %d: %v", id, err)
			}
			return s, err
		}
	}
	return s, nil
}

// section reads one section's body.
func (s *moduleShape) section(id byte, body []byte, lim ModuleLimits) error {
	// Every section but custom (0), start (8) and data count (12) begins with a count.
	var count uint32
	if id != 0 && id != 8 && id != 12 {
		c, n := uleb32(body)
		if n == 0 {
			return errMalformed
		}
		count, body = c, body[n:]
	}
	// Each entry of every vector takes at least one byte, so a count beyond the
	// section's size is a lie, whatever the limit.
	if uint64(count) > uint64(len(body)) {
		return errMalformed
	}
	check := func(key string, v uint64, limit int, what string) error {
		if v > uint64(limit) {
			return limitError(key, v, limit, fmt.Sprintf(what, v))
		}
		return nil
	}
	switch id {
	case 0:
		return s.custom(body, lim)
	case 1:
		if err := check(keyFixed, uint64(count), maxTypes, "declares %d types"); err != nil {
			return err
		}
		return types(count, body)
	case 2:
		s.imports += int(count)
		if err := check(keyMaxImports, uint64(s.imports), lim.MaxImports, "has %d imports"); err != nil {
			return err
		}
		return imports(count, body)
	case 3:
		s.functions += int(count)
		return check(keyMaxFunctions, uint64(s.functions), lim.MaxFunctions, "defines %d functions")
	case 4:
		return s.tables(count, body, lim)
	case 5:
		return s.memories(count, body)
	case 6:
		return check(keyFixed, uint64(count), maxGlobals, "declares %d globals")
	case 7:
		s.exports += int(count)
		if err := check(keyMaxExports, uint64(s.exports), lim.MaxExports, "has %d exports"); err != nil {
			return err
		}
		return exports(count, body)
	case 9:
		if err := check(keyFixed, uint64(count), maxSegments, "has %d element segments"); err != nil {
			return err
		}
		s.elemBytes += len(body)
		if err := check(keyMaxTableElements, uint64(s.elemBytes), lim.MaxTableElements, "has an element section of %d bytes (as many table entries)"); err != nil {
			return err
		}
		return elements(count, body)
	case 10:
		return s.code(count, body, lim)
	case 11:
		if err := check(keyFixed, uint64(count), maxSegments, "has %d data segments"); err != nil {
			return err
		}
		s.dataBytes += len(body)
		if err := check(keyMaxDataBytes, uint64(s.dataBytes), lim.MaxDataBytes, "has a data section of %d bytes"); err != nil {
			return err
		}
		return data(count, body)
	}
	return nil
}

func (s *moduleShape) memories(count uint32, body []byte) error {
	if count > maxMemories {
		return limitError(keyFixed, uint64(count), maxMemories, fmt.Sprintf("defines %d memories", count))
	}
	for range count {
		lo, _, rest, err := limitsType(body)
		if err != nil {
			return err
		}
		body = rest
		s.memoryMinPages = max(s.memoryMinPages, lo)
	}
	return nil
}

func (s *moduleShape) tables(count uint32, body []byte, lim ModuleLimits) error {
	if count > maxTables {
		return limitError(keyFixed, uint64(count), maxTables, fmt.Sprintf("defines %d tables", count))
	}
	for range count {
		if len(body) == 0 {
			return errMalformed
		}
		initExpr := false
		if body[0] == 0x40 { // a table with an initialiser: 0x40 0x00 tabletype expr
			if len(body) < 2 || body[1] != 0 {
				return errMalformed
			}
			initExpr, body = true, body[2:]
		}
		rest, err := skipRefType(body)
		if err != nil {
			return err
		}
		lo, _, rest, err := limitsType(rest)
		if err != nil {
			return err
		}
		body = rest
		if initExpr {
			if body, err = skipConstExpr(body); err != nil {
				return err
			}
		}
		s.tableElements += uint64(lo)
		if s.tableElements > uint64(lim.MaxTableElements) {
			return limitError(keyMaxTableElements, s.tableElements, lim.MaxTableElements, fmt.Sprintf("declares tables of %d elements", s.tableElements))
		}
	}
	return nil
}

// code reads each function body's size and local declarations.
func (s *moduleShape) code(count uint32, body []byte, lim ModuleLimits) error {
	s.codeBytes += len(body)
	if s.codeBytes > lim.MaxCodeBytes {
		return limitError(keyMaxCodeBytes, uint64(s.codeBytes), lim.MaxCodeBytes, fmt.Sprintf("has %d bytes of code", s.codeBytes))
	}
	s.codeBodies += int(count)
	if s.codeBodies > lim.MaxFunctions {
		return limitError(keyMaxFunctions, uint64(s.codeBodies), lim.MaxFunctions, fmt.Sprintf("has %d function bodies", s.codeBodies))
	}
	for i := range count {
		size, n := uleb32(body)
		if n == 0 || uint64(size) > uint64(len(body)-n) {
			return errMalformed
		}
		fn := body[n : n+int(size)]
		body = body[n+int(size):]
		if int(size) > lim.MaxFunctionBytes {
			return limitError(keyMaxFunctionBytes, uint64(size), lim.MaxFunctionBytes, fmt.Sprintf("has a function (%d) of %d bytes", i, size))
		}
		s.maxFunctionBytes = max(s.maxFunctionBytes, int(size))
		decls, n := uleb32(fn)
		if n == 0 {
			return errMalformed
		}
		fn = fn[n:]
		var locals uint64
		for range decls {
			num, n := uleb32(fn)
			if n == 0 {
				return errMalformed
			}
			rest, err := skipValType(fn[n:])
			if err != nil {
				return err
			}
			fn = rest
			locals += uint64(num)
			if locals > uint64(lim.MaxFunctionLocals) {
				return limitError(keyMaxFunctionLocals, locals, lim.MaxFunctionLocals, fmt.Sprintf("declares at least %d locals in function %d", locals, i))
			}
		}
		s.maxFunctionLocals = max(s.maxFunctionLocals, locals)
		s.locals += locals
		if s.locals > uint64(lim.MaxLocals) {
			return limitError(keyMaxLocals, s.locals, lim.MaxLocals, fmt.Sprintf("declares %d locals in all", s.locals))
		}
	}
	return nil
}

// The readers below check every vector inside a section: wazero allocates each
// vector (a name, a parameter list, an element or name map) at its declared length
// before reading it, so a length beyond what is left of the section is refused here.
// wazero refuses such a module too (a section must be read to its exact end), but only
// after the allocation.

// vec reads a vector's length and checks that at least minEntry bytes per entry are left.
func vec(b []byte, minEntry int) (uint32, []byte, error) {
	n, l := uleb32(b)
	if l == 0 || uint64(n)*uint64(minEntry) > uint64(len(b)-l) {
		return 0, nil, errMalformed
	}
	return n, b[l:], nil
}

// skipBytes skips a byte vector (a name, a data segment's bytes).
func skipBytes(b []byte) ([]byte, error) {
	n, rest, err := vec(b, 1)
	if err != nil {
		return nil, err
	}
	return rest[n:], nil
}

// types reads function types: 0x60, the parameter types, the result types.
func types(count uint32, b []byte) error {
	for range count {
		if len(b) == 0 || b[0] != 0x60 {
			return errMalformed
		}
		b = b[1:]
		for range 2 { // parameters, then results
			n, rest, err := vec(b, 1)
			if err != nil {
				return err
			}
			for range n {
				if rest, err = skipValType(rest); err != nil {
					return err
				}
			}
			b = rest
		}
	}
	return nil
}

func imports(count uint32, b []byte) error {
	var err error
	for range count {
		for range 2 { // module and field names
			if b, err = skipBytes(b); err != nil {
				return err
			}
		}
		if len(b) == 0 {
			return errMalformed
		}
		if b, err = skipImportDesc(b[0], b[1:]); err != nil {
			return err
		}
	}
	return nil
}

// skipImportDesc skips the description of an import of the kind given.
func skipImportDesc(kind byte, b []byte) ([]byte, error) {
	var err error
	switch kind {
	case 0x00: // function: a type index
		n := skipLEB(b, 5)
		if n == 0 {
			return nil, errMalformed
		}
		return b[n:], nil
	case 0x01: // table
		if b, err = skipRefType(b); err != nil {
			return nil, err
		}
		_, _, b, err = limitsType(b)
		return b, err
	case 0x02: // memory
		_, _, b, err = limitsType(b)
		return b, err
	case 0x03: // global: a value type and mutability
		if b, err = skipValType(b); err != nil {
			return nil, err
		}
		if len(b) == 0 {
			return nil, errMalformed
		}
		return b[1:], nil
	case 0x04: // tag: an attribute and a type index
		if len(b) == 0 {
			return nil, errMalformed
		}
		n := skipLEB(b[1:], 5)
		if n == 0 {
			return nil, errMalformed
		}
		return b[1+n:], nil
	}
	return nil, errMalformed
}

func exports(count uint32, b []byte) error {
	var err error
	for range count {
		if b, err = skipBytes(b); err != nil {
			return err
		}
		if len(b) == 0 {
			return errMalformed
		}
		n := skipLEB(b[1:], 5)
		if n == 0 {
			return errMalformed
		}
		b = b[1+n:]
	}
	return nil
}

// elements reads element segments (flags 0 to 7 of the bulk-memory encoding).
func elements(count uint32, b []byte) error {
	var err error
	for range count {
		flags, n := uleb32(b)
		if n == 0 || flags > 7 {
			return errMalformed
		}
		b = b[n:]
		if flags&1 == 0 { // active: an offset expression, after a table index when flag 2
			if flags&2 != 0 {
				if n = skipLEB(b, 5); n == 0 {
					return errMalformed
				}
				b = b[n:]
			}
			if b, err = skipConstExpr(b); err != nil {
				return err
			}
		}
		if flags&3 != 0 { // an element kind (0x00) or a reference type
			if flags&4 == 0 {
				if len(b) == 0 {
					return errMalformed
				}
				b = b[1:]
			} else if b, err = skipRefType(b); err != nil {
				return err
			}
		}
		entries, rest, err := vec(b, 1)
		if err != nil {
			return err
		}
		b = rest
		for range entries {
			if flags&4 == 0 { // function indices
				if n = skipLEB(b, 5); n == 0 {
					return errMalformed
				}
				b = b[n:]
			} else if b, err = skipConstExpr(b); err != nil {
				return err
			}
		}
	}
	return nil
}

// data reads data segments: flags 0 (active, memory 0), 1 (passive), 2 (active, a
// memory index).
func data(count uint32, b []byte) error {
	var err error
	for range count {
		flags, n := uleb32(b)
		if n == 0 || flags > 2 {
			return errMalformed
		}
		b = b[n:]
		if flags == 2 {
			if n = skipLEB(b, 5); n == 0 {
				return errMalformed
			}
			b = b[n:]
		}
		if flags != 1 {
			if b, err = skipConstExpr(b); err != nil {
				return err
			}
		}
		if b, err = skipBytes(b); err != nil {
			return err
		}
	}
	return nil
}

// custom reads a custom section's name and, for the "name" section that wazero
// decodes, its function and local name maps.
func (s *moduleShape) custom(b []byte, lim ModuleLimits) error {
	n, rest, err := vec(b, 1)
	if err != nil {
		return err
	}
	if string(rest[:n]) != "name" {
		return nil
	}
	b = rest[n:]
	maxNames := uint64(lim.MaxFunctions + lim.MaxImports)
	for len(b) > 0 {
		id := b[0]
		size, l := uleb32(b[1:])
		if l == 0 || uint64(size) > uint64(len(b)-1-l) {
			return errMalformed
		}
		if id != 1 && id != 2 { // the module name, and subsections wazero skips
			b = b[1+l+int(size):]
			continue
		}
		// wazero reads the function and local name maps without regard to the
		// subsection's declared size, so they are read from the same place to the end
		// of the section.
		sub := b[1+l:]
		fns, sub, err := vec(sub, 2)
		if err != nil {
			return err
		}
		if uint64(fns) > maxNames {
			return limitError(keyFixed, uint64(fns), int(maxNames), fmt.Sprintf("names %d functions", fns))
		}
		var localNames uint64
		for range fns {
			if n := skipLEB(sub, 5); n == 0 {
				return errMalformed
			} else {
				sub = sub[n:]
			}
			names := uint32(1)
			if id == 2 {
				if names, sub, err = vec(sub, 2); err != nil {
					return err
				}
				localNames += uint64(names)
				if localNames > uint64(lim.MaxLocals)+maxNames {
					return limitError(keyFixed, localNames, lim.MaxLocals+int(maxNames), fmt.Sprintf("names %d locals", localNames))
				}
			}
			for range names {
				if id == 2 {
					if n := skipLEB(sub, 5); n == 0 {
						return errMalformed
					} else {
						sub = sub[n:]
					}
				}
				if sub, err = skipBytes(sub); err != nil {
					return err
				}
			}
		}
		b = sub
	}
	return nil
}

// limitsType reads memory or table limits: a flag byte (bit 0: has a maximum; bit 1:
// shared), the minimum and the optional maximum.
func limitsType(b []byte) (lo, hi uint32, rest []byte, err error) {
	if len(b) == 0 || b[0] > 3 {
		return 0, 0, nil, errMalformed
	}
	flags := b[0]
	lo, n := uleb32(b[1:])
	if n == 0 {
		return 0, 0, nil, errMalformed
	}
	b = b[1+n:]
	if flags&1 != 0 {
		if hi, n = uleb32(b); n == 0 {
			return 0, 0, nil, errMalformed
		}
		b = b[n:]
	}
	return lo, hi, b, nil
}

// skipValType skips a value type: one byte, or a typed reference (0x63 or 0x64
// followed by a heap type, a signed 33-bit LEB128).
func skipValType(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errMalformed
	}
	if b[0] == 0x63 || b[0] == 0x64 {
		n := skipLEB(b[1:], 5)
		if n == 0 {
			return nil, errMalformed
		}
		return b[1+n:], nil
	}
	return b[1:], nil
}

func skipRefType(b []byte) ([]byte, error) { return skipValType(b) }

// skipConstExpr skips a constant expression up to and including its end opcode.
func skipConstExpr(b []byte) ([]byte, error) {
	for len(b) > 0 {
		op := b[0]
		b = b[1:]
		n := 0
		switch op {
		case 0x0b: // end
			return b, nil
		case 0x41, 0x23, 0xd0, 0xd2: // i32.const, global.get, ref.null, ref.func
			n = skipLEB(b, 5)
		case 0x42: // i64.const
			n = skipLEB(b, 10)
		case 0x43:
			n = 4
		case 0x44:
			n = 8
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const arithmetic
			continue
		case 0xfd: // v128.const
			if len(b) < 1 || b[0] != 0x0c {
				return nil, errMalformed
			}
			n = 17
		default:
			return nil, errMalformed
		}
		if n == 0 || n > len(b) {
			return nil, errMalformed
		}
		b = b[n:]
	}
	return nil, errMalformed
}

// skipLEB returns the length of the LEB128 number at the start of b, at most maxLen
// bytes long (0: invalid).
func skipLEB(b []byte, maxLen int) int {
	for i := 0; i < len(b) && i < maxLen; i++ {
		if b[i]&0x80 == 0 {
			return i + 1
		}
	}
	return 0
}

// uleb32 decodes an unsigned LEB128 u32 and returns it with its length (0: invalid).
func uleb32(b []byte) (uint32, int) {
	var v uint64
	for i := 0; i < len(b) && i < 5; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > 0xFFFFFFFF {
				return 0, 0
			}
			return uint32(v), i + 1
		}
	}
	return 0, 0
}
