package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/api"
)

func TestErrorsMapBackToClasses(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		code   string
		class  error
	}{
		{"not found", 404, `{"error":"sandbox \"x\" not found","code":"not_found"}`, api.CodeNotFound, errdefs.ErrNotFound},
		{"tool not found", 404, `{"error":"tool","code":"tool_not_found"}`, api.CodeToolNotFound, errdefs.ErrNotFound},
		{"image not allowed", 403, `{"error":"no","code":"image_not_allowed"}`, api.CodeImageNotAllowed, errdefs.ErrPermissionDenied},
		{"busy", 503, `{"error":"busy","code":"busy"}`, api.CodeBusy, errdefs.ErrUnavailable},
		{"auth", 401, `{"error":"token","code":"auth_required"}`, api.CodeAuthRequired, errdefs.ErrUnauthenticated},
		{"not json", 502, `<html>bad gateway</html>`, api.CodeInternal, errdefs.ErrInternal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer tok" {
					t.Errorf("Authorization = %q", r.Header.Get("Authorization"))
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer ts.Close()
			c, err := New(ts.URL, Options{Token: "tok"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Container(context.Background(), "x")
			e, ok := api.AsError(err)
			if !ok || e.Code != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
			if !errors.Is(err, tc.class) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.class)
			}
			if errors.Is(err, ErrUnreachable) {
				t.Error("an answer from the server is not unreachable")
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c, _ := New("http://"+addr, Options{})
	_, err = c.Health(context.Background())
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Health(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled call: %v", err)
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:9800", "ftp://x", "http://"} {
		if _, err := New(u, Options{}); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}

// A server that takes the request and never answers is busy, not unreachable: the
// CLI must not tell its user to start a server that is running.
func TestNoAnswerIsNotUnreachable(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c, err := New(srv.URL, Options{Token: "t", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Health(context.Background())
	var na *NoAnswerError
	if !errors.As(err, &na) || errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a server that does not answer: %v (%T)", err, err)
	}

	// Nothing listening at all is unreachable.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err = New("http://"+addr, Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Health(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("nothing listening: %v", err)
	}
}
