package dns

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
)

// maxNameservers is how many nameserver lines glibc's resolver reads
// (MAXNS); the host's programs never ask the others, so neither does the
// server.
const maxNameservers = 3

// Upstreams are the resolvers that the nameserver lines of a resolv.conf
// name, on port 53, in order: the host's resolvers, which the server
// forwards to. Lines that are not valid are skipped, as the libc
// resolver skips them.
func Upstreams(resolvConf []byte) []netip.AddrPort {
	var ups []netip.AddrPort
	sc := bufio.NewScanner(bytes.NewReader(resolvConf))
	// A line longer than the Scanner's buffer ends the scan; the lines
	// read so far are kept.
	for sc.Scan() && len(ups) < maxNameservers {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		// The address may carry a zone (fe80::1%eth0), which a link-local
		// resolver needs.
		ip, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue
		}
		ups = append(ups, netip.AddrPortFrom(ip.Unmap(), 53))
	}
	return ups
}
