package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/api"
)

func TestFinalStatus(t *testing.T) {
	for s, want := range map[string]bool{
		api.ContainerStatusCreating: false, api.ContainerStatusRunning: false, "": false,
		api.ContainerStatusCompleted: true, api.ContainerStatusFailed: true, api.ContainerStatusTimedOut: true,
		api.ContainerStatusKilled: true, api.ContainerStatusLost: true,
	} {
		if FinalStatus(s) != want {
			t.Errorf("FinalStatus(%q) = %v", s, !want)
		}
	}
}

func TestWait(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/containers/done-later":
			n := calls.Add(1)
			st := api.ContainerStatusRunning
			if n == 1 {
				st = api.ContainerStatusCreating
			}
			if n >= 4 {
				st = api.ContainerStatusFailed
			}
			json.NewEncoder(w).Encode(api.ContainerInfo{ContainerID: "done-later", Status: st})
		case "/containers/forever":
			json.NewEncoder(w).Encode(api.ContainerInfo{ContainerID: "forever", Status: api.ContainerStatusRunning})
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"no such sandbox","code":"not_found"}`))
		}
	}))
	defer ts.Close()
	c, err := New(ts.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	info, err := c.Wait(ctx, "done-later")
	if err != nil || info.Status != api.ContainerStatusFailed || calls.Load() != 4 {
		t.Fatalf("Wait = %+v, %v after %d polls", info, err, calls.Load())
	}
	if _, err := c.Wait(ctx, "gone"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Wait of a missing sandbox: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := c.Wait(short, "forever"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait past the deadline: %v", err)
	}
}
