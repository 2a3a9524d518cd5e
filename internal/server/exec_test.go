package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/poll"
	"github.com/clawbox/clawbox/internal/server"
	"github.com/clawbox/clawbox/internal/server/servertest"
)

const token = "exec-test-token-0123456789abcdef0123456789abcdef"

func newExecServer(t *testing.T, cfg server.Config) (*servertest.Sandboxes, *httptest.Server) {
	t.Helper()
	cfg.Token = token
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fake := servertest.New()
	s.RegisterContainers(fake)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return fake, ts
}

func request(t *testing.T, ctx context.Context, ts *httptest.Server, method, path, contentType string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func postExec(t *testing.T, ts *httptest.Server, query string, req api.ExecRequest) *http.Response {
	t.Helper()
	b, _ := json.Marshal(req)
	return request(t, context.Background(), ts, http.MethodPost, "/containers/"+servertest.Running+"/exec"+query, "application/json", bytes.NewReader(b))
}

func readFrames(t *testing.T, r io.Reader) []api.ExecFrame {
	t.Helper()
	var out []api.ExecFrame
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var f api.ExecFrame
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("frame %q: %v", sc.Text(), err)
		}
		out = append(out, f)
	}
	return out
}

func apiError(t *testing.T, resp *http.Response) api.Error {
	t.Helper()
	defer resp.Body.Close()
	var e api.Error
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Code == "" {
		t.Fatalf("status %d: not an API error: %v", resp.StatusCode, err)
	}
	return e
}

// output joins the decoded output of frames per stream and returns the last frame.
func output(t *testing.T, frames []api.ExecFrame) (stdout, stderr string, last api.ExecFrame) {
	t.Helper()
	var o, e strings.Builder
	for i, f := range frames {
		if f.Stream == "" {
			if i != len(frames)-1 {
				t.Fatalf("frame %d without stream before the end: %+v", i, f)
			}
			return o.String(), e.String(), f
		}
		data := []byte(f.Data)
		if f.DataBase64 != "" {
			if f.Data != "" {
				t.Errorf("frame with both data and data_base64: %+v", f)
			}
			var err error
			if data, err = base64.StdEncoding.DecodeString(f.DataBase64); err != nil {
				t.Fatal(err)
			}
		}
		switch f.Stream {
		case api.StreamStdout:
			o.Write(data)
		case api.StreamStderr:
			e.Write(data)
		default:
			t.Errorf("unknown stream %q", f.Stream)
		}
	}
	t.Fatalf("no final frame in %+v", frames)
	return
}

func TestExecStream(t *testing.T) {
	_, ts := newExecServer(t, server.Config{})
	for _, tc := range []struct {
		name           string
		cmd            []string
		stdout, stderr string
		exit           int
		base64         bool // some frame must be base64
	}{
		{"stdout", []string{"echo", "hello", "world"}, "hello world\n", "", 0, false},
		{"stderr", []string{"stderr", "oops"}, "", "oops", 0, false},
		{"exit code", []string{"exit", "7"}, "", "", 7, false},
		{"binary", []string{"hex", "00fffe41"}, "\x00\xff\xfeA", "", 0, true},
		// "é" split across two writes still travels as text.
		{"utf8 split", []string{"hex", "68c3", "a96c6c6f"}, "héllo", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := postExec(t, ts, "", api.ExecRequest{Cmd: tc.cmd})
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			frames := readFrames(t, resp.Body)
			stdout, stderr, last := output(t, frames)
			if stdout != tc.stdout || stderr != tc.stderr {
				t.Errorf("stdout %q stderr %q, want %q %q", stdout, stderr, tc.stdout, tc.stderr)
			}
			if last.ExecExit == nil || last.ExitCode != tc.exit || last.EndedBy != api.ExecEndedExit || last.Error != nil {
				t.Errorf("last frame %+v", last)
			}
			sawBase64 := false
			for _, f := range frames {
				sawBase64 = sawBase64 || f.DataBase64 != ""
			}
			if sawBase64 != tc.base64 {
				t.Errorf("base64 used: %v, want %v (%+v)", sawBase64, tc.base64, frames)
			}
		})
	}
}

