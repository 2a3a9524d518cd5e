package strview

import "testing"

func TestBytesIsTheStringsMemory(t *testing.T) {
	s := "clawbox"
	b := Bytes(s)
	if string(b) != s || len(b) != len(s) || cap(b) != len(s) {
		t.Fatalf("Bytes(%q) = %q (len %d cap %d)", s, b, len(b), cap(b))
	}
	if len(Bytes("")) != 0 {
		t.Fatal("Bytes of the empty string is not empty")
	}
	if testing.AllocsPerRun(100, func() { _ = Bytes(s) }) != 0 {
		t.Fatal("Bytes allocates")
	}
}
