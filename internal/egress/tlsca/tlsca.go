// Package tlsca is the certificate authority of one sandbox: the door's CONNECT
// handler terminates the sandbox's TLS with leaf certificates it mints, so that
// every decrypted request goes through the egress pipeline.
//
// Each sandbox gets its own Authority (ECDSA P-256), made at spawn. Its certificate
// is what the sandbox trusts (/run/clawbox/ca.pem); its private key stays in the
// server: the host keeps it in a file only the server can read, outside every
// directory mounted into a sandbox, so that an adopted sandbox keeps trusting the
// same CA after a restart. A CA trusted by one sandbox signs nothing another
// sandbox trusts. Leaves are minted on demand for the host of a CONNECT, signed
// over one leaf key per Authority, and cached (bounded, least recently used out).
package tlsca

import (
	"container/list"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Lifetimes. A CA outlives every sandbox it serves (agents live long); a leaf is
// short-lived and minted again before it expires.
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 7 * 24 * time.Hour
	// leafRenew is how long before its expiry a cached leaf is minted again.
	leafRenew = 24 * time.Hour
	// backdate covers clock skew between the server and the sandbox.
	backdate = time.Hour
)

// DefaultCacheSize is how many leaves an Authority keeps.
const DefaultCacheSize = 256

// Authority is one sandbox's CA. It is safe for concurrent use.
type Authority struct {
	key     *ecdsa.PrivateKey
	cert    *x509.Certificate
	certPEM []byte
	leafKey *ecdsa.PrivateKey

	// Now is the clock used for leaf validity; nil means time.Now.
	Now func() time.Time
	// CacheSize bounds the cached leaves; 0 means DefaultCacheSize.
	CacheSize int

	mu     sync.Mutex
	lru    *list.List               // of *cached, most recently used first
	leaves map[string]*list.Element // host -> element of lru
	minted int                      // leaves minted, for tests and metrics
}

type cached struct {
	host string
	cert *tls.Certificate
}

// New makes a CA named for the sandbox id: a fresh P-256 key and a self-signed
// certificate allowed to sign leaves only (path length 0).
func New(sandboxID string) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	now := time.Now()
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"clawbox"}, CommonName: commonName(sandboxID)},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	return fromParts(der, key)
}

func commonName(id string) string {
	if len(id) > 40 {
		id = id[:40]
	}
	return "clawbox sandbox CA " + id
}

// Parse loads a CA written by CertPEM and KeyPEM. It checks that the key belongs
// to the certificate and that the certificate is a CA.
func Parse(certPEM, keyPEM []byte) (*Authority, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("tlsca: no CERTIFICATE block")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, errors.New("tlsca: no PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tlsca: key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("tlsca: the key is not ECDSA P-256")
	}
	return fromParts(cb.Bytes, key)
}

func fromParts(der []byte, key *ecdsa.PrivateKey) (*Authority, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlsca: certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("tlsca: the certificate is not a CA")
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("tlsca: the key does not belong to the certificate")
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	return &Authority{
		key:     key,
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		leafKey: leafKey,
		lru:     list.New(),
		leaves:  make(map[string]*list.Element),
	}, nil
}

// CertPEM returns the CA certificate, PEM-encoded: what the sandbox trusts.
func (a *Authority) CertPEM() []byte { return append([]byte(nil), a.certPEM...) }

// Certificate returns the parsed CA certificate.
func (a *Authority) Certificate() *x509.Certificate { return a.cert }

// KeyPEM returns the CA private key as a PEM "PRIVATE KEY" (PKCS #8) block, for the
// server's own file. It never goes into a sandbox.
func (a *Authority) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// String names the CA without any key material.
func (a *Authority) String() string { return "tlsca.Authority(" + a.cert.Subject.CommonName + ")" }

// Minted reports how many leaves the Authority has minted (cache misses).
func (a *Authority) Minted() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.minted
}

// Leaf returns a certificate for host (a DNS name or an IP literal, as in a
// CONNECT line, without the port), chained to the CA, from the cache when a leaf
// for host is there and not near its expiry.
func (a *Authority) Leaf(host string) (*tls.Certificate, error) {
	host, err := normalizeHost(host)
	if err != nil {
		return nil, err
	}
	now := a.now()
	a.mu.Lock()
	if el, ok := a.leaves[host]; ok {
		c := el.Value.(*cached)
		if now.Add(leafRenew).Before(c.cert.Leaf.NotAfter) {
			a.lru.MoveToFront(el)
			a.mu.Unlock()
			return c.cert, nil
		}
		a.lru.Remove(el)
		delete(a.leaves, host)
	}
	a.mu.Unlock()

	cert, err := a.mint(host, now)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.minted++
	if el, ok := a.leaves[host]; ok { // minted concurrently: keep the first
		a.lru.MoveToFront(el)
		return el.Value.(*cached).cert, nil
	}
	a.leaves[host] = a.lru.PushFront(&cached{host: host, cert: cert})
	size := a.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	for a.lru.Len() > size {
		old := a.lru.Back()
		a.lru.Remove(old)
		delete(a.leaves, old.Value.(*cached).host)
	}
	return cert, nil
}

func (a *Authority) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Authority) mint(host string, now time.Time) (*tls.Certificate, error) {
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(leafLifetime)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &a.leafKey.PublicKey, a.key)
	if err != nil {
		return nil, fmt.Errorf("tlsca: leaf for %q: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlsca: leaf for %q: %w", host, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der, a.cert.Raw}, PrivateKey: a.leafKey, Leaf: leaf}, nil
}

// maxHostLen bounds a host name (RFC 1035: 253 bytes written out).
const maxHostLen = 253

// normalizeHost lower-cases host, strips the brackets of an IPv6 literal and a
// trailing dot, and refuses what cannot be a certificate name.
func normalizeHost(host string) (string, error) {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("tlsca: host %q has a zone", host)
		}
		return ip.Unmap().String(), nil
	}
	if h == "" || len(h) > maxHostLen {
		return "", fmt.Errorf("tlsca: host %q is not a valid name", host)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("tlsca: host %q is not a valid name", host)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("tlsca: host %q is not a valid name", host)
			}
		}
	}
	return h, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("tlsca: serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
