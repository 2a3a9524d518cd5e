package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// specialRange is one special-purpose address block the gateway never dials unless an
// operator opened it on purpose.
type specialRange struct {
	prefix netip.Prefix
	name   string
}

// specialRanges is the IANA special-purpose registry (IPv4 and IPv6) minus the blocks
// that are globally reachable unicast, plus the IPv6 transition forms that embed an
// IPv4 address. IPv4-mapped addresses (::ffff:0:0/96) are not listed: they are checked
// as the IPv4 address they embed. Any IPv6 address outside 2000::/3 (global unicast)
// is refused as well, which covers blocks this table does not name.
var specialRanges = []specialRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "this network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private use"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link local (cloud metadata)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private use"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation (TEST-NET-1)"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private use"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation (TEST-NET-2)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation (TEST-NET-3)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("255.255.255.255/32"), "limited broadcast"},

	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard only"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (Teredo, ORCHID)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("5f00::/16"), "segment routing (SRv6) SIDs"},
	{netip.MustParsePrefix("fc00::/7"), "unique local"},
	{netip.MustParsePrefix("fe80::/10"), "link local"},
	{netip.MustParsePrefix("fec0::/10"), "site local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// AddressError says that the gateway refused to dial an address.
type AddressError struct {
	Host  string     // the name that resolved to Addr, when there was one
	Addr  netip.Addr // the refused address
	Range string     // which special-purpose block it is in
}

func (e *AddressError) Error() string {
	if e.Host != "" && e.Host != e.Addr.String() {
		return fmt.Sprintf("%s resolves to %s, which is in a special-purpose range (%s)", e.Host, e.Addr, e.Range)
	}
	return fmt.Sprintf("address %s is in a special-purpose range (%s)", e.Addr, e.Range)
}

// Guard decides which addresses may be dialled: none in a special-purpose range
// unless an operator allowed that range explicitly. The zero value allows no
// special-purpose address. A Guard is immutable and safe for concurrent use.
type Guard struct {
	allow []netip.Prefix
}

// NewGuard returns a guard that also allows the given ranges
// (config proxy.allow_private_cidrs).
func NewGuard(allow []netip.Prefix) *Guard {
	g := &Guard{}
	for _, p := range allow {
		g.allow = append(g.allow, p.Masked())
	}
	return g
}

// Check returns nil if a may be dialled and an *AddressError otherwise. IPv4-mapped
// IPv6 addresses are checked as the IPv4 address they embed.
func (g *Guard) Check(a netip.Addr) error {
	if !a.IsValid() {
		return &AddressError{Addr: a, Range: "invalid address"}
	}
	a = a.WithZone("")
	if a.Is4In6() {
		a = a.Unmap()
	}
	for _, p := range g.allow {
		if p.Contains(a) {
			return nil
		}
	}
	for _, r := range specialRanges {
		if r.prefix.Contains(a) {
			return &AddressError{Addr: a, Range: r.prefix.String() + " " + r.name}
		}
	}
	if a.Is6() && !globalUnicast6.Contains(a) {
		return &AddressError{Addr: a, Range: "outside global unicast 2000::/3"}
	}
	return nil
}

// Control is a net.Dialer Control function: it checks the address actually being
// dialled, after any name resolution, so DNS rebinding cannot slip past it.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &AddressError{Range: "unparseable address"}
	}
	return g.Check(ap.Addr())
}

// Resolver looks names up; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialFunc dials one address. The gateway calls it only with an IP:port that passed
// the guard.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// errResolve says that a name did not resolve to any address.
type resolveError struct {
	host string
	err  error
}

func (e *resolveError) Error() string {
	if e.err == nil {
		return "could not resolve " + e.host + ": no addresses"
	}
	return "could not resolve " + e.host + ": " + e.err.Error()
}

func (e *resolveError) Unwrap() error { return e.err }

// dialer resolves a name (static hosts first, then the resolver), drops every address
// the guard refuses, and dials the rest in order.
type dialer struct {
	guard    *Guard
	hosts    map[string][]netip.Addr // normalised names
	resolver Resolver
	dial     DialFunc
}

func newDialer(guard *Guard, hosts map[string][]netip.Addr, resolver Resolver, dial DialFunc, connectTimeout time.Duration) *dialer {
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	if dial == nil {
		nd := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second, Control: guard.Control}
		dial = nd.DialContext
	}
	return &dialer{guard: guard, hosts: hosts, resolver: resolver, dial: dial}
}

func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port %q", portStr)
	}
	addrs, err := d.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var refused, lastErr error
	for _, a := range addrs {
		a = a.Unmap()
		if err := d.guard.Check(a); err != nil {
			var ae *AddressError
			if errors.As(err, &ae) {
				ae.Host = host
			}
			if refused == nil {
				refused = err
			}
			continue
		}
		nw := "tcp4"
		if a.Is6() {
			nw = "tcp6"
		}
		c, err := d.dial(ctx, nw, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return c, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, refused
}

func (d *dialer) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	if addrs, ok := d.hosts[host]; ok {
		if len(addrs) == 0 {
			return nil, &resolveError{host: host}
		}
		return addrs, nil
	}
	addrs, err := d.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, &resolveError{host: host, err: err}
	}
	if len(addrs) == 0 {
		return nil, &resolveError{host: host}
	}
	return addrs, nil
}
