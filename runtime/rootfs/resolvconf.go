package rootfs

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containerd/errdefs"
)

// ResolvConfig is what a container's /etc/resolv.conf is made of.
type ResolvConfig struct {
	// HostFile is the host's resolv.conf, nil when it has none. (On a
	// host whose /etc/resolv.conf only names systemd-resolved's stub
	// 127.0.0.53, pass /run/systemd/resolve/resolv.conf, as Docker does.)
	HostFile []byte
	// DNS, Search and Options are the service's dns, dns_search and
	// dns_opt; each replaces what the host file says when given. A
	// Search of "." means no search domains.
	DNS     []string
	Search  []string
	Options []string
	// HostNetwork is network_mode: host: the container shares the host's
	// loopback, so the host's file is used as it is.
	HostNetwork bool
	// IPv6 says the container can reach IPv6 nameservers; without it the
	// host's IPv6 nameservers are left out.
	IPv6 bool
}

// Docker's fallback nameservers (Google Public DNS), used when none of the
// host's can be reached from the container.
const (
	fallbackIPv4 = "8.8.8.8 8.8.4.4"
	fallbackIPv6 = "2001:4860:4860::8888 2001:4860:4860::8844"
)

// ResolvConf returns the content of a container's /etc/resolv.conf, as
// Docker writes it for a network without an internal resolver
// (libnetwork/internal/resolvconf, TransformForLegacyNw):
//
//   - with network_mode: host and no dns, dns_search or dns_opt, the host's
//     file as it is;
//   - otherwise the host's nameservers, search domains and options, each
//     replaced by dns, dns_search and dns_opt when given, and the host's
//     other directives kept. The host's loopback nameservers (127.0.0.0/8,
//     ::1) only answer in the host's network namespace: unless the
//     container shares it or dns is given, they are left out, as are IPv6
//     ones without IPv6; when none remain, 8.8.8.8 and 8.8.4.4 are used.
//
// Every value given is validated: nothing can add a line of its own to the
// file, and lines of the host's file with control characters are dropped.
func ResolvConf(c ResolvConfig) ([]byte, error) {
	var dns []netip.Addr
	for _, s := range c.DNS {
		a, err := netip.ParseAddr(s)
		if err != nil || !validZone(a.Zone()) {
			return nil, fmt.Errorf("%w: dns: %q is not an IP address", errdefs.ErrInvalidArgument, s)
		}
		dns = append(dns, a)
	}
	var search []string
	for _, s := range c.Search {
		if s == "." {
			continue
		}
		if err := validName("dns_search: domain", s); err != nil {
			return nil, err
		}
		search = append(search, s)
	}
	for _, o := range c.Options {
		if !validOption(o) {
			return nil, fmt.Errorf("%w: dns_opt: %q: an option is a word such as ndots:2, edns0 or rotate", errdefs.ErrInvalidArgument, o)
		}
	}
	overridden := len(c.DNS) > 0 || len(c.Search) > 0 || len(c.Options) > 0
	if c.HostNetwork && !overridden {
		return hostLines(c.HostFile), nil
	}

	host := parseResolvConf(c.HostFile)
	nameservers := host.nameservers
	if len(c.DNS) > 0 {
		nameservers = dns
	} else if !c.HostNetwork {
		nameservers = nameservers[:0:0]
		for _, a := range host.nameservers {
			if !a.Unmap().IsLoopback() && (c.IPv6 || !a.Unmap().Is6()) {
				nameservers = append(nameservers, a)
			}
		}
		if len(nameservers) == 0 {
			fallback := fallbackIPv4
			if c.IPv6 {
				fallback += " " + fallbackIPv6
			}
			for s := range strings.FieldsSeq(fallback) {
				nameservers = append(nameservers, netip.MustParseAddr(s))
			}
		}
	}
	if len(c.Search) == 0 {
		search = host.search
	}
	options := host.options
	if len(c.Options) > 0 {
		options = c.Options
	}

	var b bytes.Buffer
	for _, a := range nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	for _, l := range host.other {
		b.WriteString(l + "\n")
	}
	return b.Bytes(), nil
}

// resolvConf is what berth keeps of a host's resolv.conf.
type resolvConf struct {
	nameservers []netip.Addr
	search      []string
	options     []string
	other       []string // directives berth does not interpret, kept as they are
}

// parseResolvConf reads resolv.conf(5) as Docker does: comments start with
// '#' or ';', the last search (or domain) line wins, options accumulate,
// nameservers that are not addresses are dropped.
func parseResolvConf(file []byte) resolvConf {
	var rc resolvConf
	for line := range bytes.Lines(file) {
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if !printable(line) {
			continue
		}
		fields := strings.Fields(string(line))
		if len(fields) == 0 || fields[0][0] == '#' || fields[0][0] == ';' {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) < 2 {
				continue
			}
			if a, err := netip.ParseAddr(fields[1]); err == nil && validZone(a.Zone()) {
				rc.nameservers = append(rc.nameservers, a)
			}
		case "domain", "search":
			// domain is the obsolete spelling of search.
			if len(fields) >= 2 {
				rc.search = fields[1:]
			}
		case "options":
			rc.options = append(rc.options, fields[1:]...)
		default:
			rc.other = append(rc.other, string(line))
		}
	}
	return rc
}

// validZone accepts an IPv6 zone as an interface name or number, or none.
func validZone(z string) bool {
	if len(z) > 64 {
		return false
	}
	for i := 0; i < len(z); i++ {
		c := z[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validOption accepts a resolver option: a word, with an optional ":value".
func validOption(o string) bool {
	if o == "" || len(o) > 255 {
		return false
	}
	for i := 0; i < len(o); i++ {
		c := o[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}
