package egress

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// FuzzDecodeProxyRequest feeds the door's POST /proxy body decoder (what a sandbox
// controls) arbitrary bytes: it never panics, every refusal is a documented 400 in
// the API error shape, and what it accepts is one JSON object of the known fields
// that survives a round trip.
func FuzzDecodeProxyRequest(f *testing.F) {
	f.Add([]byte(`{"url":"https://api.github.com/x","method":"POST","headers":{"A":"b"},"body":"hi"}`))
	f.Add([]byte(`{"url":"https://x/","body_base64":"aGk="}`))
	f.Add([]byte(`{"url":"https://x/"} {"url":"https://y/"}`))
	f.Add([]byte(`{"URL":"https://x/"}`))
	f.Add([]byte(`{"url":1}`))
	f.Add([]byte(`{"headers":{"a":null}}`))
	f.Add([]byte(`[{"url":"x"}]`))
	f.Add([]byte(`{"url":"\ud800"}`))
	f.Add([]byte(`{"url":"https://x/","url":"https://y/"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeProxyRequest(strings.NewReader(string(data)))
		if err != nil {
			e, ok := api.AsError(err)
			if !ok || e.Status() != 400 || e.Message == "" {
				t.Fatalf("decode error %v is not a documented 400", err)
			}
			if e.Code != api.CodeInvalidJSON && e.Code != api.CodeInvalidRequest {
				t.Fatalf("decode error code %q", e.Code)
			}
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			t.Fatalf("accepted %q, which is not one JSON object", data)
		}
		for k := range obj {
			if !proxyRequestFields[k] {
				t.Fatalf("accepted unknown field %q", k)
			}
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeProxyRequest(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("re-encoded request %s does not decode: %v", b, err)
		}
		if again.URL != req.URL || again.Method != req.Method || !maps.Equal(again.Headers, req.Headers) ||
			!sameString(again.Body, req.Body) || !sameString(again.BodyBase64, req.BodyBase64) {
			t.Fatalf("round trip changed the request: %+v → %+v", req, again)
		}
	})
}

func sameString(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
