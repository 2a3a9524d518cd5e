package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
)

func TestGuardCheck(t *testing.T) {
	tests := []struct {
		addr    string
		refused bool
	}{
		// IPv4 special-purpose ranges, first/inside/last, and their neighbours.
		{"0.0.0.0", true}, {"0.255.255.255", true},
		{"10.0.0.0", true}, {"10.255.255.255", true}, {"9.255.255.255", false}, {"11.0.0.0", false},
		{"100.64.0.0", true}, {"100.127.255.255", true}, {"100.63.255.255", false}, {"100.128.0.0", false},
		{"127.0.0.1", true}, {"127.255.255.254", true},
		{"169.254.169.254", true}, {"169.254.0.0", true}, {"169.253.255.255", false},
		{"172.16.0.0", true}, {"172.31.255.255", true}, {"172.15.255.255", false}, {"172.32.0.0", false},
		{"192.0.0.8", true}, {"192.0.0.255", true}, {"192.0.1.1", false},
		{"192.0.2.1", true},
		{"192.88.99.1", true}, {"192.88.98.255", false},
		{"192.168.0.1", true}, {"192.168.255.255", true}, {"192.169.0.0", false},
		{"198.18.0.0", true}, {"198.19.255.255", true}, {"198.17.255.255", false}, {"198.20.0.0", false},
		{"198.51.100.7", true},
		{"203.0.113.9", true}, {"203.0.114.0", false},
		{"224.0.0.1", true}, {"239.255.255.250", true}, {"223.255.255.255", false},
		{"240.0.0.1", true}, {"255.255.255.254", true}, {"255.255.255.255", true},
		{"8.8.8.8", false}, {"1.1.1.1", false},
		// IPv6.
		{"::", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},       // mapped: checked as 127.0.0.1
		{"::ffff:169.254.169.254", true}, // mapped metadata address
		{"::ffff:10.1.2.3", true},
		{"::ffff:8.8.8.8", false}, // mapped public address is the public address
		{"::127.0.0.1", true},     // IPv4-compatible
		{"::8.8.8.8", true},       // IPv4-compatible, deprecated
		{"::ffff:0:7f00:1", true}, // IPv4-translated
		{"64:ff9b::7f00:1", true}, // NAT64 of 127.0.0.1
		{"64:ff9b::808:808", true},
		{"64:ff9b:1::1", true},
		{"100::1", true},
		{"2001::1", true}, // Teredo
		{"2001:1ff::1", true},
		{"2001:db8::1", true},
		{"2002:7f00:1::1", true}, // 6to4 of 127.0.0.1
		{"3fff::1", true},
		{"5f00::1", true},
		{"fc00::1", true}, {"fd12:3456::1", true},
		{"fe80::1", true}, {"fe80::1%eth0", true}, {"febf::1", true},
		{"fec0::1", true},
		{"ff02::1", true}, {"ff0e::1", true},
		{"4000::1", true}, // outside global unicast
		{"2606:4700:4700::1111", false},
		{"2001:4860:4860::8888", false},
		{"2001:200::1", false}, // just past 2001::/23
	}
	g := NewGuard(nil)
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := g.Check(netip.MustParseAddr(tt.addr))
			if (err != nil) != tt.refused {
				t.Fatalf("Check(%s) = %v, want refused=%v", tt.addr, err, tt.refused)
			}
			var ae *AddressError
			if err != nil && (!errors.As(err, &ae) || ae.Range == "") {
				t.Fatalf("Check(%s) error %v is not an *AddressError naming the range", tt.addr, err)
			}
		})
	}
}

// Every block of the table refuses its first and last address, so no entry is dead.
func TestGuardEveryRange(t *testing.T) {
	g := NewGuard(nil)
	for _, r := range specialRanges {
		first, last := r.prefix.Addr(), lastAddr(r.prefix)
		for _, a := range []netip.Addr{first, last} {
			if g.Check(a) == nil {
				t.Errorf("range %s (%s): %s allowed", r.prefix, r.name, a)
			}
		}
	}
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestGuardAllowPrivateCIDRs(t *testing.T) {
	g := NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("fd00:1::/64")})
	tests := []struct {
		addr    string
		refused bool
	}{
		{"127.0.0.1", false},
		{"127.9.9.9", false},
		{"::ffff:127.0.0.1", false},
		{"::1", true},
		{"10.0.0.1", true},
		{"169.254.169.254", true},
		{"fd00:1::5", false},
		{"fd00:2::5", true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if err := g.Check(netip.MustParseAddr(tt.addr)); (err != nil) != tt.refused {
				t.Fatalf("Check(%s) = %v, want refused=%v", tt.addr, err, tt.refused)
			}
		})
	}
}

