package server

import (
	"bytes"
	"encoding/base64"
	"testing"
	"unicode/utf8"
)

// FuzzExecFrames: whatever bytes a sandbox writes, cut anywhere, the frames carry
// exactly those bytes, each chunk within maxFrameData, and output that is valid
// UTF-8 as a whole always travels as text, never base64.
func FuzzExecFrames(f *testing.F) {
	f.Add([]byte("hello"), uint16(2))
	f.Add([]byte("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), uint16(1))
	f.Add([]byte{0xff, 0xfe, 0, 'a', 0xc3}, uint16(3))
	f.Add(bytes.Repeat([]byte("\xe2\x82\xac"), maxFrameData), uint16(7))
	f.Fuzz(func(t *testing.T, data []byte, step uint16) {
		var got []byte
		allText := true
		c := &utf8Chunker{emit: func(b []byte) error {
			if len(b) == 0 || len(b) > maxFrameData {
				t.Fatalf("chunk of %d bytes", len(b))
			}
			fr := encodeChunk("stdout", b)
			if fr.DataBase64 != "" {
				allText = false
				d, err := base64.StdEncoding.DecodeString(fr.DataBase64)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, d...)
			} else {
				got = append(got, fr.Data...)
			}
			return nil
		}}
		n := int(step%97) + 1
		for rest := data; len(rest) > 0; {
			k := min(n, len(rest))
			if w, err := c.Write(rest[:k]); err != nil || w != k {
				t.Fatalf("Write = %d, %v", w, err)
			}
			rest = rest[k:]
		}
		c.flush()
		if !bytes.Equal(got, data) {
			t.Fatalf("frames carry %q, want %q", got, data)
		}
		if utf8.Valid(data) && !allText {
			t.Fatalf("valid UTF-8 %q went out as base64", data)
		}
	})
}
