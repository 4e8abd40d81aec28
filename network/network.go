// Package network gives containers the networks docker compose gives
// them: one Linux bridge per network, a veth per container attachment,
// addresses from IPAM, iptables rules for egress, isolation and published
// ports, and the names the embedded DNS answers.
//
// A network's state is a JSON file under the manager's root, changed under
// one lock for all networks (an address or a subnet is never given twice).
// Everything berth creates on the host is named from the network's or the
// container's id (bridges brt-<hex>, veths vt<hex>) and its firewall rules
// carry a "berth:" comment, so that berth only ever removes its own.
package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/flock"
	"github.com/berth-dev/berth/network/netspec"
)

// The network package's data, defined where compose can use it.
type (
	Config          = netspec.Config
	Network         = netspec.Network
	Endpoint        = netspec.Endpoint
	EndpointRequest = netspec.EndpointRequest
)

// Manager creates networks and attaches containers to them.
type Manager struct {
	root string // the networks' state
	run  string // network namespaces of containers

	fwOnce sync.Once
	fw     *firewall // made once: iptables is a process per call
	fwErr  error
	based  bool // the base chains were checked by this process
	baseMu sync.Mutex
}

// New returns a manager keeping state under root (BERTH_ROOT/networks)
// and network namespaces under run (BERTH_RUN/netns).
func New(root, run string) (*Manager, error) {
	for _, d := range []string{root, run} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	return &Manager{root: root, run: run}, nil
}

// NetNSPath is where the network namespace of a container is bound.
func (m *Manager) NetNSPath(containerID string) string { return filepath.Join(m.run, containerID) }

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func (m *Manager) path(name string) string { return filepath.Join(m.root, name+".json") }

// lock serialises every change of every network.
func (m *Manager) lock(ctx context.Context) (func(), error) {
	return flock.Lock(ctx, filepath.Join(m.root, ".lock"))
}

// Get returns a network; errdefs.ErrNotFound when there is none.
func (m *Manager) Get(name string) (*Network, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("%w: invalid network name %q", errdefs.ErrInvalidArgument, name)
	}
	b, err := os.ReadFile(m.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("network %s: %w", name, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var n Network
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("network %s: %w", name, err)
	}
	if n.Endpoints == nil {
		n.Endpoints = map[string]Endpoint{}
	}
	return &n, nil
}