// The guard runs in net.Dialer.Control, on the address actually dialled.
func TestGuardControlOnLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	d := &net.Dialer{Control: NewGuard(nil).Control}
	_, err = d.DialContext(context.Background(), "tcp", ln.Addr().String())
	var ae *AddressError
	if !errors.As(err, &ae) || ae.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("dial without exception: err = %v, want an *AddressError for 127.0.0.1", err)
	}

	d = &net.Dialer{Control: NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}).Control}
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with 127.0.0.0/8 allowed: %v", err)
	}
	c.Close()
}

// recordingDial records the addresses it is asked to dial and connects to nothing.
type recordingDial struct {
	mu    sync.Mutex
	addrs []string
}

var errRecorded = errors.New("recording dial: not connecting")

func (r *recordingDial) dial(_ context.Context, network, address string) (net.Conn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs = append(r.addrs, network+" "+address)
	return nil, errRecorded
}

func (r *recordingDial) dialled() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.addrs)
}

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	addrs, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestDialerResolvesAndGuards(t *testing.T) {
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name     string
		allow    []netip.Prefix
		hosts    map[string][]netip.Addr
		resolver fakeResolver
		address  string
		dialled  []string
		errAddr  bool // an *AddressError
		errRes   bool // a resolve error
	}{
		{name: "hosts entry to loopback is refused", hosts: map[string][]netip.Addr{"upstream.test": addrs("127.0.0.1")}, address: "upstream.test:80", errAddr: true},
		{name: "hosts entry to loopback allowed by CIDR", allow: loop, hosts: map[string][]netip.Addr{"upstream.test": addrs("127.0.0.1")}, address: "upstream.test:80", dialled: []string{"tcp4 127.0.0.1:80"}},
		{name: "refused addresses are skipped", allow: loop, hosts: map[string][]netip.Addr{"mixed.test": addrs("10.0.0.1", "127.0.0.2")}, address: "mixed.test:443", dialled: []string{"tcp4 127.0.0.2:443"}},
		{name: "mapped address dialled as IPv4", allow: loop, hosts: map[string][]netip.Addr{"m.test": addrs("::ffff:127.0.0.1")}, address: "m.test:80", dialled: []string{"tcp4 127.0.0.1:80"}},
		{name: "DNS answer in metadata range", resolver: fakeResolver{"rebind.test": addrs("169.254.169.254")}, address: "rebind.test:80", errAddr: true},
		{name: "DNS answer in NAT64", resolver: fakeResolver{"nat64.test": addrs("64:ff9b::a9fe:a9fe")}, address: "nat64.test:80", errAddr: true},
		{name: "IP literal refused", address: "[fd00::1]:80", errAddr: true},
		{name: "empty resolver answer", resolver: fakeResolver{"empty.test": nil}, address: "empty.test:80", errRes: true},
		{name: "empty hosts entry", hosts: map[string][]netip.Addr{"none.test": nil}, address: "none.test:80", errRes: true},
		{name: "unknown name", resolver: fakeResolver{}, address: "nx.test:80", errRes: true},
		{name: "public answer dialled", resolver: fakeResolver{"pub.test": addrs("2606:4700:4700::1111", "1.1.1.1")}, address: "pub.test:443", dialled: []string{"tcp6 [2606:4700:4700::1111]:443", "tcp4 1.1.1.1:443"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingDial{}
			res := tt.resolver
			if res == nil {
				res = fakeResolver{}
			}
			d := newDialer(NewGuard(tt.allow), tt.hosts, res, rec.dial, 0)
			_, err := d.DialContext(context.Background(), "tcp", tt.address)
			var ae *AddressError
			var re *resolveError
			switch {
			case tt.errAddr && !errors.As(err, &ae):
				t.Fatalf("err = %v, want an *AddressError", err)
			case tt.errRes && !errors.As(err, &re):
				t.Fatalf("err = %v, want a resolve error", err)
			case tt.dialled != nil && !errors.Is(err, errRecorded):
				t.Fatalf("err = %v, want the recording dial's error", err)
			}
			if got := rec.dialled(); !slices.Equal(got, tt.dialled) {
				t.Fatalf("dialled %q, want %q", got, tt.dialled)
			}
		})
	}
}
