package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// jsonEscapeAll writes every byte of s as a \u00XX escape.
func jsonEscapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, `\u%04x`, s[i])
	}
	return b.String()
}

// TestInjectedCredentialEchoedEncodedIsRedacted: an upstream that echoes the
// credential the gateway injected, JSON-escaped the way PHP's json_encode writes it
// ("\/") and with every byte as \u00XX, hands the sandbox nothing of the value. The
// sandbox itself counts what it received (its own logs are redacted too, so they
// could not show a gateway that let the value through).
func TestInjectedCredentialEchoedEncodedIsRedacted(t *testing.T) {
	requireDocker(t)
	const secret = "S3cr/3tValue0123456789abcdefXYZ"
	up := &upstream{}
	up.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.Header().Set("Content-Type", "text/plain") // not strictly JSON: the escapes must still be found
		fmt.Fprintf(w, `{"php":"%s", "all":"%s"}`, strings.ReplaceAll(v, "/", `\/`), jsonEscapeAll(v))
	}))
	t.Cleanup(up.Close)
	_, up.port, _ = net.SplitHostPort(up.Listener.Addr().String())
	cfg := containerConfig(t, up)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()
	if _, err := c.PutCredential(ctx, "UPSTREAM", api.PutCredentialRequest{
		Value: secret, Host: "example.com", Port: mustAtoi(t, up.port),
	}); err != nil {
		t.Fatal(err)
	}
	url := "https://example.com:" + up.port + "/echo"
	script := strings.Join([]string{
		`/agent -proxy ` + url + ` > /tmp/out`,
		`echo "status=$(head -c 3 /tmp/out)"`,
		// A fragment of the value (not itself a secret, so the logs keep the count).
		`echo "plain=$(grep -o 3tValue0123456789 /tmp/out | wc -l)"`,
		`echo "escapes=$(grep -o 'u00[0-9a-f][0-9a-f]' /tmp/out | wc -l)"`,
		`echo "redacted=$(grep -o REDACTED /tmp/out | wc -l)"`,
	}, "; ")
	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{
		Task:         "echo encoded",
		Command:      []string{"sh", "-c", script},
		Capabilities: &api.ContainerCapabilities{Credentials: []string{"UPSTREAM"}},
	})
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	final := waitFinal(t, c, info.ContainerID)
	logs, err := c.Logs(ctx, info.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != api.ContainerStatusCompleted {
		t.Fatalf("sandbox: %s\n%s\n%s", final.Status, logs.Stdout, logs.Stderr)
	}
	got := outputKV(logs.Stdout)
	if got["status"] != "200" {
		t.Fatalf("the request did not reach the upstream:\n%s\n%s", logs.Stdout, logs.Stderr)
	}
	if got["plain"] != "0" || got["escapes"] != "0" {
		t.Errorf("the sandbox received the credential encoded: %s", logs.Stdout)
	}
	if got["redacted"] != "2" {
		t.Errorf("want both echoed forms replaced by [REDACTED], got %s", logs.Stdout)
	}
}