func TestExecStreamFalse(t *testing.T) {
	_, ts := newExecServer(t, server.Config{})
	for _, tc := range []struct {
		name string
		req  api.ExecRequest
		want api.ExecResult
	}{
		{"text", api.ExecRequest{Cmd: []string{"echo", "hi"}}, api.ExecResult{Stdout: "hi\n"}},
		{"stdin", api.ExecRequest{Cmd: []string{"cat"}, Stdin: "from stdin"}, api.ExecResult{Stdout: "from stdin"}},
		{"binary", api.ExecRequest{Cmd: []string{"hex", "ff00"}}, api.ExecResult{StdoutBase64: "/wA="}},
		{"exit", api.ExecRequest{Cmd: []string{"exit", "3"}}, api.ExecResult{ExecExit: api.ExecExit{ExitCode: 3}}},
		{"env and workdir", api.ExecRequest{Cmd: []string{"env"}, Env: map[string]string{"B": "2", "A": "1"}}, api.ExecResult{Stdout: "A=1\nB=2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := postExec(t, ts, "?stream=false", tc.req)
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var got api.ExecResult
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			got.DurationMS = 0
			tc.want.EndedBy = api.ExecEndedExit
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestExecErrorsBeforeStream(t *testing.T) {
	_, ts := newExecServer(t, server.Config{})
	for _, tc := range []struct {
		name, id, query, contentType, body string
		status                             int
		code, field                        string
	}{
		{"unknown sandbox", "nope", "", "application/json", `{"cmd":["echo"]}`, 404, api.CodeNotFound, ""},
		{"not running", servertest.Stopped, "", "application/json", `{"cmd":["echo"]}`, 409, api.CodeConflict, ""},
		{"no cmd", servertest.Running, "", "application/json", `{}`, 400, api.CodeInvalidRequest, "cmd"},
		{"bad program", servertest.Running, "", "application/json", `{"cmd":["nope"]}`, 400, api.CodeInvalidRequest, "cmd"},
		{"unknown field", servertest.Running, "", "application/json", `{"cmd":["echo"],"shell":true}`, 400, api.CodeInvalidRequest, "shell"},
		{"bad stream", servertest.Running, "?stream=yes", "application/json", `{"cmd":["echo"]}`, 400, api.CodeInvalidRequest, "stream"},
		{"not json", servertest.Running, "", "text/plain", `{"cmd":["echo"]}`, 415, api.CodeUnsupportedMedia, ""},
		{"stream=false not running", servertest.Stopped, "?stream=false", "application/json", `{"cmd":["echo"]}`, 409, api.CodeConflict, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := request(t, context.Background(), ts, http.MethodPost, "/containers/"+tc.id+"/exec"+tc.query, tc.contentType, strings.NewReader(tc.body))
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			e := apiError(t, resp)
			if e.Code != tc.code || (tc.field != "" && fieldOf(e) != tc.field) {
				t.Errorf("error %+v, want code %s field %q", e, tc.code, tc.field)
			}
		})
	}
}

func TestExecErrorAfterStreamStarted(t *testing.T) {
	_, ts := newExecServer(t, server.Config{})
	resp := postExec(t, ts, "", api.ExecRequest{Cmd: []string{"lose"}})
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	frames := readFrames(t, resp.Body)
	if len(frames) != 2 || frames[0].Data != "partial\n" {
		t.Fatalf("frames %+v", frames)
	}
	last := frames[1]
	if last.Error == nil || last.Error.Code != api.CodeUnavailable || last.ExecExit != nil {
		t.Errorf("last frame %+v, want an unavailable error", last)
	}
	// stream=false: the same failure is an ordinary error.
	r2 := postExec(t, ts, "?stream=false", api.ExecRequest{Cmd: []string{"lose"}})
	if r2.StatusCode != 503 || apiError(t, r2).Code != api.CodeUnavailable {
		t.Errorf("stream=false: status %d", r2.StatusCode)
	}
}

func TestExecClientGoneClosesExec(t *testing.T) {
	fake, ts := newExecServer(t, server.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := request(t, ctx, ts, http.MethodPost, "/containers/"+servertest.Running+"/exec", "application/json", strings.NewReader(`{"cmd":["sleep"]}`))
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "ready") {
		t.Fatalf("first frame %q: %v", line, err)
	}
	cancel()
	execs := fake.Execs()
	if len(execs) != 1 {
		t.Fatalf("%d execs", len(execs))
	}
	select {
	case <-execs[0].Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("the exec was not closed after the client went away")
	}
}

func TestExecTimeoutFrame(t *testing.T) {
	_, ts := newExecServer(t, server.Config{})
	resp := postExec(t, ts, "", api.ExecRequest{Cmd: []string{"sleep"}, TimeoutMS: 1})
	defer resp.Body.Close()
	_, _, last := output(t, readFrames(t, resp.Body))
	if last.ExecExit == nil || !last.TimedOut || last.EndedBy != api.ExecEndedTimeout {
		t.Errorf("last frame %+v", last)
	}
}

func TestExecSessionLimit(t *testing.T) {
	_, ts := newExecServer(t, server.Config{MaxExecs: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := request(t, ctx, ts, http.MethodPost, "/containers/"+servertest.Running+"/exec", "application/json", strings.NewReader(`{"cmd":["sleep"]}`))
	defer resp.Body.Close()
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	r2 := postExec(t, ts, "?stream=false", api.ExecRequest{Cmd: []string{"echo"}})
	if r2.StatusCode != 503 || r2.Header.Get("Retry-After") == "" || apiError(t, r2).Code != api.CodeBusy {
		t.Errorf("second exec: status %d", r2.StatusCode)
	}
	cancel()
	resp.Body.Close()
	// The slot comes back once the first exec is over.
	poll.Until(t, 10*time.Second, "the exec slot to come back", func() (bool, error) {
		r := postExec(t, ts, "?stream=false", api.ExecRequest{Cmd: []string{"echo"}})
		r.Body.Close()
		return r.StatusCode == 200, nil
	})
}

func dialWS(t *testing.T, ts *httptest.Server, id string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{"Authorization": {"Bearer " + token}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/containers/"+id+"/exec/ws", &websocket.DialOptions{HTTPHeader: hdr})
}

// wsRead reads one message with a deadline.
func wsRead(t *testing.T, c *websocket.Conn) (websocket.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, b
}

func wsWrite(t *testing.T, c *websocket.Conn, typ websocket.MessageType, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func finalFrame(t *testing.T, c *websocket.Conn) api.ExecFrame {
	t.Helper()
	typ, b := wsRead(t, c)
	if typ != websocket.MessageText {
		t.Fatalf("want the final text message, got binary %q", b)
	}
	var f api.ExecFrame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after the final frame: %v, want a normal close", err)
	}
	return f
}

func TestExecWebSocket(t *testing.T) {
	fake, ts := newExecServer(t, server.Config{})
	c, _, err := dialWS(t, ts, servertest.Running, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	wsWrite(t, c, websocket.MessageText, []byte(`{"cmd":["cat"],"tty":true,"rows":24,"cols":80}`))
	wsWrite(t, c, websocket.MessageBinary, []byte("hi"))
	if typ, b := wsRead(t, c); typ != websocket.MessageBinary || string(b) != "\x01hi" {
		t.Fatalf("got %v %q, want stdout hi", typ, b)
	}
	wsWrite(t, c, websocket.MessageText, []byte(`{"type":"resize","rows":50,"cols":132}`))
	if _, b := wsRead(t, c); string(b) != "\x01resize 50x132\n" {
		t.Fatalf("got %q after resize", b)
	}
	wsWrite(t, c, websocket.MessageText, []byte(`{"type":"close_stdin"}`))
	f := finalFrame(t, c)
	if f.ExecExit == nil || f.ExitCode != 0 || f.Error != nil {
		t.Errorf("final frame %+v", f)
	}
	if e := fake.Execs(); len(e) != 1 || !e[0].Opts.KeepStdin || !e[0].Req.TTY || e[0].Req.Rows != 24 {
		t.Errorf("exec %+v", e[0])
	}
}

func TestExecWebSocketStderrAndCtrlC(t *testing.T) {
	_, ts := newExecServer(t, server.Config{})
	c, _, err := dialWS(t, ts, servertest.Running, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	wsWrite(t, c, websocket.MessageText, []byte(`{"cmd":["cat"],"tty":true}`))
	wsWrite(t, c, websocket.MessageBinary, []byte("x\x03"))
	if _, b := wsRead(t, c); string(b) != "\x01x" {
		t.Fatalf("got %q", b)
	}
	if f := finalFrame(t, c); f.ExecExit == nil || f.ExitCode != 130 || f.Signal != 2 {
		t.Errorf("final frame %+v", f)
	}

	c2, _, err := dialWS(t, ts, servertest.Running, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	wsWrite(t, c2, websocket.MessageText, []byte(`{"cmd":["stderr","bad"]}`))
	if _, b := wsRead(t, c2); string(b) != "\x02bad" {
		t.Fatalf("got %q, want stderr", b)
	}
	finalFrame(t, c2)
}

func TestExecWebSocketRefusals(t *testing.T) {
	_, ts := newExecServer(t, server.Config{})
	for _, tc := range []struct {
		name   string
		id     string
		hdr    http.Header
		status int
	}{
		{"no token", servertest.Running, http.Header{}, 401},
		{"unknown", "nope", nil, 404},
		{"not running", servertest.Stopped, nil, 409},
		{"foreign origin", servertest.Running, http.Header{"Authorization": {"Bearer " + token}, "Origin": {"http://evil.example"}}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := dialWS(t, ts, tc.id, tc.hdr)
			if err == nil {
				c.CloseNow()
				t.Fatal("upgrade accepted")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("resp %+v, want %d", resp, tc.status)
			}
		})
	}
	// A plain GET is told to upgrade, in the API error shape.
	resp := request(t, context.Background(), ts, http.MethodGet, "/containers/"+servertest.Running+"/exec/ws", "", nil)
	if resp.StatusCode != 400 || !strings.Contains(apiError(t, resp).Message, "WebSocket") {
		t.Errorf("plain GET: %d", resp.StatusCode)
	}
	// A bad first message ends in an error frame.
	for _, tc := range []struct {
		name  string
		typ   websocket.MessageType
		msg   string
		field string
	}{
		{"binary first", websocket.MessageBinary, `{"cmd":["echo"]}`, ""},
		{"not json", websocket.MessageText, `{`, ""},
		{"no cmd", websocket.MessageText, `{}`, "cmd"},
		{"bad program", websocket.MessageText, `{"cmd":["rm"]}`, "cmd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := dialWS(t, ts, servertest.Running, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			wsWrite(t, c, tc.typ, []byte(tc.msg))
			f := finalFrame(t, c)
			if f.Error == nil || (tc.field != "" && fieldOf(f.Error) != tc.field) {
				t.Errorf("final frame %+v", f)
			}
		})
	}
}

func TestExecWebSocketBadControlAndClientGone(t *testing.T) {
	fake, ts := newExecServer(t, server.Config{})
	c, _, err := dialWS(t, ts, servertest.Running, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	wsWrite(t, c, websocket.MessageText, []byte(`{"cmd":["cat"]}`))
	wsWrite(t, c, websocket.MessageText, []byte(`{"type":"reboot"}`))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Errorf("closed with %v, want policy violation", err)
			}
			break
		}
	}
	// A client that just goes away ends its command.
	c2, _, err := dialWS(t, ts, servertest.Running, nil)
	if err != nil {
		t.Fatal(err)
	}
	wsWrite(t, c2, websocket.MessageText, []byte(`{"cmd":["sleep"]}`))
	wsRead(t, c2) // ready
	c2.CloseNow()
	execs := fake.Execs()
	for _, e := range execs {
		select {
		case <-e.Closed():
		case <-time.After(10 * time.Second):
			t.Fatalf("exec %v not closed", e.Req.Cmd)
		}
	}
}

func TestFiles(t *testing.T) {
	fake, ts := newExecServer(t, server.Config{MaxBodyBytes: 1024})
	fake.MaxFileBytes = 8192
	base := "/containers/" + servertest.Running + "/files"
	// A file larger than the JSON body limit, with a content type that is not JSON.
	big := bytes.Repeat([]byte{0, 1, 2, 0xff}, 1024)
	resp := request(t, context.Background(), ts, http.MethodPut, base+"?path=/work/dir/big.bin&mode=0600", "application/octet-stream", bytes.NewReader(big))
	var fw api.FileWritten
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&fw) != nil || fw != (api.FileWritten{Path: "/work/dir/big.bin", Size: 4096, Mode: 0o600}) {
		t.Fatalf("put: status %d, %+v", resp.StatusCode, fw)
	}
	resp.Body.Close()
	if data, mode, ok := fake.File("/work/dir/big.bin"); !ok || !bytes.Equal(data, big) || mode != 0o600 {
		t.Fatalf("stored %d bytes mode %o", len(data), mode)
	}
	// No content type at all is fine too.
	resp = request(t, context.Background(), ts, http.MethodPut, base+"?path=/work/a.txt", "", strings.NewReader("A"))
	resp.Body.Close()
	if _, mode, ok := fake.File("/work/a.txt"); resp.StatusCode != 200 || !ok || mode != 0o644 {
		t.Fatalf("put without content type: %d, mode %o", resp.StatusCode, mode)
	}
	// Over the service's cap.
	resp = request(t, context.Background(), ts, http.MethodPut, base+"?path=/work/huge", "application/octet-stream", bytes.NewReader(make([]byte, 9000)))
	if resp.StatusCode != 413 || apiError(t, resp).Code != api.CodeTooLarge {
		t.Errorf("over max_file_bytes: %d", resp.StatusCode)
	}

	resp = request(t, context.Background(), ts, http.MethodGet, base+"?path=/work/dir/big.bin", "", nil)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, big) || resp.Header.Get("Content-Type") != "application/octet-stream" ||
		resp.ContentLength != 4096 || resp.Header.Get("X-Clawbox-File-Mode") != "0600" {
		t.Fatalf("get: %d, %d bytes, headers %v", resp.StatusCode, len(got), resp.Header)
	}

	// A file whose size says 0 (as /proc's do) streams its text to the end (net/http
	// sets the length of so short an answer itself).
	resp = request(t, context.Background(), ts, http.MethodGet, base+"?path=/pseudo", "", nil)
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != servertest.PseudoFileText {
		t.Fatalf("get of a pseudo file: %d, %q, length %d", resp.StatusCode, got, resp.ContentLength)
	}

	// HEAD: the headers of GET, no body.
	resp = request(t, context.Background(), ts, http.MethodHead, base+"?path=/work/dir/big.bin", "", nil)
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(got) != 0 || resp.ContentLength != 4096 {
		t.Fatalf("head: %d, %d bytes, length %d", resp.StatusCode, len(got), resp.ContentLength)
	}

	resp = request(t, context.Background(), ts, http.MethodGet, base+"?path=/work&list=true", "", nil)
	var fl api.FileList
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&fl) != nil || len(fl.Entries) != 2 ||
		fl.Entries[0].Name != "a.txt" || !fl.Entries[1].IsDir {
		t.Fatalf("list: %d %+v", resp.StatusCode, fl)
	}
	resp.Body.Close()

	resp = request(t, context.Background(), ts, http.MethodDelete, base+"?path=/work", "", nil)
	if resp.StatusCode != 400 || fieldOf(apiError(t, resp)) != "path" {
		t.Errorf("delete non-empty dir: %d", resp.StatusCode)
	}
	resp = request(t, context.Background(), ts, http.MethodDelete, base+"?path=/work&recursive=true", "", nil)
	resp.Body.Close()
	if _, _, ok := fake.File("/work/a.txt"); resp.StatusCode != 204 || ok {
		t.Errorf("delete recursive: %d, file still there: %v", resp.StatusCode, ok)
	}

	// A read cut short after the headers breaks the connection instead of ending the body.
	req, _ := http.NewRequest(http.MethodGet, ts.URL+base+"?path=/cut", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := ts.Client().Do(req); err == nil {
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Error("a cut stream read as complete")
		}
		resp.Body.Close()
	}
}

func TestFilesBadInput(t *testing.T) {
	_, ts := newExecServer(t, server.Config{})
	base := "/containers/" + servertest.Running + "/files"
	for _, tc := range []struct {
		name, method, query string
		status              int
		code, field         string
	}{
		{"put no path", http.MethodPut, "", 400, api.CodeInvalidRequest, "path"},
		{"put relative", http.MethodPut, "?path=rel", 400, api.CodeInvalidRequest, "path"},
		{"put two paths", http.MethodPut, "?path=/a&path=/b", 400, api.CodeInvalidRequest, "path"},
		{"mode not octal", http.MethodPut, "?path=/a&mode=0o644", 400, api.CodeInvalidRequest, "mode"},
		{"mode digit 8", http.MethodPut, "?path=/a&mode=0688", 400, api.CodeInvalidRequest, "mode"},
		{"mode setuid", http.MethodPut, "?path=/a&mode=4755", 400, api.CodeInvalidRequest, "mode"},
		{"mode too long", http.MethodPut, "?path=/a&mode=000644", 400, api.CodeInvalidRequest, "mode"},
		{"mode negative", http.MethodPut, "?path=/a&mode=-1", 400, api.CodeInvalidRequest, "mode"},
		{"permission", http.MethodPut, "?path=/proc/x", 403, api.CodePermissionDenied, ""},
		{"put stopped", http.MethodPut, "?path=/a", 409, api.CodeConflict, ""},
		{"get no path", http.MethodGet, "", 400, api.CodeInvalidRequest, "path"},
		{"get missing", http.MethodGet, "?path=/missing", 404, api.CodeNotFound, ""},
		{"get dir", http.MethodGet, "?path=/", 400, api.CodeInvalidRequest, "path"},
		{"bad list", http.MethodGet, "?path=/&list=maybe", 400, api.CodeInvalidRequest, "list"},
		{"list missing", http.MethodGet, "?path=/missing&list=true", 404, api.CodeNotFound, ""},
		{"delete missing", http.MethodDelete, "?path=/missing", 404, api.CodeNotFound, ""},
		{"bad recursive", http.MethodDelete, "?path=/a&recursive=2", 400, api.CodeInvalidRequest, "recursive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := base
			if tc.name == "put stopped" {
				b = "/containers/" + servertest.Stopped + "/files"
			}
			resp := request(t, context.Background(), ts, tc.method, b+tc.query, "application/octet-stream", strings.NewReader("x"))
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			e := apiError(t, resp)
			if e.Code != tc.code || (tc.field != "" && fieldOf(e) != tc.field) {
				t.Errorf("error %+v, want %s field %q", e, tc.code, tc.field)
			}
		})
	}
	// The mode goes through as given.
	for in, want := range map[string]uint32{"755": 0o755, "0": 0o644, "0777": 0o777, "0400": 0o400} {
		resp := request(t, context.Background(), ts, http.MethodPut, base+"?path=/m&mode="+in, "", strings.NewReader("x"))
		var fw api.FileWritten
		json.NewDecoder(resp.Body).Decode(&fw)
		resp.Body.Close()
		if resp.StatusCode != 200 || fw.Mode != want {
			t.Errorf("mode %s: status %d, mode %o, want %o", in, resp.StatusCode, fw.Mode, want)
		}
	}
}

func TestKillRemovesWorkspace(t *testing.T) {
	fake, ts := newExecServer(t, server.Config{})
	resp := request(t, context.Background(), ts, http.MethodDelete, "/containers/"+servertest.Stopped+"?workspace=maybe", "", nil)
	if resp.StatusCode != 400 || fieldOf(apiError(t, resp)) != "workspace" {
		t.Errorf("bad workspace: %d", resp.StatusCode)
	}
	resp = request(t, context.Background(), ts, http.MethodDelete, "/containers/"+servertest.Stopped, "", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(fake.RemovedWorkspaces()) != 0 {
		t.Fatalf("plain kill: %d, removed %v", resp.StatusCode, fake.RemovedWorkspaces())
	}
	resp = request(t, context.Background(), ts, http.MethodDelete, "/containers/"+servertest.Stopped+"?workspace=true", "", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(fake.RemovedWorkspaces()) != 1 {
		t.Fatalf("kill with workspace: %d, removed %v", resp.StatusCode, fake.RemovedWorkspaces())
	}
	// Again: nothing left to remove is not an error. A running sandbox is killed first.
	for _, id := range []string{servertest.Stopped, servertest.Running} {
		resp = request(t, context.Background(), ts, http.MethodDelete, "/containers/"+id+"?workspace=true", "", nil)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", id, resp.StatusCode)
		}
	}
}

// fieldOf returns details.field of an API error ("" if none).
func fieldOf(e any) string {
	var d any
	switch v := e.(type) {
	case api.Error:
		d = v.Details
	case *api.Error:
		d = v.Details
	}
	switch m := d.(type) {
	case map[string]string:
		return m["field"]
	case map[string]any:
		s, _ := m["field"].(string)
		return s
	}
	return ""
}

// TestExecWebSocketStdinNotReadKeepsSessionAlive: a command that does not read its
// stdin must not stop the server from reading the client (its pongs, resizes and
// close): stdin waits in its own queue. The fake's stdin buffer holds 16 messages;
// the 17th blocks the session's Write, and the resize sent after it must still
// arrive.
func TestExecWebSocketStdinNotReadKeepsSessionAlive(t *testing.T) {
	_, ts := newExecServer(t, server.Config{})
	c, _, err := dialWS(t, ts, servertest.Running, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	wsWrite(t, c, websocket.MessageText, []byte(`{"cmd":["noread"],"tty":true,"rows":24,"cols":80}`))
	for range 17 {
		wsWrite(t, c, websocket.MessageBinary, []byte("x"))
	}
	wsWrite(t, c, websocket.MessageText, []byte(`{"type":"resize","rows":10,"cols":20}`))
	if _, b := wsRead(t, c); string(b) != "\x01resize 10x20\n" {
		t.Fatalf("got %q, want the resize answered while stdin waits", b)
	}
}
