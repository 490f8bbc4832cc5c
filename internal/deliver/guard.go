package deliver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// errPrivate marks a connection refused because its address is private.
var errPrivate = errors.New("private address")

// privateError names the address a connection was refused for.
type privateError struct{ addr netip.Addr }

func (e *privateError) Error() string { return e.about("the endpoint") }

// about says that what (an endpoint named in the message) was refused.
func (e *privateError) about(what string) string {
	return fmt.Sprintf("%s resolves to %s, a private, loopback or link-local address (start bridgeport with --allow-private-endpoints to allow it)", what, e.addr)
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

// PrivateHost reports whether host, as a URL names it (u.Hostname()), is
// one invocations refuse without --allow-private-endpoints: localhost, or
// an IP address in the refused ranges. Other names are not resolved here:
// the dialer checks each address it connects to. For messages only.
func PrivateHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && blocked(a)
}
