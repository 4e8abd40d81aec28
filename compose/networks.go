package compose

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/network/netspec"
	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/spec"
)

// NetworkManager is what the verbs need of the network package.
type NetworkManager interface {
	Create(ctx context.Context, cfg netspec.Config) (*netspec.Network, bool, error)
	Get(name string) (*netspec.Network, error)
	Remove(ctx context.Context, name string) error
	Allocate(ctx context.Context, r netspec.EndpointRequest) (netspec.Endpoint, error)
	Release(ctx context.Context, containerID string) error
	NetNSPath(containerID string) string
	List() ([]*netspec.Network, error)
}

// serviceNetworks are the keys of the project networks a service joins,
// by priority (highest first) then name: the default network when it
// names none and has no network_mode.
func serviceNetworks(svc types.ServiceConfig) []string {
	if svc.NetworkMode != "" && svc.NetworkMode != "bridge" {
		return nil
	}
	if len(svc.Networks) == 0 {
		return []string{"default"}
	}
	keys := slices.Sorted(maps.Keys(svc.Networks))
	slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(priority(svc, b), priority(svc, a)) })
	return keys
}

func priority(svc types.ServiceConfig, key string) int {
	if c := svc.Networks[key]; c != nil {
		return max(c.Priority, c.GatewayPriority)
	}
	return 0
}

// networkConfig turns a project network into the network package's.
func networkConfig(p *types.Project, key string) (netspec.Config, error) {
	n, ok := p.Networks[key]
	if !ok {
		return netspec.Config{}, &project.Error{Err: fmt.Errorf("%w: network %q is not declared", errdefs.ErrNotFound, key)}
	}
	name := n.Name
	if name == "" {
		name = p.Name + "_" + key
	}
	if n.Driver != "" && n.Driver != "bridge" {
		return netspec.Config{}, &project.Error{Key: "networks." + key + ".driver",
			Err: fmt.Errorf("%w: driver %q: berth makes bridge networks", errdefs.ErrNotImplemented, n.Driver)}
	}
	cfg := netspec.Config{Name: name, Project: p.Name, Internal: n.Internal, Attachable: n.Attachable, Labels: map[string]string{}}
	maps.Copy(cfg.Labels, n.Labels)
	cfg.Labels[ProjectLabel] = p.Name
	cfg.Labels[networkLabel] = key
	if len(n.Ipam.Config) > 0 && n.Ipam.Config[0] != nil {
		pool := n.Ipam.Config[0]
		var err error
		if pool.Subnet != "" {
			if cfg.Subnet, err = netip.ParsePrefix(pool.Subnet); err != nil {
				return cfg, &project.Error{Key: "networks." + key + ".ipam.config.subnet", Err: fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)}
			}
		}
		if pool.Gateway != "" {
			if cfg.Gateway, err = netip.ParseAddr(pool.Gateway); err != nil {
				return cfg, &project.Error{Key: "networks." + key + ".ipam.config.gateway", Err: fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)}
			}
		}
		if pool.IPRange != "" {
			if cfg.IPRange, err = netip.ParsePrefix(pool.IPRange); err != nil {
				return cfg, &project.Error{Key: "networks." + key + ".ipam.config.ip_range", Err: fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)}
			}
		}
	}
	return cfg, nil
}

