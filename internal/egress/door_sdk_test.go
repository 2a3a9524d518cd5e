package egress

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/door"
	"github.com/containerd/errdefs"
)

// TestDoorSDK drives the real door handler with the public door package: the
// api.ProxyRequest it sends is what the door decodes, the api.ProxyResponse it
// decodes is what the door encodes, and refusals come back as *api.Error with the
// gateway's code.
func TestDoorSDK(t *testing.T) {
	env := newDoorEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Method", r.Method)
			w.Header().Set("X-A", r.Header.Get("X-A"))
			w.Write(b)
		case "/auth":
			io.WriteString(w, r.Header.Get("Authorization"))
		case "/binary":
			w.Write([]byte{0xff, 0x00, 0xfe})
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
		}
	})
	ctx := context.Background()
	d, err := door.New(door.Options{Socket: env.door.Path(), Token: doorToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })

	body := "hello"
	r, err := d.Do(ctx, api.ProxyRequest{URL: env.base + "/echo", Method: "POST", Headers: map[string]string{"X-A": "1"}, Body: &body})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 200 || r.Body != "hello" || r.Headers["x-method"] != "POST" || r.Headers["x-a"] != "1" {
		t.Fatalf("echo: %+v", r)
	}
	bin := "AAEC/w==" // 0 1 2 0xff
	r, err = d.Do(ctx, api.ProxyRequest{URL: env.base + "/echo", Method: "PUT", BodyBase64: &bin})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := door.Body(r); err != nil || !bytes.Equal(b, []byte{0, 1, 2, 0xff}) {
		t.Fatalf("binary echo: %v %q (%+v)", err, b, r)
	}
	r, err = d.Get(ctx, env.base+"/auth")
	if err != nil || r.Body != "Bearer [REDACTED]" {
		t.Fatalf("auth: %v %+v", err, r)
	}
	r, err = d.Get(ctx, env.base+"/binary")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := door.Body(r); err != nil || !bytes.Equal(b, []byte{0xff, 0x00, 0xfe}) || r.Body != "" {
		t.Fatalf("binary: %v %q", err, b)
	}
	// An upstream's error status is an answer, not an error.
	if r, err := d.Get(ctx, env.base+"/teapot"); err != nil || r.Status != http.StatusTeapot {
		t.Fatalf("teapot: %v %+v", err, r)
	}

	// Refusals: the gateway's code, as *api.Error.
	_, err = d.Get(ctx, "http://elsewhere.test:1/")
	if e := wantCode(t, err, api.CodeBlockedByPolicy); !errors.Is(e, errdefs.ErrPermissionDenied) {
		t.Fatalf("blocked_by_policy is not permission denied: %v", e)
	}
	both := "x"
	_, err = d.Do(ctx, api.ProxyRequest{URL: env.base + "/echo", Body: &both, BodyBase64: &both})
	wantCode(t, err, api.CodeInvalidRequest)

	bad, err := door.New(door.Options{Socket: env.door.Path(), Token: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bad.Close() })
	_, err = bad.Get(ctx, env.base+"/echo")
	wantCode(t, err, api.CodeUnauthorized)
}
