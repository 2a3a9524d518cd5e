package main

import (
	"strings"
	"testing"
)

// BenchmarkForwardProxy: one GET of the plain loopback upstream per iteration, from
// the same Go client, through squid (an equivalent ACL) and through the door's
// forward proxy. The squid sub-benchmark skips when squid is not installed.
func BenchmarkForwardProxy(b *testing.B) {
	e := benchEnv(b, false)
	ts, target, squidErr, closeAll, err := forwardTargets(b.Context(), e, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer closeAll()
	if squidErr != nil {
		b.Run("squid", func(b *testing.B) { b.Skip(squidErr) })
	}
	for _, t := range ts {
		b.Run(t.name, func(b *testing.B) {
			for b.Loop() {
				if err := t.get(b.Context(), target); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIntercept: a TLS handshake with a static certificate, with a cached
// tlsca leaf and with a freshly minted one.
func BenchmarkIntercept(b *testing.B) {
	vs, err := interceptVariants()
	if err != nil {
		b.Fatal(err)
	}
	runVariants(b, vs)
}

// TestSquidConfigACL checks the ACL the forward-proxy bench gives squid: only the
// upstream's host and port, everything else denied, nothing cached.
func TestSquidConfigACL(t *testing.T) {
	conf := squidConfig("/d", 3128, "8080")
	for _, want := range []string{
		"http_port 127.0.0.1:3128\n",
		"acl upstream dstdomain example.com\n",
		"acl upstream_port port 8080\n",
		"http_access allow upstream upstream_port\nhttp_access deny all\n",
		"cache deny all\n",
		"hosts_file /d/hosts\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("squid.conf lacks %q:\n%s", want, conf)
		}
	}
}

// BenchmarkTunnel: GETs of the HTTPS upstream straight and through the door's
// CONNECT with interception, a new connection each and keep-alive.
func BenchmarkTunnel(b *testing.B) {
	e := benchEnv(b, false)
	vs, closeAll, err := tunnelVariants(b.Context(), e)
	if err != nil {
		b.Fatal(err)
	}
	defer closeAll()
	runVariants(b, vs)
}
