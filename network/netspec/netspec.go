// Package netspec describes networks and their endpoints as data: what
// the compose verbs ask of the network package, which does it on Linux.
// It holds no Linux code, so that compose knows networks without knowing
// namespaces (the layering test checks it).
package netspec

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is a network as a compose file declares it.
type Config struct {
	Name       string            `json:"name"`
	Project    string            `json:"project,omitempty"`
	Internal   bool              `json:"internal,omitempty"`
	Attachable bool              `json:"attachable,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// Subnet, Gateway and IPRange come from ipam.config; a subnet is
	// picked from the default pools when Subnet is not valid, and the
	// gateway is its first address when Gateway is not.
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	IPRange netip.Prefix `json:"ipRange"`
}

// Network is a network berth created.
type Network struct {
	Config
	ID      string    `json:"id"`
	Bridge  string    `json:"bridge"`
	Created time.Time `json:"created"`
	// Endpoints are the containers attached, by container id.
	Endpoints map[string]Endpoint `json:"endpoints,omitempty"`
}

// Endpoint is a container's attachment to a network.
type Endpoint struct {
	ContainerID string `json:"containerId"`
	Name        string `json:"name"` // the container's
	Service     string `json:"service,omitempty"`
	// Aliases are the other names it answers to on the network: its
	// service, hostname, aliases, links aliases.
	Aliases []string   `json:"aliases,omitempty"`
	IP      netip.Addr `json:"ip"`
	MAC     string     `json:"mac"`
	// Links are names only this container resolves, to another
	// container's name (external_links "name:alias").
	Links map[string]string `json:"links,omitempty"`
	// DNS are the container's own resolvers (dns:), which the embedded
	// DNS forwards its outside names to instead of the host's.
	DNS []netip.Addr `json:"dns,omitempty"`
}

// EndpointRequest asks for a container's attachment to a network.
type EndpointRequest struct {
	Network     string
	ContainerID string
	Name        string
	Service     string
	Aliases     []string
	IP          netip.Addr // ipv4_address; any free one when not valid
	MAC         string     // mac_address; derived from the address when empty
	Links       map[string]string
	DNS         []netip.Addr // dns
}

// Lookup is what the embedded DNS of a network answers for name: the
// addresses of the containers whose name, service or alias it is (every
// replica of a service).
func (n *Network) Lookup(name string) []netip.Addr {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	var out []netip.Addr
	for _, id := range slices.Sorted(maps.Keys(n.Endpoints)) {
		e := n.Endpoints[id]
		if strings.EqualFold(e.Name, name) || slices.ContainsFunc(e.Aliases, func(a string) bool { return strings.EqualFold(a, name) }) {
			out = append(out, e.IP)
		}
	}
	return out
}

// FreePort finds a free host port of protocol on hostIP: what a port
// published without a host port gets.
func FreePort(ctx context.Context, protocol string, hostIP netip.Addr) (int, error) {
	host := ""
	if hostIP.IsValid() && !hostIP.IsUnspecified() {
		host = hostIP.String()
	}
	var lc net.ListenConfig
	if protocol == "udp" {
		c, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PortHolder names the process that holds a host port, for the error of a
// port taken: "nginx (pid 123)", or "" when it cannot be found (another
// network namespace, or not allowed to look).
func PortHolder(protocol string, port int) string {
	var inodes []string
	for _, f := range []string{"/proc/net/" + protocol, "/proc/net/" + protocol + "6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 {
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			p, err := strconv.ParseUint(hexPort, 16, 16)
			// TCP: listening (0A) only; UDP: any bound socket.
			if err != nil || int(p) != port || protocol == "tcp" && fields[3] != "0A" {
				continue
			}
			inodes = append(inodes, "socket:["+fields[9]+"]")
		}
	}
	if len(inodes) == 0 {
		return ""
	}
	procs, _ := os.ReadDir("/proc")
	for _, pe := range procs {
		pid, err := strconv.Atoi(pe.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && slices.Contains(inodes, target) {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
				return fmt.Sprintf("%s (pid %d)", strings.TrimSpace(string(comm)), pid)
			}
		}
	}
	return ""
}
