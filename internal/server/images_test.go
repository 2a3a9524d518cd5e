package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// fakeImages stands for the engine, to inject the outcomes a real pull cannot
// produce on demand. Resolve applies a tiny policy: names starting with "ok/".
type fakeImages struct {
	frames  []api.PullProgress
	pullErr error
	list    []api.Image
	down    error // every call fails with it (no engine)

	mu     sync.Mutex
	pulled []string
}

func (f *fakeImages) Resolve(image string) (string, error) {
	switch {
	case f.down != nil:
		return "", f.down
	case strings.ContainsAny(image, " A"):
		return "", api.Errorf(api.CodeInvalidRequest, "image %q is not a valid image reference", image)
	case !strings.HasPrefix(image, "ok/"):
		return "", api.Errorf(api.CodeImageNotAllowed, "image %q is not allowed", image)
	}
	return "docker.io/" + image + ":latest", nil
}

func (f *fakeImages) Pull(ctx context.Context, ref string, progress func(api.PullProgress)) (api.PullProgress, error) {
	f.mu.Lock()
	f.pulled = append(f.pulled, ref)
	f.mu.Unlock()
	for _, p := range f.frames {
		progress(p)
	}
	if f.pullErr != nil {
		return api.PullProgress{}, f.pullErr
	}
	return api.PullProgress{Done: true, Image: ref, ImageID: "sha256:abc", Digest: "ok/x@sha256:def"}, nil
}

func (f *fakeImages) List(ctx context.Context) ([]api.Image, error) { return f.list, f.down }

func (f *fakeImages) pulls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.pulled...)
}

func ndjson(t *testing.T, b []byte) []api.PullProgress {
	t.Helper()
	var out []api.PullProgress
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var p api.PullProgress
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("frame %q: %v", sc.Text(), err)
		}
		out = append(out, p)
	}
	return out
}

func TestImagePullRoute(t *testing.T) {
	progress := []api.PullProgress{
		{Status: "Pulling fs layer", ID: "l1"},
		{Status: "Downloading", ID: "l1", Current: 10, Total: 100},
	}
	cases := []struct {
		name    string
		svc     *fakeImages
		body    string
		status  int
		code    string // error code of the response or of the final frame
		field   string // details.field of a 400
		pulled  bool
		message string // in the error
	}{
		{"pulls and streams", &fakeImages{frames: progress}, `{"image":"ok/x"}`, 200, "", "", true, ""},
		{"no image", &fakeImages{}, `{}`, 400, api.CodeInvalidRequest, "image", false, "required"},
		{"unknown field", &fakeImages{}, `{"image":"ok/x","tag":"1"}`, 400, api.CodeInvalidRequest, "tag", false, "unknown field"},
		{"malformed reference", &fakeImages{}, `{"image":"ok/A"}`, 400, api.CodeInvalidRequest, "image", false, "not a valid"},
		{"outside the policy", &fakeImages{}, `{"image":"evil/x"}`, 403, api.CodeImageNotAllowed, "", false, "not allowed"},
		{"domain error in the stream", &fakeImages{frames: progress, pullErr: api.Errorf(api.CodeImageNotFound, "image ok/x was not found")},
			`{"image":"ok/x"}`, 200, api.CodeImageNotFound, "", true, "was not found"},
		{"internal error in the stream", &fakeImages{pullErr: errors.New("engine said: secret detail")},
			`{"image":"ok/x"}`, 200, api.CodeInternal, "", true, "request id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			s, _ := newTestServer(t, Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
			s.RegisterImages(tc.svc)
			ts := start(t, s)
			r := do(t, ts, "POST", "/images/pull", testToken, "application/json", tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if got := len(tc.svc.pulls()) > 0; got != tc.pulled {
				t.Errorf("pulled %v, want %v", tc.svc.pulls(), tc.pulled)
			}
			if r.status != 200 {
				if r.err.Code != tc.code || !strings.Contains(r.err.Message, tc.message) {
					t.Errorf("error %+v, want %s containing %q", r.err, tc.code, tc.message)
				}
				if d, _ := r.err.Details.(map[string]any); tc.field != "" && d["field"] != tc.field {
					t.Errorf("details %v, want field %q", r.err.Details, tc.field)
				}
				return
			}
			if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
				t.Errorf("content type %q", ct)
			}
			frames := ndjson(t, r.body)
			want := 1 + len(tc.svc.frames) + 1
			if len(frames) != want {
				t.Fatalf("%d frames, want %d: %s", len(frames), want, r.body)
			}
			if f := frames[0]; f.Status != api.PullStatusStarted || f.Image != "docker.io/ok/x:latest" {
				t.Errorf("first frame %+v", f)
			}
			for i, p := range tc.svc.frames {
				if frames[1+i] != p {
					t.Errorf("frame %d = %+v, want %+v", 1+i, frames[1+i], p)
				}
			}
			last := frames[len(frames)-1]
			if tc.code == "" {
				if !last.Done || last.Status != api.PullStatusDone || last.ImageID != "sha256:abc" || last.Error != "" {
					t.Errorf("final frame %+v", last)
				}
				return
			}
			if last.Done || last.Status != api.PullStatusError || last.Code != tc.code || !strings.Contains(last.Error, tc.message) {
				t.Errorf("final frame %+v, want %s containing %q", last, tc.code, tc.message)
			}
			if strings.Contains(string(r.body), "secret detail") {
				t.Errorf("internal error text reached the client: %s", r.body)
			}
			if tc.code == api.CodeInternal && !strings.Contains(logs.String(), "secret detail") {
				t.Errorf("internal error was not logged: %s", logs.String())
			}
		})
	}
}

func TestImageRoutesUnavailable(t *testing.T) {
	s, _ := newTestServer(t, Config{})
	s.RegisterImages(&fakeImages{down: api.Errorf(api.CodeUnavailable, "images are not available: Docker is not reachable: no socket")})
	ts := start(t, s)
	for _, rq := range []struct{ method, path, body string }{
		{"POST", "/images/pull", `{"image":"alpine"}`},
		{"GET", "/images", ""},
	} {
		r := do(t, ts, rq.method, rq.path, testToken, "application/json", rq.body)
		if r.status != 503 || r.err.Code != api.CodeUnavailable || !strings.Contains(r.err.Message, "no socket") {
			t.Errorf("%s %s: %d %+v", rq.method, rq.path, r.status, r.err)
		}
	}
	if r := do(t, ts, "GET", "/images", "", "", ""); r.status != 401 {
		t.Errorf("GET /images without a token: %d", r.status)
	}
}

func TestImageListRoute(t *testing.T) {
	s, _ := newTestServer(t, Config{})
	s.RegisterImages(&fakeImages{})
	ts := start(t, s)
	r := do(t, ts, "GET", "/images", testToken, "", "")
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"images":[]}` {
		t.Errorf("empty list: %d %s", r.status, r.body)
	}
	// Both routes are in the OpenAPI document, with their wire types.
	r = do(t, ts, "GET", "/openapi.json", "", "", "")
	var doc struct {
		Paths      map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Paths["/images/pull"]["post"] == nil || doc.Paths["/images"]["get"] == nil {
		t.Errorf("image routes missing from the OpenAPI document: %v", doc.Paths)
	}
	for _, name := range []string{"ImagePullRequest", "PullProgress", "ImageList"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("schema %s missing", name)
		}
	}
}

// lockedBuffer lets the server's request goroutines and the test share a buffer.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
