package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// TestPullImageStream checks how PullImage ends for each way a pull stream can end;
// the server is a stand-in that writes the stream verbatim, to produce a truncated
// stream on demand.
func TestPullImageStream(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		frames  int
		code    string // *api.Error code expected
		unreach bool   // errors.Is(err, ErrUnreachable) expected
	}{
		{"done", 200, `{"status":"started"}` + "\n" + `{"status":"Downloading","id":"l","current":1,"total":2}` + "\n" + `{"status":"done","done":true,"image_id":"sha256:x"}` + "\n", 3, "", false},
		{"error frame", 200, `{"status":"started"}` + "\n" + `{"status":"error","error":"no such tag","code":"image_not_found"}` + "\n", 2, api.CodeImageNotFound, false},
		{"truncated", 200, `{"status":"started"}` + "\n" + `{"status":"Downloading","id":"l"}` + "\n", 2, "", true},
		{"garbage", 200, "not json\n", 0, "", false},
		{"refused", 403, `{"error":"image \"x\" is not allowed","code":"image_not_allowed"}`, 0, api.CodeImageNotAllowed, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/images/pull" || r.Header.Get("Authorization") != "Bearer tok" {
					t.Errorf("request %s %s", r.Method, r.URL.Path)
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer ts.Close()
			c, err := New(ts.URL, Options{Token: "tok"})
			if err != nil {
				t.Fatal(err)
			}
			var frames int
			err = c.PullImage(context.Background(), "x", func(api.PullProgress) { frames++ })
			if frames != tc.frames {
				t.Errorf("%d frames, want %d", frames, tc.frames)
			}
			switch {
			case tc.code != "":
				if e, ok := api.AsError(err); !ok || e.Code != tc.code {
					t.Errorf("err %v, want code %s", err, tc.code)
				}
			case tc.unreach:
				if !errors.Is(err, ErrUnreachable) {
					t.Errorf("err %v, want ErrUnreachable", err)
				}
			case tc.name == "done":
				if err != nil {
					t.Errorf("err %v", err)
				}
			default:
				if err == nil {
					t.Error("no error")
				}
			}
		})
	}
}