// ensureNetworks creates the networks the services join (an external one
// must exist), in name order, and reports those it created.
func ensureNetworks(ctx context.Context, p *types.Project, services []string, nm NetworkManager, progress func(Progress)) error {
	keys := map[string]bool{}
	for _, s := range services {
		for _, k := range serviceNetworks(p.Services[s]) {
			keys[k] = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		cfg, err := networkConfig(p, key)
		if err != nil {
			return err
		}
		if n, ok := p.Networks[key]; ok && bool(n.External) {
			if _, err := nm.Get(cfg.Name); err != nil {
				if errdefs.IsNotFound(err) {
					return fmt.Errorf("network %s declared as external, but could not be found: %w", cfg.Name, errdefs.ErrNotFound)
				}
				return err
			}
			continue
		}
		res := "Network " + cfg.Name
		n, err := nm.Get(cfg.Name)
		if err == nil && n.Project != "" && n.Project != p.Name {
			return fmt.Errorf("%w: network %s belongs to project %s: declare it external to share it", errdefs.ErrConflict, cfg.Name, n.Project)
		}
		if err != nil {
			progress(Progress{Resource: res, Status: StatusCreating})
		}
		_, created, err := nm.Create(ctx, cfg)
		if err != nil {
			progress(Progress{Resource: res, Status: StatusError, Err: err})
			return err
		}
		if created {
			progress(Progress{Resource: res, Status: StatusCreated})
		}
	}
	return nil
}

// removeNetworks removes the project's networks (never external ones);
// one still in use is a warning, as in docker compose.
func removeNetworks(ctx context.Context, p *types.Project, nm NetworkManager, progress func(Progress), warn func(string)) error {
	for _, key := range slices.Sorted(maps.Keys(p.Networks)) {
		if p.Networks[key].External {
			continue
		}
		cfg, err := networkConfig(p, key)
		if err != nil {
			continue
		}
		if _, err := nm.Get(cfg.Name); err != nil {
			continue
		}
		res := "Network " + cfg.Name
		progress(Progress{Resource: res, Status: StatusRemoving})
		if err := nm.Remove(ctx, cfg.Name); err != nil {
			if errdefs.IsFailedPrecondition(err) {
				warn(err.Error())
				continue
			}
			progress(Progress{Resource: res, Status: StatusError, Err: err})
			return err
		}
		progress(Progress{Resource: res, Status: StatusRemoved})
	}
	return nil
}

// linkAliases are the names other services give svc with links
// ("db:database" in web makes db answer to database too).
func linkAliases(p *types.Project, svc string) []string {
	var out []string
	for _, s := range p.Services {
		for _, l := range s.Links {
			target, alias, ok := strings.Cut(l, ":")
			if ok && target == svc && alias != "" && !slices.Contains(out, alias) {
				out = append(out, alias)
			}
		}
	}
	slices.Sort(out)
	return out
}

// connect gives container c of service svc its networks: an endpoint (an
// address) on each, its network namespace's path, the embedded DNS as
// its resolver (unless the service sets dns), and its published ports.
// On failure, what was allocated is released.
// connectOptions say what connect gives a container beyond its
// addresses: its published ports (publish); for a one-off container, the
// service's name and aliases (useAliases, run --use-aliases).
type connectOptions struct {
	publish, useAliases bool
	// claims, when not nil, are the host ports already given out to the
	// containers made alongside (up's replicas, created at once).
	claims *portClaims
}

// portClaims are the host ports of ranges given out during one command,
// so that replicas created at once, each taking a free port of the range,
// take different ones: a port is free until its container starts, and
// the replicas start after they are all made.
type portClaims struct {
	mu    sync.Mutex
	taken map[string]bool // "tcp/8080"
}

// claim takes a port for a container unless another took it first.
func (pc *portClaims) claim(proto string, port int) bool {
	if pc == nil {
		return true
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	key := proto + "/" + strconv.Itoa(port)
	if pc.taken[key] {
		return false
	}
	if pc.taken == nil {
		pc.taken = map[string]bool{}
	}
	pc.taken[key] = true
	return true
}

func connect(ctx context.Context, p *types.Project, svc types.ServiceConfig, c *spec.Container, nm NetworkManager, o connectOptions) (retErr error) {
	if c.NetworkMode == "container" {
		return shareNetwork(p, svc, c, nm)
	}
	keys := serviceNetworks(svc)
	if len(keys) == 0 {
		return nil
	}
	defer func() {
		if retErr != nil {
			nm.Release(context.WithoutCancel(ctx), c.ID)
		}
	}()
	// The embedded DNS answers the network's names and forwards the
	// others to the service's dns servers, or else the host's, as
	// Docker's does on user-defined networks: naming the dns servers in
	// resolv.conf would cut the container off from the network's names.
	servers, err := dnsServers(svc)
	if err != nil {
		return err
	}
	c.NetworkMode = "bridge"
	c.NetNS = nm.NetNSPath(c.ID)
	for _, key := range keys {
		cfg, err := networkConfig(p, key)
		if err != nil {
			return err
		}
		n, err := nm.Get(cfg.Name)
		if err != nil {
			return fmt.Errorf("service %q: network %s: %w", svc.Name, cfg.Name, err)
		}
		r := netspec.EndpointRequest{Network: n.Name, ContainerID: c.ID, Name: c.Name, Service: svc.Name, MAC: svc.MacAddress, DNS: servers}
		r.Aliases = append(r.Aliases, svc.Name, c.ID[:12])
		if c.Hostname != "" && c.Hostname != c.ID[:12] {
			r.Aliases = append(r.Aliases, c.Hostname)
		}
		r.Aliases = append(r.Aliases, linkAliases(p, svc.Name)...)
		if sn := svc.Networks[key]; sn != nil {
			r.Aliases = append(r.Aliases, sn.Aliases...)
			if sn.MacAddress != "" {
				r.MAC = sn.MacAddress
			}
			if sn.Ipv4Address != "" {
				if r.IP, err = netip.ParseAddr(sn.Ipv4Address); err != nil {
					return &project.Error{Service: svc.Name, Key: "networks." + key + ".ipv4_address", Err: fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)}
				}
			}
		}
		for _, l := range svc.ExternalLinks {
			target, alias, _ := strings.Cut(l, ":")
			if r.Links == nil {
				r.Links = map[string]string{}
			}
			r.Links[cmp.Or(alias, target)] = target
		}
		if c.Labels[OneoffLabel] == "True" && !o.useAliases {
			// A one-off container answers to its own name only.
			r.Aliases = []string{c.ID[:12]}
		}
		ep, err := nm.Allocate(ctx, r)
		if err != nil {
			return &project.Error{Service: svc.Name, Key: "networks." + key, Err: err}
		}
		c.Networks = append(c.Networks, spec.NetworkAttachment{Network: n.Name, Priority: priority(svc, key), IP: ep.IP, Gateway: n.Gateway, Internal: n.Internal})
	}
	c.DNS = []string{c.Networks[0].Gateway.String()}
	if !o.publish {
		return nil
	}
	for _, pc := range svc.Ports {
		ports, err := publishedPorts(ctx, svc, pc, o.claims)
		if err != nil {
			return err
		}
		c.Ports = append(c.Ports, ports...)
	}
	return nil
}

// dnsServers are the addresses of a service's dns servers.
func dnsServers(svc types.ServiceConfig) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range svc.DNS {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, &project.Error{Service: svc.Name, Key: "dns", Err: fmt.Errorf("%w: %q is not an IP address", errdefs.ErrInvalidArgument, s)}
		}
		out = append(out, a)
	}
	return out, nil
}

