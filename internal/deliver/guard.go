package deliver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// errPrivate marks a connection refused because its address is private.
var errPrivate = errors.New("private address")

// privateError names the address a connection was refused for.
type privateError struct{ addr netip.Addr }

func (e *privateError) Error() string {
	return fmt.Sprintf("the endpoint resolves to %s, a private, loopback or link-local address (start bridgeport with --allow-private-endpoints to allow it)", e.addr)
}

func (e *privateError) Unwrap() error { return errPrivate }

// metadata is the cloud instance metadata address.
var metadata = netip.MustParseAddr("169.254.169.254")

// cgnat is the carrier-grade NAT range (RFC 6598), not publicly routable.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// blocked reports whether a is an address API destinations may not reach:
// loopback, private (RFC 1918), unique local (fc00::/7), link-local
// (including the metadata address), unspecified, multicast, CGNAT.
func blocked(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || a == metadata || cgnat.Contains(a)
}

// guardControl is a net.Dialer Control function: it runs for every
// connection attempt after DNS resolution, so a name that resolves (or is
// rebound) to a private address is refused at connect time.
func guardControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("unexpected dial address %q", address)
	}
	if blocked(a) {
		return &privateError{addr: a}
	}
	return nil
}
