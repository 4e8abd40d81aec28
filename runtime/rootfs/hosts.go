package rootfs

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containerd/errdefs"
)

// hostGateway is the extra_hosts address that stands for the host.
const hostGateway = "host-gateway"

// defaultHosts are Docker's first lines of a container's /etc/hosts
// (libnetwork/etchosts).
const defaultHosts = "127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"ff00::0\tip6-mcastprefix\n" +
	"ff02::1\tip6-allnodes\n" +
	"ff02::2\tip6-allrouters\n"

// HostsConfig is what a container's /etc/hosts is made of.
type HostsConfig struct {
	// Hostname and Domainname name the container on its own addresses.
	Hostname   string
	Domainname string
	// ExtraHosts are extra_hosts entries: "name:address" (what compose-go
	// gives the engine) or "name=address"; the address may be in
	// brackets ("[::1]"). An address of "host-gateway" stands for each
	// of HostGateway, and is an error when HostGateway is empty: the
	// caller knows the host's address on the container's network, this
	// package does not.
	ExtraHosts  []string
	HostGateway []netip.Addr
	// Addresses are the container's own addresses on its networks; each
	// gets a line naming the container, after the extra hosts.
	Addresses []netip.Addr
	// HostNetwork is network_mode: host. Without extra hosts the
	// container gets HostFile, the host's /etc/hosts, as it is (nil: the
	// host has none, and the container gets the default lines).
	HostNetwork bool
	HostFile    []byte
}

// Hosts returns the content of a container's /etc/hosts, as Docker writes
// it: localhost and the IPv6 names, one "address<TAB>name" line per extra
// host, then the container's own addresses. With network_mode: host and no
// extra hosts it is the host's file; with extra hosts Docker does not keep
// the host's entries, and neither does berth.
//
// Every name and address is validated: nothing the caller gives can add a
// line of its own to the file.
func Hosts(c HostsConfig) ([]byte, error) {
	if c.Hostname != "" {
		if err := validHostname("hostname", c.Hostname); err != nil {
			return nil, err
		}
	}
	if c.Domainname != "" {
		if err := validHostname("domainname", c.Domainname); err != nil {
			return nil, err
		}
	}
	extra, err := parseExtraHosts(c.ExtraHosts, c.HostGateway)
	if err != nil {
		return nil, err
	}
	if c.HostNetwork && len(extra) == 0 && c.HostFile != nil {
		return hostLines(c.HostFile), nil
	}

	var b bytes.Buffer
	b.WriteString(defaultHosts)
	for _, e := range extra {
		fmt.Fprintf(&b, "%s\t%s\n", e.addr, e.name)
	}
	if len(c.Addresses) > 0 && !c.HostNetwork {
		if c.Hostname == "" {
			return nil, fmt.Errorf("%w: the container has addresses but no hostname", errdefs.ErrInvalidArgument)
		}
		// The full name and the bare one, so that both resolve
		// (libnetwork's updateHostsFile).
		names := c.Hostname
		if c.Domainname != "" {
			names += "." + c.Domainname
		}
		if short, _, ok := strings.Cut(names, "."); ok {
			names += " " + short
		}
		for _, a := range c.Addresses {
			if !a.IsValid() || a.Zone() != "" {
				return nil, fmt.Errorf("%w: container address %q", errdefs.ErrInvalidArgument, a)
			}
			fmt.Fprintf(&b, "%s\t%s\n", a, names)
		}
	}
	return b.Bytes(), nil
}

// Hostname returns the content of a container's /etc/hostname: the
// hostname alone, as Docker writes it (the domain name is not part of it).
func Hostname(hostname string) ([]byte, error) {
	if err := validHostname("hostname", hostname); err != nil {
		return nil, err
	}
	return []byte(hostname + "\n"), nil
}

type extraHost struct {
	name string
	addr netip.Addr
}

// parseExtraHosts reads extra_hosts entries as compose-go does: split at
// the first '=' if there is one, else at the first ':' (a host name has
// neither, an IPv6 address has colons), brackets around the address
// dropped.
func parseExtraHosts(entries []string, gateway []netip.Addr) ([]extraHost, error) {
	var out []extraHost
	for _, e := range entries {
		sep := ":"
		if strings.Contains(e, "=") {
			sep = "="
		}
		name, addr, ok := strings.Cut(e, sep)
		if !ok {
			return nil, fmt.Errorf("%w: extra_hosts: %q has no address: write \"name:address\"", errdefs.ErrInvalidArgument, e)
		}
		if err := validName("extra_hosts: host name", name); err != nil {
			return nil, err
		}
		if len(addr) > 2 && addr[0] == '[' && addr[len(addr)-1] == ']' {
			addr = addr[1 : len(addr)-1]
		}
		if addr == hostGateway {
			if len(gateway) == 0 {
				return nil, fmt.Errorf("%w: extra_hosts: %q: host-gateway is not available on this container's network", errdefs.ErrNotImplemented, e)
			}
			for _, g := range gateway {
				if !g.IsValid() || g.Zone() != "" {
					return nil, fmt.Errorf("%w: host gateway address %q", errdefs.ErrInvalidArgument, g)
				}
				out = append(out, extraHost{name, g})
			}
			continue
		}
		a, err := netip.ParseAddr(addr)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%w: extra_hosts: %q: %q is not an IP address", errdefs.ErrInvalidArgument, e, addr)
		}
		out = append(out, extraHost{name, a})
	}
	return out, nil
}

// maxHostname is the kernel's HOST_NAME_MAX, the limit of sethostname(2)
// and setdomainname(2).
const maxHostname = 64

func validHostname(what, s string) error {
	if err := validName(what, s); err != nil {
		return err
	}
	if len(s) > maxHostname || strings.HasSuffix(s, ".") {
		return fmt.Errorf("%w: %s %q: at most %d characters, letters, digits, '-', '_' and '.'", errdefs.ErrInvalidArgument, what, s, maxHostname)
	}
	return nil
}

// validName accepts a DNS name as it may appear in /etc/hosts and
// resolv.conf: labels of letters, digits, '-' and '_', separated by dots,
// at most 253 characters with an optional final dot. Anything else
// (blanks, '#', control characters) would change the meaning of the file.
func validName(what, s string) error {
	bad := fmt.Errorf("%w: %s %q: use letters, digits, '-', '_' and '.'", errdefs.ErrInvalidArgument, what, s)
	name := strings.TrimSuffix(s, ".")
	if name == "" || len(name) > 253 {
		return bad
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return bad
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return bad
			}
		}
	}
	return nil
}

// hostLines returns a host file's lines as they are, without those that
// hold control characters (a NUL, a lone carriage return): berth copies the
// host's configuration, never bytes that could confuse a parser in the
// container.
func hostLines(file []byte) []byte {
	var b bytes.Buffer
	for line := range bytes.Lines(file) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if printable(line) {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// printable reports whether a line holds no control characters but tabs.
func printable(line []byte) bool {
	for _, c := range line {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
