package testkit

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

func TestBufferConcurrentWriteAndRead(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b.Write([]byte("ab"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if b.Len() != 800 || len(b.String()) != 800 {
		t.Fatalf("Len %d, String %d bytes; want 800", b.Len(), len(b.String()))
	}
}

func TestFreePortCanBeListenedOn(t *testing.T) {
	p := FreePort(t)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("port %d from FreePort: %v", p, err)
	}
	ln.Close()
}