// List returns every network berth created, by name.
func (m *Manager) List() ([]*Network, error) {
	entries, err := os.ReadDir(m.root)
	if err != nil {
		return nil, err
	}
	var out []*Network
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		if n, err := m.Get(name); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

func (m *Manager) save(n *Network) error {
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(m.path(n.Name), 0o600, b)
}

// idOf is a network's id: the SHA-256 of the manager's state directory
// and the network's name, 64 hex digits like Docker's ids. The directory
// takes part so that two berth installations on one host (two
// BERTH_ROOTs) never share a bridge or a rule tag, even for networks of
// the same name.
func (m *Manager) idOf(name string) string {
	h := sha256.Sum256([]byte("berth network\x00" + m.root + "\x00" + name))
	return hex.EncodeToString(h[:])
}

// Create creates a network (its bridge and rules), or returns the one of
// that name, made again on the host if a reboot took it away. created says
// whether it is new.
func (m *Manager) Create(ctx context.Context, cfg Config) (_ *Network, created bool, retErr error) {
	if !validName.MatchString(cfg.Name) {
		return nil, false, fmt.Errorf("%w: invalid network name %q", errdefs.ErrInvalidArgument, cfg.Name)
	}
	unlock, err := m.lock(ctx)
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	if n, err := m.Get(cfg.Name); err == nil {
		return n, false, m.ensure(n)
	} else if !errdefs.IsNotFound(err) {
		return nil, false, err
	}
	all, err := m.List()
	if err != nil {
		return nil, false, err
	}
	taken, err := hostPrefixes()
	if err != nil {
		return nil, false, err
	}
	for _, o := range all {
		taken = append(taken, o.Subnet)
	}
	if cfg.Subnet.IsValid() {
		cfg.Subnet = cfg.Subnet.Masked()
		if !cfg.Subnet.Addr().Is4() {
			return nil, false, fmt.Errorf("%w: network %s: only IPv4 subnets are supported", errdefs.ErrNotImplemented, cfg.Name)
		}
		for _, o := range all {
			if overlaps(o.Subnet, cfg.Subnet) {
				return nil, false, fmt.Errorf("%w: network %s: subnet %s overlaps network %s (%s)", errdefs.ErrConflict, cfg.Name, cfg.Subnet, o.Name, o.Subnet)
			}
		}
	} else {
		if cfg.Subnet, err = pickSubnet(taken); err != nil {
			return nil, false, fmt.Errorf("network %s: %w", cfg.Name, err)
		}
	}
	if !cfg.Gateway.IsValid() {
		cfg.Gateway = cfg.Subnet.Addr().Next()
	} else if !cfg.Subnet.Contains(cfg.Gateway) {
		return nil, false, fmt.Errorf("%w: network %s: gateway %s is not in subnet %s", errdefs.ErrInvalidArgument, cfg.Name, cfg.Gateway, cfg.Subnet)
	}
	if cfg.IPRange.IsValid() && !(cfg.Subnet.Contains(cfg.IPRange.Addr()) && cfg.IPRange.Bits() >= cfg.Subnet.Bits()) {
		return nil, false, fmt.Errorf("%w: network %s: ip_range %s is not in subnet %s", errdefs.ErrInvalidArgument, cfg.Name, cfg.IPRange, cfg.Subnet)
	}
	id := m.idOf(cfg.Name)
	n := &Network{Config: cfg, ID: id, Bridge: "brt-" + id[:11], Created: time.Now().UTC(), Endpoints: map[string]Endpoint{}}
	defer func() {
		if retErr != nil {
			m.teardown(n)
		}
	}()
	if err := m.ensure(n); err != nil {
		return nil, false, err
	}
	if err := m.save(n); err != nil {
		return nil, false, err
	}
	return n, true, nil
}

// Remove removes a network: its rules, its bridge, its state. A network
// containers still use is an errdefs.ErrFailedPrecondition naming them.
func (m *Manager) Remove(ctx context.Context, name string) error {
	unlock, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	n, err := m.Get(name)
	if err != nil {
		return err
	}
	if len(n.Endpoints) > 0 {
		var names []string
		for _, e := range n.Endpoints {
			names = append(names, e.Name)
		}
		slices.Sort(names)
		return fmt.Errorf("%w: network %s is in use by %s", errdefs.ErrFailedPrecondition, name, strings.Join(names, ", "))
	}
	if err := m.teardown(n); err != nil {
		return err
	}
	if err := os.Remove(m.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Allocate gives a container its address on a network (the same one if it
// has one already) and records the endpoint.
func (m *Manager) Allocate(ctx context.Context, r EndpointRequest) (Endpoint, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return Endpoint{}, err
	}
	defer unlock()
	n, err := m.Get(r.Network)
	if err != nil {
		return Endpoint{}, err
	}
	ep, ok := n.Endpoints[r.ContainerID]
	if !ok || (r.IP.IsValid() && ep.IP != r.IP) {
		var used []netip.Addr
		for id, e := range n.Endpoints {
			if id != r.ContainerID {
				used = append(used, e.IP)
			}
		}
		ip := r.IP
		switch {
		case !ip.IsValid():
			if ip, err = nextAddr(n.Subnet, n.IPRange, n.Gateway, used); err != nil {
				return Endpoint{}, fmt.Errorf("network %s: %w", n.Name, err)
			}
		case !n.Subnet.Contains(ip) || ip == n.Gateway || ip == n.Subnet.Addr() || ip == lastAddr(n.Subnet):
			return Endpoint{}, fmt.Errorf("%w: ipv4_address %s is not usable on network %s (%s, gateway %s)", errdefs.ErrInvalidArgument, ip, n.Name, n.Subnet, n.Gateway)
		case slices.Contains(used, ip):
			return Endpoint{}, fmt.Errorf("%w: ipv4_address %s is taken on network %s", errdefs.ErrConflict, ip, n.Name)
		}
		ep.IP = ip
	}
	ep.ContainerID, ep.Name, ep.Service, ep.Aliases, ep.Links, ep.DNS = r.ContainerID, r.Name, r.Service, r.Aliases, r.Links, r.DNS
	ep.MAC = r.MAC
	if ep.MAC == "" {
		ep.MAC = macOf(ep.IP)
	}
	n.Endpoints[r.ContainerID] = ep
	return ep, m.save(n)
}

// Release forgets a container's endpoints on every network.
func (m *Manager) Release(ctx context.Context, containerID string) error {
	unlock, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	all, err := m.List()
	if err != nil {
		return err
	}
	for _, n := range all {
		if _, ok := n.Endpoints[containerID]; ok {
			delete(n.Endpoints, containerID)
			if err := m.save(n); err != nil {
				return err
			}
		}
	}
	return nil
}
