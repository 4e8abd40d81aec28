package network

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/spec"
)

// hostPrefixes are the subnets the host already uses: its routes and the
// networks of its addresses (Docker's bridges among them), which a new
// network must not overlap.
func hostPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue // the default route overlaps everything and nothing
		}
		if p, ok := prefixOf(r.Dst); ok && p.Bits() > 0 {
			out = append(out, p)
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok {
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// ensure makes a network's bridge (up, with the gateway address) and its
// rules, where they are missing: after a reboot, or a flush of the
// firewall.
func (m *Manager) ensure(n *Network) error {
	fw, rs, err := m.firewall(false)
	if err != nil {
		return err
	}
	// A bridge without an address of its own takes the lowest of its
	// ports': it would change whenever a container leaves, and the
	// others would keep sending to the old one (their ARP caches) for
	// up to a minute, cut off from the gateway and the DNS server on it.
	// Docker sets one too.
	mac, err := net.ParseMAC(macOf(n.Gateway))
	if err != nil {
		return fmt.Errorf("network %s: gateway %s: %w", n.Name, n.Gateway, err)
	}
	link, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge, Alias: "berth:" + n.Name, HardwareAddr: mac}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("network %s: creating bridge %s: %w", n.Name, n.Bridge, err)
		}
		if link, err = netlink.LinkByName(n.Bridge); err != nil {
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
	}
	if !bytes.Equal(link.Attrs().HardwareAddr, mac) {
		// A bridge an earlier berth made without one.
		if err := netlink.LinkSetHardwareAddr(link, mac); err != nil {
			return fmt.Errorf("network %s: setting the MAC address of %s: %w", n.Name, n.Bridge, err)
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.Gateway.AsSlice(), Mask: net.CIDRMask(n.Subnet.Bits(), 32)}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("network %s: setting %s on %s: %w", n.Name, addr, n.Bridge, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	// Connections from the host's loopback to published ports are
	// DNATed to the bridge (see ensureBase for the guard that goes with
	// it).
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+n.Bridge+"/route_localnet", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	return fw.ensureRules(networkRules(n), rs)
}

// EnsureRules puts back the firewall rules of networks (a flush of the
// tables while containers run) and of the ports published for them. It
// looks at the jumps into berth's chains first (two iptables calls) and
// does the rest only when one is gone.
func (m *Manager) EnsureRules(nets []*Network, ports []PortRule) error {
	fw, _, err := m.firewall(false)
	if err != nil {
		return err
	}
	var want []rule
	for _, n := range nets {
		want = append(want, networkRules(n)...)
	}
	for _, p := range ports {
		want = append(want, p.rules()...)
	}
	if fw.intact(want) {
		return nil
	}
	fw, rs, err := m.firewall(true)
	if err != nil {
		return err
	}
	return fw.ensureRules(want, rs)
}

// teardown removes what ensure made.
func (m *Manager) teardown(n *Network) error {
	var errs []error
	if fw, _, err := m.firewall(false); err == nil {
		errs = append(errs, fw.removeTagged("net:"+n.ID[:12]))
	}
	if link, err := netlink.LinkByName(n.Bridge); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("network %s: deleting bridge %s: %w", n.Name, n.Bridge, err))
		}
	}
	return errors.Join(errs...)
}

// vethName is the host end of a container's attachment to a network:
// "vt" and 13 hex digits (15 characters, the kernel's limit).
func vethName(containerID, network string) string {
	h := sha256.Sum256([]byte(containerID + "\x00" + network))
	return "vt" + hex.EncodeToString(h[:])[:13]
}

// Attachment is one of a container's networks, as Attach sets it up.
type Attachment struct {
	Network  string
	Priority int
}

