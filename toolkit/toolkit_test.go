package toolkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("stdout limit exceeded") }

func TestServe(t *testing.T) {
	echo := func(ctx context.Context, p json.RawMessage) (any, error) {
		return map[string]json.RawMessage{"got": p}, nil
	}
	type in struct {
		N int `json:"n"`
	}
	double := typed(func(ctx context.Context, p in) (int, error) { return 2 * p.N, nil })
	tests := []struct {
		name       string
		stdin      string
		h          Handler
		out        io.Writer
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "result", stdin: `{"a":1}`, h: echo, wantStdout: `{"got":{"a":1}}`},
		{name: "empty stdin is null", stdin: ``, h: echo, wantStdout: `{"got":null}`},
		{name: "typed", stdin: `{"n":21}`, h: double, wantStdout: `42`},
		{name: "typed null params", stdin: `null`, h: double, wantStdout: `0`},
		{name: "typed wrong shape", stdin: `{"n":"x"}`, h: double, wantCode: 1, wantStderr: "invalid params"},
		{name: "invalid json", stdin: `{`, h: echo, wantCode: 1, wantStderr: "not valid JSON"},
		{name: "handler error", stdin: `1`, h: func(context.Context, json.RawMessage) (any, error) { return nil, errors.New("no luck") }, wantCode: 1, wantStderr: "no luck"},
		{name: "host error keeps its code", stdin: `1`, h: func(context.Context, json.RawMessage) (any, error) {
			return nil, fmt.Errorf("fetch x: %w", &HostError{Code: "blocked_by_policy", Message: "GET x is not allowed"})
		}, wantCode: 1, wantStdout: `{"error":{"code":"blocked_by_policy","message":"GET x is not allowed"}}`, wantStderr: "fetch x: host call: blocked_by_policy: GET x is not allowed"},
		{name: "tool error with a code", stdin: `1`, h: func(context.Context, json.RawMessage) (any, error) {
			return nil, Errorf("invalid_input", "n must be %d", 2)
		},
			wantCode: 1, wantStdout: `{"error":{"code":"invalid_input","message":"n must be 2"}}`, wantStderr: "invalid_input: n must be 2"},
		{name: "host error without a code is plain", stdin: `1`, h: func(context.Context, json.RawMessage) (any, error) { return nil, &HostError{Message: "odd"} },
			wantCode: 1, wantStderr: "host call: odd"},
		{name: "unencodable result", stdin: `1`, h: func(context.Context, json.RawMessage) (any, error) { return func() {}, nil }, wantCode: 1, wantStderr: "encode result"},
		{name: "stdout refused", stdin: `1`, h: echo, out: failWriter{}, wantCode: 1, wantStderr: "write result"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			out := tc.out
			if out == nil {
				out = &stdout
			}
			code := serve(context.Background(), strings.NewReader(tc.stdin), out, &stderr, tc.h)
			if code != tc.wantCode {
				t.Fatalf("code %d, want %d (stderr %q)", code, tc.wantCode, stderr.String())
			}
			if stdout.String() != tc.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.wantStdout)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}

func TestDecodeReply(t *testing.T) {
	tests := []struct {
		name, reply, ok, code, msg string
		malformed                  bool
	}{
		{name: "ok", reply: `{"ok":{"status":200}}`, ok: `{"status":200}`},
		{name: "ok null", reply: `{"ok":null}`, ok: `null`},
		{name: "error with code", reply: `{"error":"denied","code":"blocked_by_policy"}`, code: "blocked_by_policy", msg: "denied"},
		{name: "error without code", reply: `{"error":"old host"}`, msg: "old host"},
		{name: "malformed", reply: `{"ok":`, malformed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeReply([]byte(tc.reply))
			var he *HostError
			switch {
			case tc.malformed:
				if err == nil || errors.As(err, &he) {
					t.Fatalf("err = %v, want a decode error", err)
				}
			case tc.msg != "":
				if !errors.As(err, &he) || he.Code != tc.code || he.Message != tc.msg {
					t.Fatalf("err = %#v, want HostError{%q, %q}", err, tc.code, tc.msg)
				}
			default:
				if err != nil || string(got) != tc.ok {
					t.Fatalf("got %s, %v; want %s", got, err, tc.ok)
				}
			}
		})
	}
}

func TestHostCallsOutsideWasm(t *testing.T) {
	if _, err := HTTPRequest(context.Background(), Request{URL: "https://example.com"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("HTTPRequest outside wasm: %v, want ErrUnavailable", err)
	}
}