// shareNetwork puts c in the network namespace of another container
// (network_mode service:NAME, its first replica; or container:NAME, a
// container of berth's by name or id), which must have one of its own
// (bridged). c asks the other's resolver.
func shareNetwork(p *types.Project, svc types.ServiceConfig, c *spec.Container, nm NetworkManager) error {
	target, isService := strings.CutPrefix(svc.NetworkMode, types.NetworkModeServicePrefix)
	if !isService {
		target = strings.TrimPrefix(svc.NetworkMode, types.NetworkModeContainerPrefix)
	}
	fail := func(format string, a ...any) error {
		return &project.Error{Service: svc.Name, Key: "network_mode", Err: fmt.Errorf(format, a...)}
	}
	var id string
	var dns []string
	if isService {
		other, ok := p.Services[target]
		if !ok {
			return fail("%w: no such service: %s", errdefs.ErrNotFound, target)
		}
		if keys := serviceNetworks(other); len(keys) == 0 {
			return fail("%w: service %s has network_mode %q: only a service with networks of its own can share them", errdefs.ErrNotImplemented, target, other.NetworkMode)
		} else if cfg, err := networkConfig(p, keys[0]); err == nil {
			// The other's embedded DNS, which forwards to the other's
			// dns servers: c asks from the other's address.
			if n, err := nm.Get(cfg.Name); err == nil {
				dns = []string{n.Gateway.String()}
			}
		}
		id = ContainerID(p.Name, target, 1)
	} else {
		// A berth container by id, or by name (found among the
		// endpoints of the networks).
		id = target
		if nets, err := nm.List(); err == nil {
			for _, n := range nets {
				for cid, ep := range n.Endpoints {
					if ep.Name == target {
						id = cid
					}
				}
			}
		}
	}
	path := nm.NetNSPath(id)
	if _, err := os.Stat(path); err != nil {
		return fail("%w: %s has no network namespace of its own (is it created, on a network?)", errdefs.ErrFailedPrecondition, target)
	}
	c.NetNS = path
	if len(svc.DNS) == 0 && dns != nil {
		c.DNS = dns
	}
	return nil
}