// Attach makes the container's network namespace (bound at NetNSPath)
// unless it exists, and gives it an interface on each network (eth0, eth1,
// ... by priority, then name) with its endpoint's address, and a default
// route through the first network that is not internal. It is idempotent:
// a start after a stop finds everything in place.
func (m *Manager) Attach(ctx context.Context, containerID string, atts []Attachment) (retErr error) {
	path := m.NetNSPath(containerID)
	if _, err := os.Stat(path); err == nil {
		if ok, _ := isNetNS(path); ok {
			return nil
		}
	}
	atts = slices.Clone(atts)
	slices.SortStableFunc(atts, func(a, b Attachment) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		if a.Network < b.Network {
			return -1
		}
		if a.Network > b.Network {
			return 1
		}
		return 0
	})
	// One netlink socket for the host's side (the package's functions
	// open one per request).
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	var nets []*Network
	var bridges []netlink.Link
	for _, a := range atts {
		n, err := m.Get(a.Network)
		if err != nil {
			return err
		}
		if _, ok := n.Endpoints[containerID]; !ok {
			return fmt.Errorf("network %s: container %s has no address on it", n.Name, containerID)
		}
		// Its rules came with the bridge (and the supervisors put them
		// back after a flush): only a bridge gone with a reboot is made
		// again here.
		br, err := h.LinkByName(n.Bridge)
		if err != nil {
			if err := m.ensure(n); err != nil {
				return err
			}
			if br, err = h.LinkByName(n.Bridge); err != nil {
				return fmt.Errorf("network %s: %w", n.Name, err)
			}
		}
		nets = append(nets, n)
		bridges = append(bridges, br)
	}
	if err := newNetNS(path); err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			m.Detach(context.WithoutCancel(ctx), containerID, atts)
		}
	}()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in the container's namespace: %w", err)
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := nh.LinkSetUp(lo); err != nil {
		return err
	}
	routed := false
	for i, n := range nets {
		ep := n.Endpoints[containerID]
		host := vethName(containerID, n.Name)
		name := fmt.Sprintf("eth%d", i)
		if old, err := h.LinkByName(host); err == nil {
			h.LinkDel(old) // left by a crash
		}
		br := bridges[i]
		// The container's end is made in its namespace, with its name
		// and MAC: moving an interface between namespaces waits for an
		// RCU grace period (~20 ms here) while holding the kernel's
		// network configuration lock, which serialised every start.
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: host, MasterIndex: br.Attrs().Index, MTU: br.Attrs().MTU},
			PeerName:      name,
			PeerNamespace: netlink.NsFd(int(ns)),
			PeerMTU:       uint32(br.Attrs().MTU),
		}
		if ep.MAC != "" {
			mac, err := net.ParseMAC(ep.MAC)
			if err != nil {
				return fmt.Errorf("network %s: mac_address %s: %w", n.Name, ep.MAC, err)
			}
			veth.PeerHardwareAddr = mac
		}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("network %s: creating %s (mac_address %q): %w", n.Name, host, ep.MAC, err)
		}
		hostLink, err := h.LinkByName(host)
		if err != nil {
			return err
		}
		// A container may reach itself through a published port.
		h.LinkSetHairpin(hostLink, true)
		if err := h.LinkSetUp(hostLink); err != nil {
			return err
		}
		inner, err := nh.LinkByName(name)
		if err != nil {
			return err
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: ep.IP.AsSlice(), Mask: net.CIDRMask(n.Subnet.Bits(), 32)}}
		if err := nh.AddrAdd(inner, addr); err != nil {
			return fmt.Errorf("network %s: address %s: %w", n.Name, addr, err)
		}
		if err := nh.LinkSetUp(inner); err != nil {
			return err
		}
		if !routed && !n.Internal {
			route := &netlink.Route{LinkIndex: inner.Attrs().Index, Gw: n.Gateway.AsSlice()}
			if err := nh.RouteAdd(route); err != nil {
				return fmt.Errorf("network %s: default route: %w", n.Name, err)
			}
			routed = true
		}
	}
	return nil
}

// Detach removes the container's interfaces and its network namespace.
// Its addresses stay its own until Release.
func (m *Manager) Detach(ctx context.Context, containerID string, atts []Attachment) error {
	var errs []error
	for _, a := range atts {
		if link, err := netlink.LinkByName(vethName(containerID, a.Network)); err == nil {
			if err := netlink.LinkDel(link); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := removeNetNS(m.NetNSPath(containerID)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// newNetNS makes a network namespace bound at path, without entering it
// (the calling thread goes back to its own).
func newNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	f.Close()
	if err := onThrowawayThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("network namespace: %w", err)
		}
		if err := writeNetNSDefaults(); err != nil {
			return err
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("network namespace: binding it at %s: %w", path, err)
		}
		return nil
	}); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// writeNetNSDefaults writes spec.NetNSSysctls into the network namespace
// of the calling thread (/proc/sys/net is the namespace of whoever looks
// it up): once per namespace here, instead of by libcontainer's init at
// every start of its container, through its hardened /proc. The
// container's own sysctls are written after them, at its start.
func writeNetNSDefaults() error {
	for k, v := range spec.NetNSSysctls() {
		path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
			return fmt.Errorf("network namespace: sysctl %s: %w", k, err)
		}
	}
	return nil
}

// onThrowawayThread runs fn, which changes its thread's namespaces, on a
// thread that is thrown away afterwards (a goroutine that exits locked to
// its thread ends the thread). Never on the process's main thread: Go
// keeps that one, and /proc/self/ns/* names its namespaces, which
// libcontainer takes for the host's.
func onThrowawayThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Holding the main thread, this goroutine makes sure the
			// next one runs on another: a locked thread runs only its
			// own goroutine. The main thread is then given back as it
			// was.
			err := onThrowawayThread(fn)
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// InNetNS runs fn on a thread in the network namespace at path (a socket
// fn makes stays in that namespace). Tests use it to play another host.
func InNetNS(path string, fn func() error) error {
	return onThrowawayThread(func() error {
		ns, err := netns.GetFromPath(path)
		if err != nil {
			return err
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			return err
		}
		return fn()
	})
}

// DialIn is a dial function that connects from the network namespace at
// path: the embedded DNS reaches a resolver on a container's own loopback
// with it.
func DialIn(path string) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (c net.Conn, err error) {
		err = InNetNS(path, func() error {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, address)
			return err
		})
		return c, err
	}
}

// NewNetNS makes a network namespace bound at path; RemoveNetNS removes
// it. Tests use them to play another host.
func NewNetNS(path string) error    { return newNetNS(path) }
func RemoveNetNS(path string) error { return removeNetNS(path) }

// isNetNS reports whether path is a bound network namespace.
func isNetNS(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// removeNetNS unbinds and removes a network namespace: it goes once no
// process is in it.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
