package tlsca_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/egress/tlsca"
)

// handshake serves one TLS handshake with the leaf a mints for host and returns
// the client's error, the client trusting only roots and asking for serverName.
func handshake(t *testing.T, a *tlsca.Authority, host, serverName string, roots *x509.CertPool) error {
	t.Helper()
	leaf, err := a.Leaf(host)
	if err != nil {
		t.Fatalf("Leaf(%q): %v", host, err)
	}
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(c1, &tls.Config{Certificates: []tls.Certificate{*leaf}})
		done <- s.Handshake()
		s.Close()
	}()
	c := tls.Client(c2, &tls.Config{RootCAs: roots, ServerName: serverName})
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	err = c.Handshake()
	c.Close()
	c2.Close()
	<-done
	return err
}

func pool(t *testing.T, pemBytes []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemBytes) {
		t.Fatal("CertPEM holds no certificate")
	}
	return p
}

func TestLeafVerifiesAgainstItsCAOnly(t *testing.T) {
	a, err := tlsca.New("sb-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := tlsca.New("sb-2")
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"api.example.com", "127.0.0.1", "[::1]"} {
		name := strings.Trim(host, "[]")
		if err := handshake(t, a, host, name, pool(t, a.CertPEM())); err != nil {
			t.Errorf("%s: a client trusting the sandbox's CA refused its leaf: %v", host, err)
		}
		if err := handshake(t, a, host, name, pool(t, b.CertPEM())); err == nil {
			t.Errorf("%s: a client trusting another sandbox's CA accepted the leaf", host)
		}
	}
	if err := handshake(t, a, "api.example.com", "other.example.com", pool(t, a.CertPEM())); err == nil {
		t.Error("a leaf for api.example.com was accepted for other.example.com")
	}
	ca := a.Certificate()
	if !ca.IsCA || !ca.MaxPathLenZero || ca.MaxPathLen != 0 {
		t.Errorf("CA constraints: IsCA=%v MaxPathLen=%d zero=%v", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	leaf, _ := a.Leaf("api.example.com")
	if leaf.Leaf.IsCA {
		t.Error("a leaf is a CA")
	}
}

func TestParseRoundTripAndMismatch(t *testing.T) {
	a, err := tlsca.New("sb-1")
	if err != nil {
		t.Fatal(err)
	}
	key, err := a.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := tlsca.Parse(a.CertPEM(), key)
	if err != nil {
		t.Fatalf("Parse of its own output: %v", err)
	}
	// A leaf minted by the loaded CA verifies against the original certificate:
	// an adopted sandbox keeps trusting the CA it was given at spawn.
	if err := handshake(t, back, "h.example", "h.example", pool(t, a.CertPEM())); err != nil {
		t.Errorf("leaf of the parsed CA: %v", err)
	}
	other, _ := tlsca.New("sb-2")
	otherKey, _ := other.KeyPEM()
	if _, err := tlsca.Parse(a.CertPEM(), otherKey); err == nil {
		t.Error("Parse accepted another CA's key")
	}
	if _, err := tlsca.Parse(key, a.CertPEM()); err == nil {
		t.Error("Parse accepted swapped blocks")
	}
	if _, err := tlsca.Parse(nil, nil); err == nil {
		t.Error("Parse accepted nothing")
	}
	if s := a.String(); strings.Contains(s, "PRIVATE") || !strings.Contains(s, "sb-1") {
		t.Errorf("String() = %q", s)
	}
}

func TestLeafCache(t *testing.T) {
	a, err := tlsca.New("sb-1")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a.Now = func() time.Time { return now }
	a.CacheSize = 2
	first, _ := a.Leaf("a.example")
	again, _ := a.Leaf("A.Example.")
	if first != again || a.Minted() != 1 {
		t.Fatalf("same host (another case, trailing dot) minted again: minted=%d", a.Minted())
	}
	_, _ = a.Leaf("b.example")
	_, _ = a.Leaf("c.example") // evicts a.example, the least recently used
	if a.Minted() != 3 {
		t.Fatalf("minted=%d, want 3", a.Minted())
	}
	if l, _ := a.Leaf("a.example"); l == first || a.Minted() != 4 {
		t.Errorf("an evicted leaf was served from the cache (minted=%d)", a.Minted())
	}
	// Near its expiry a cached leaf is minted again.
	l1, _ := a.Leaf("c.example")
	minted := a.Minted()
	now = l1.Leaf.NotAfter.Add(-time.Hour)
	l2, _ := a.Leaf("c.example")
	if l2 == l1 || a.Minted() != minted+1 || !l2.Leaf.NotAfter.After(l1.Leaf.NotAfter) {
		t.Errorf("a leaf near its expiry was served again (minted %d→%d)", minted, a.Minted())
	}
}

func TestLeafRefusesBadHosts(t *testing.T) {
	a, err := tlsca.New("sb-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"", ".", "a..b", "exa mple.com", "evil.com/x", "fe80::1%eth0", strings.Repeat("a", 64) + ".com", "*.example.com", "a\x00b"} {
		if _, err := a.Leaf(h); err == nil {
			t.Errorf("Leaf(%q) minted a certificate", h)
		}
	}
}
