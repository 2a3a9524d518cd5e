package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/clawbox/clawbox/api"
)

// Browsers are the one client that can be made to talk to the API against its
// user's will: a page on another site can send requests to 127.0.0.1, and a page
// whose name is re-bound to 127.0.0.1 (DNS rebinding) can even read the answers,
// because to the browser they come from the page's own origin. Two checks, before
// routing and authentication, close both doors:
//
//   - Host: a TCP request must name the server by a loopback name (localhost,
//     127.0.0.1, [::1]), by the IP address the connection arrived at, or by an entry
//     of server.allowed_hosts; with a port, it must be the port the connection
//     arrived at. A rebound page's requests carry its own name and are refused with
//     421 host_not_allowed, as is an empty Host. A request over the Unix socket is not checked: no
//     browser reaches it.
//   - Origin: a request that carries one (browsers add it to every cross-origin
//     request, and to same-origin ones but GET and HEAD) must come from the server's
//     own origin (http:// and the request's Host) or from server.allowed_origins,
//     else 403 origin_not_allowed. The streamable-HTTP MCP transport requires this
//     of /mcp; it holds for every route. Clients that are not browsers (the CLI, the
//     SDKs, MCP clients) send no Origin and are not affected.

// hostRule is one entry of server.allowed_hosts: a name, with a port or any port.
type hostRule struct {
	name string // lower case, no trailing dot, IPv6 without brackets
	port string // "" for any
}

// browserGuard holds the parsed allow lists.
type browserGuard struct {
	hosts   []hostRule
	origins map[string]bool // normalised origins
}

func newBrowserGuard(hosts, origins []string) (*browserGuard, error) {
	g := &browserGuard{origins: map[string]bool{}}
	for _, h := range hosts {
		name, port, err := splitHost(h)
		if err != nil || name == "" {
			return nil, fmt.Errorf("allowed host %q: want a name or an address, with an optional port", h)
		}
		g.hosts = append(g.hosts, hostRule{name: name, port: port})
	}
	for _, o := range origins {
		n, ok := normalOrigin(o)
		if !ok {
			return nil, fmt.Errorf("allowed origin %q: want scheme://host[:port], such as \"http://localhost:3000\"", o)
		}
		g.origins[n] = true
	}
	return g, nil
}

var (
	errHostNotAllowed   = api.Errorf(api.CodeHostNotAllowed, "this server does not answer to that Host name: use 127.0.0.1, localhost or [::1], or add the name to server.allowed_hosts")
	errOriginNotAllowed = api.Errorf(api.CodeOriginNotAllowed, "requests from this Origin are not allowed: add it to server.allowed_origins to allow it")
)

// check returns nil when the request may proceed.
func (g *browserGuard) check(r *http.Request) error {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	tcp, isTCP := local.(*net.TCPAddr)
	if isTCP && !g.hostAllowed(r.Host, tcp) {
		return errHostNotAllowed
	}
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return nil
	}
	if len(origins) > 1 {
		return errOriginNotAllowed
	}
	o, ok := normalOrigin(origins[0])
	if !ok { // "null" (sandboxed frames, file: pages) and anything malformed
		return errOriginNotAllowed
	}
	if g.origins[o] {
		return nil
	}
	if self, ok := normalOrigin("http://" + r.Host); ok && o == self {
		return nil
	}
	return errOriginNotAllowed
}

// hostAllowed reports whether a TCP request's Host header names this server.
func (g *browserGuard) hostAllowed(host string, local *net.TCPAddr) bool {
	name, port, err := splitHost(host)
	if err != nil || name == "" {
		return false
	}
	for _, rule := range g.hosts {
		if rule.name == name && (rule.port == "" || rule.port == port) {
			return true
		}
	}
	if port != "" && port != strconv.Itoa(local.Port) {
		return false
	}
	if name == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(name)
	if err != nil {
		return false // a name: only localhost and server.allowed_hosts
	}
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return true
	}
	l, ok := netip.AddrFromSlice(local.IP)
	return ok && l.Unmap() == ip
}

// splitHost splits "name", "name:port", "[v6]" or "[v6]:port" into a lower-case
// name without a trailing dot (IPv6 without brackets) and the port ("" if none).
func splitHost(h string) (name, port string, err error) {
	h = strings.ToLower(strings.TrimSpace(h))
	switch {
	case strings.HasPrefix(h, "["):
		end := strings.Index(h, "]")
		if end < 0 {
			return "", "", fmt.Errorf("unclosed [")
		}
		name, rest := h[1:end], h[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return "", "", fmt.Errorf("junk after ]")
			}
			port = rest[1:]
		}
		if _, err := netip.ParseAddr(name); err != nil {
			return "", "", err
		}
		h = name
	case strings.Count(h, ":") == 1:
		h, port, _ = strings.Cut(h, ":")
	case strings.Contains(h, ":"):
		// A bare IPv6 address (only valid in the allow list, never in a Host header,
		// where it would be ambiguous).
		if _, err := netip.ParseAddr(h); err != nil {
			return "", "", err
		}
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "", "", fmt.Errorf("bad port %q", port)
		}
	}
	h = strings.TrimSuffix(h, ".")
	if strings.ContainsAny(h, "/@?#% \t") {
		return "", "", fmt.Errorf("bad name")
	}
	return h, port, nil
}

// normalOrigin returns an origin as "scheme://host[:port]" in lower case with the
// scheme's default port dropped, or false if it is not an origin.
func normalOrigin(o string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	name, port, err := splitHost(u.Host)
	if err != nil || name == "" {
		return "", false
	}
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(name, ":") {
		name = "[" + name + "]"
	}
	if port != "" {
		name += ":" + port
	}
	return u.Scheme + "://" + name, true
}
