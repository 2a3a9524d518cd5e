package supervisor

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/net/http2"
)

// FuzzReadFrame: the parser never panics, never returns more than its
// limit, and what it returns re-encodes to the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	var b bytes.Buffer
	_ = WriteFrame(&b, FrameStdout, []byte("hi"))
	f.Add(b.Bytes())
	f.Add([]byte{FrameResize, 0, 0, 0, 4, 0, 24, 0, 80})
	f.Add([]byte{FrameStdout, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{99, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		typ, p, err := ReadFrame(bytes.NewReader(in), nil)
		if err != nil {
			return
		}
		if len(p) > MaxControlBytes {
			t.Fatalf("payload %d", len(p))
		}
		var out bytes.Buffer
		if err := WriteFrame(&out, typ, p); err != nil && typ != FrameExit && typ != FrameError {
			t.Fatal(err)
		}
	})
}

func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "a", "/a/../b", "/a\x00", "//a", "/a/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if ValidatePath(p) == nil && (filepath.Clean(p) != p || p[0] != '/' || len(p) > MaxPathBytes) {
			t.Fatalf("accepted %q", p)
		}
	})
}

// fakeSupervisor connects to l as a supervisor would and serves handler.
func fakeSupervisor(t *testing.T, sock, token string, handler http.HandlerFunc) {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte(HelloPrefix + token + "\n"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&http2.Server{}).ServeConn(conn, &http2.ServeConnOpts{Handler: handler})
	}()
	t.Cleanup(func() { conn.Close(); <-done })
}

func TestHostileSupervisor(t *testing.T) {
	cases := map[string]http.HandlerFunc{
		"oversized frame": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			var hdr [5]byte
			hdr[0] = FrameStdout
			binary.BigEndian.PutUint32(hdr[1:], 1<<30)
			_, _ = w.Write(hdr[:])
			w.(http.Flusher).Flush()
		},
		"garbage": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			_, _ = w.Write(bytes.Repeat([]byte{0xAB}, 1000))
		},
		"output beyond cap": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			chunk := bytes.Repeat([]byte("x"), MaxFramePayload)
			for range 100 {
				if WriteFrame(w, FrameStdout, chunk) != nil {
					return
				}
			}
		},
		"huge headers": func(w http.ResponseWriter, r *http.Request) {
			for i := range 100 {
				w.Header().Set("X-Junk-"+string(rune('a'+i%26))+string(rune('a'+i/26)), string(bytes.Repeat([]byte("j"), 1000)))
			}
			w.WriteHeader(200)
		},
		"no exit": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
		},
		"bad exit code": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			_ = WriteFrame(w, FrameExit, []byte(`{"exit_code":-5}`))
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "s.sock")
			l, err := Listen(sock, "tok")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			fakeSupervisor(t, sock, "tok", h)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := l.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Exec(ctx, ExecRequest{Cmd: []string{"x"}, MaxOutputBytes: 1 << 16}, nil, nil)
			if !errdefs.IsUnavailable(err) || ctx.Err() != nil {
				t.Fatalf("got %v (ctx %v)", err, ctx.Err())
			}
		})
	}
}

func TestBadTokenRejected(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen(sock, "right")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte(HelloPrefix + "wrong\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if c, err := l.Accept(ctx); err == nil {
		c.Close()
		t.Fatal("accepted a wrong token")
	}
}
