package wasm

import "errors"

var errMalformed = errors.New("malformed module")

// memoryMinPages returns the largest initial size, in pages, of the memories a module
// defines (imported ones excluded), by reading its memory section. wazero's API only
// shows exported memories; the engine must know every memory's minimum before
// instantiating, because an instance's first allocation cannot be refused.
func memoryMinPages(bin []byte) (uint32, error) {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return 0, errMalformed
	}
	p := bin[8:]
	var most uint32
	for len(p) > 0 {
		id := p[0]
		size, n := uleb32(p[1:])
		if n == 0 || uint64(size) > uint64(len(p)-1-n) {
			return 0, errMalformed
		}
		body := p[1+n : 1+n+int(size)]
		p = p[1+n+int(size):]
		if id != 5 { // memory section
			continue
		}
		count, n := uleb32(body)
		if n == 0 {
			return 0, errMalformed
		}
		body = body[n:]
		for range count {
			if len(body) == 0 {
				return 0, errMalformed
			}
			flags := body[0]
			lo, n := uleb32(body[1:])
			if n == 0 {
				return 0, errMalformed
			}
			body = body[1+n:]
			if flags&1 != 0 { // has a maximum
				if _, n = uleb32(body); n == 0 {
					return 0, errMalformed
				}
				body = body[n:]
			}
			most = max(most, lo)
		}
	}
	return most, nil
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
