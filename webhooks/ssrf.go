package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// refusedPrefixes are ranges, beyond what netip classifies, that a webhook
// must never reach from inside the platform's network.
var refusedPrefixes = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `a "this network" address`},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"}, // includes Alibaba Cloud's metadata, 100.100.100.200
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("168.63.129.16/32"), "a cloud metadata address"}, // Azure's host endpoint
	{netip.MustParsePrefix("::/96"), "an IPv4-compatible IPv6 address"},     // ::127.0.0.1 and friends
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "an IPv4-translated IPv6 address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local IPv6 address"},
	{netip.MustParsePrefix("100::/64"), "a discard-only IPv6 address"},
	// RFC 8215: a NAT64 prefix for use inside one operator's network. Where
	// the IPv4 address sits depends on the operator's prefix length, and it
	// translates into the operator's own IPv4 space: refused as a whole.
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local-use NAT64 address"},
}

// embeddedV4 are IPv6 ranges that carry an IPv4 address in their low bits
// (NAT64) or bits 16–48 (6to4); the IPv4 address inside is checked too.
var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	sixToV4 = netip.MustParsePrefix("2002::/16")
)

// refusedBecause says why ip may not be dialed when private addresses are
// not allowed, or "" when it may.
func refusedBecause(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "not an address"
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsUnspecified():
		return "an unspecified address"
	case ip.IsLinkLocalUnicast():
		return "a link-local address (cloud metadata lives there)"
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "a multicast address"
	case ip.IsPrivate():
		return "a private address"
	}
	for _, r := range refusedPrefixes {
		if r.prefix.Contains(ip) {
			return r.why
		}
	}
	if inner, ok := embeddedIPv4(ip); ok {
		if why := refusedBecause(inner); why != "" {
			return why + " (inside an IPv6 address)"
		}
	}
	return ""
}

func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	b := ip.As16()
	switch {
	case !ip.Is6():
		return netip.Addr{}, false
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToV4.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// guard dials webhook endpoints. Unless private addresses are allowed, it
// resolves the host itself, refuses every address that refusedBecause
// names, and connects only to the checked address, so a name that resolves
// to an internal address (or re-resolves to one, DNS rebinding) is never
// reached. The connection's Control hook checks the address once more,
// just before connect(2), whatever path led there.
type guard struct {
	allowPrivate bool
	lookup       func(ctx context.Context, host string) ([]netip.Addr, error)
	dial         func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (s *Service) newGuard() *guard {
	g := &guard{allowPrivate: s.opts.AllowPrivate, lookup: s.lookup, dial: s.dial}
	if g.lookup == nil {
		g.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if g.dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
		g.dial = d.DialContext
	}
	return g
}

// DialContext connects to addr ("host:port") through the first of its
// addresses that is allowed and answers.
func (g *guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if g.allowPrivate {
		return g.dial(ctx, network, addr)
	}
	ips, err := g.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ip := range ips {
		if why := refusedBecause(ip); why != "" {
			errs = append(errs, fmt.Errorf("%w: %s resolves to %s, %s", ErrAddressRefused, host, ip.Unmap(), why))
			continue
		}
		conn, err := g.dial(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (g *guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	ips, err := g.lookup(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", host)
	}
	return ips, nil
}

// control runs just before the socket connects, with the numeric address.
func (g *guard) control(_, address string, _ syscall.RawConn) error {
	if g.allowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check address %q", ErrAddressRefused, address)
	}
	if why := refusedBecause(ap.Addr()); why != "" {
		return fmt.Errorf("%w: %s is %s", ErrAddressRefused, ap.Addr().Unmap(), why)
	}
	return nil
}
