// Package strview reads a string's bytes without copying them, for the scanners
// of the egress path that take []byte and only read it.
package strview

import "unsafe"

// Bytes returns s's bytes without a copy. They are read-only: writing to them is
// undefined behaviour (a string's memory may be shared or in read-only pages).
func Bytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