// publishedPorts resolves one ports entry: a host port for each container
// port (any free one when none is given, or a free one of a range).
func publishedPorts(ctx context.Context, svc types.ServiceConfig, pc types.ServicePortConfig, claims *portClaims) ([]spec.Port, error) {
	proto := cmp.Or(strings.ToLower(pc.Protocol), "tcp")
	if proto != "tcp" && proto != "udp" {
		return nil, &project.Error{Service: svc.Name, Key: "ports", Err: fmt.Errorf("%w: protocol %q: use tcp or udp", errdefs.ErrNotImplemented, pc.Protocol)}
	}
	var hostIP netip.Addr
	if pc.HostIP != "" {
		var err error
		if hostIP, err = netip.ParseAddr(pc.HostIP); err != nil {
			return nil, &project.Error{Service: svc.Name, Key: "ports", Err: fmt.Errorf("%w: host_ip %q: %w", errdefs.ErrInvalidArgument, pc.HostIP, err)}
		}
		if !hostIP.Is4() {
			return nil, &project.Error{Service: svc.Name, Key: "ports", Err: fmt.Errorf("%w: host_ip %s: only IPv4 is supported", errdefs.ErrNotImplemented, hostIP)}
		}
	}
	p := spec.Port{HostIP: pc.HostIP, ContainerPort: int(pc.Target), Protocol: proto}
	lo, hi := 0, 0
	if pc.Published != "" {
		a, b, isRange := strings.Cut(pc.Published, "-")
		var err1, err2 error
		lo, err1 = strconv.Atoi(a)
		hi = lo
		if isRange {
			hi, err2 = strconv.Atoi(b)
		}
		if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || hi < lo {
			return nil, &project.Error{Service: svc.Name, Key: "ports", Err: fmt.Errorf("%w: published port %q", errdefs.ErrInvalidArgument, pc.Published)}
		}
	}
	switch {
	case lo == 0:
		port, err := netspec.FreePort(ctx, proto, hostIP)
		if err != nil {
			return nil, fmt.Errorf("service %q: finding a free port: %w", svc.Name, err)
		}
		p.HostPort = port
	case lo == hi:
		p.HostPort = lo
	default:
		for port := lo; port <= hi; port++ {
			if portFree(proto, hostIP, port) && claims.claim(proto, port) {
				p.HostPort = port
				break
			}
		}
		if p.HostPort == 0 {
			return nil, &project.Error{Service: svc.Name, Key: "ports", Err: fmt.Errorf("%w: no free host port in %s/%s", errdefs.ErrConflict, pc.Published, proto)}
		}
	}
	return []spec.Port{p}, nil
}

// portFree reports whether a host port can be bound now.
func portFree(proto string, hostIP netip.Addr, port int) bool {
	host := ""
	if hostIP.IsValid() && !hostIP.IsUnspecified() {
		host = hostIP.String()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if proto == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// checkPorts fails, before anything is created, when a fixed host port
// that services are about to publish is taken by something else than
// the project's own containers (held tells those).
func checkPorts(p *types.Project, services []string, held []spec.Port) error {
	type published struct {
		service string
		ip      netip.Addr // unspecified: all the host's addresses
		port    int
		proto   string
	}
	overlap := func(a, b published) bool {
		return a.port == b.port && a.proto == b.proto &&
			(!a.ip.IsValid() || !b.ip.IsValid() || a.ip.IsUnspecified() || b.ip.IsUnspecified() || a.ip == b.ip)
	}
	var seen []published
	for _, name := range services {
		svc := p.Services[name]
		for _, pc := range svc.Ports {
			if pc.Published == "" || strings.Contains(pc.Published, "-") {
				continue
			}
			port, err := strconv.Atoi(pc.Published)
			if err != nil {
				continue
			}
			ip, _ := netip.ParseAddr(pc.HostIP)
			this := published{name, ip, port, cmp.Or(strings.ToLower(pc.Protocol), "tcp")}
			where := cmp.Or(pc.HostIP, "0.0.0.0")
			if n := svc.GetScale(); n > 1 {
				return &project.Error{Service: name, Key: "ports", Err: fmt.Errorf("%w: host port %s:%d/%s cannot be published by each of its %d replicas: give a range (%d-%d:%d) or no host port", errdefs.ErrConflict, where, port, this.proto, n, port, port+n-1, pc.Target)}
			}
			if i := slices.IndexFunc(seen, func(o published) bool { return overlap(o, this) }); i >= 0 {
				return &project.Error{Service: name, Key: "ports", Err: fmt.Errorf("%w: host port %s:%d/%s is also published by service %q", errdefs.ErrConflict, where, port, this.proto, seen[i].service)}
			}
			seen = append(seen, this)
			if slices.ContainsFunc(held, func(h spec.Port) bool {
				hip, _ := netip.ParseAddr(h.HostIP)
				return overlap(published{ip: hip, port: h.HostPort, proto: h.Protocol}, this)
			}) {
				continue
			}
			if portFree(this.proto, ip, port) {
				continue
			}
			msg := fmt.Sprintf("host port %s:%d/%s is already in use", where, port, this.proto)
			if holder := netspec.PortHolder(this.proto, port); holder != "" {
				msg += " by " + holder
			}
			return &project.Error{Service: name, Key: "ports", Err: fmt.Errorf("%w: %s", errdefs.ErrConflict, msg)}
		}
	}
	return nil
}
