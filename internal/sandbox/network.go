package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/clawbox/clawbox/internal/egress/tlsca"
)

// The network inside a sandbox with a door: the supervisor's proxy bridge on
// loopback, and the sandbox's CA in its socket directory.
const (
	// ContainerProxyListen is where the supervisor's bridge listens inside the
	// sandbox; ContainerProxyURL is what HTTP_PROXY and the others name.
	ContainerProxyListen = "127.0.0.1:3128"
	ContainerProxyURL    = "http://" + ContainerProxyListen
	// ContainerNoProxy is NO_PROXY: the sandbox's own loopback.
	ContainerNoProxy = "localhost,127.0.0.1,::1"
	// ContainerCAPath is the sandbox's CA certificate (what CONNECT leaves are
	// signed by); ContainerCABundlePath is that certificate followed by the
	// host's system roots, what the CA variables name, so that hosts the door
	// passes through unintercepted still verify.
	ContainerCAPath       = ContainerSocketDir + "/" + caCertName
	ContainerCABundlePath = ContainerSocketDir + "/" + caBundleName
)

const (
	caCertName   = "ca.pem"
	caBundleName = "ca-bundle.pem"
	// caKeySuffix names a sandbox's CA key file beside (never inside) its socket
	// directory: <ProxiesDir>/<id>.ca-key, in the 0700 base that is never mounted.
	caKeySuffix = ".ca-key"
)

// systemRootsFiles are where Debian and Ubuntu, Fedora and RHEL, and Alpine
// and macOS keep the system's CA bundle, tried in order.
var systemRootsFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/cert.pem",
}

// doorEnv is the environment of a sandbox with a door: every common client
// finds the bridge and trusts the bundle holding the sandbox's CA. Spawn
// refuses each of these keys as reserved.
func doorEnv() map[string]string {
	env := map[string]string{
		"HTTP_PROXY": ContainerProxyURL, "HTTPS_PROXY": ContainerProxyURL,
		"http_proxy": ContainerProxyURL, "https_proxy": ContainerProxyURL,
		"NO_PROXY": ContainerNoProxy, "no_proxy": ContainerNoProxy,
		// Node adds NODE_EXTRA_CA_CERTS to its own roots: the CA alone.
		"NODE_EXTRA_CA_CERTS": ContainerCAPath,
	}
	for _, k := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT"} {
		env[k] = ContainerCABundlePath
	}
	return env
}

// caKeyPath is the CA key file of the sandbox whose socket directory is dir.
func caKeyPath(dir string) string { return dir + caKeySuffix }

// makeCA makes sandbox id's CA: the key goes into caKeyPath(dir) (0600, the
// server's alone), the certificate and the bundle (the certificate, then the
// system roots read from roots; none when roots is "") into the socket
// directory dir (0444). On error the caller's release removes what was written.
func makeCA(id, dir, roots string) (*tlsca.Authority, error) {
	ca, err := tlsca.New(id)
	if err != nil {
		return nil, err
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := writeNewFile(caKeyPath(dir), key, 0o600); err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	cert := ca.CertPEM()
	if err := writeNewFile(filepath.Join(dir, caCertName), cert, 0o444); err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	bundle := append(bytes.Clone(cert), '\n')
	if roots != "" {
		b, err := os.ReadFile(roots)
		if err != nil {
			return nil, fmt.Errorf("system roots: %w", err)
		}
		bundle = append(bundle, b...)
	}
	if err := writeNewFile(filepath.Join(dir, caBundleName), bundle, 0o444); err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	return ca, nil
}

// loadCA reads back the CA of the sandbox whose socket directory is dir (at
// adoption): the certificate it trusts and the key kept beside the directory.
func loadCA(dir string) (*tlsca.Authority, error) {
	cert, err := os.ReadFile(filepath.Join(dir, caCertName))
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(caKeyPath(dir))
	if err != nil {
		return nil, err
	}
	return tlsca.Parse(cert, key)
}

// systemRoots returns the system CA bundle to append to a sandbox's: file when
// set, else the first of systemRootsFiles that exists ("" when none does).
func systemRoots(file string) string {
	if file != "" {
		return file
	}
	for _, f := range systemRootsFiles {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			return f
		}
	}
	return ""
}

// writeNewFile creates path (it must not exist) with mode, whatever the umask.
func writeNewFile(path string, b []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(path, mode)
	}
	return err
}

// removeCAKey deletes a sandbox's CA key file; a missing one is fine.
func removeCAKey(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.Remove(caKeyPath(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
