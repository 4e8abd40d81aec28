package network

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/network/netspec"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("these tests need root")
		}
		t.Skip("needs root")
	}
}

// hostNet is what berth can leave on the host: links and iptables rules.
func hostNet(t *testing.T) string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		out = append(out, l.Attrs().Name)
	}
	for _, table := range []string{"filter", "nat"} {
		b, _ := exec.Command("iptables", "-t", table, "-S").Output()
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "berth:") && !strings.Contains(l, "berth:base") {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}

func newManager(t *testing.T) *Manager {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	run, err := os.MkdirTemp("/run", "berth-nettest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	m, err := New(filepath.Join(dir, "networks"), run)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// inNS runs a command in a container's network namespace.
func inNS(t *testing.T, m *Manager, id string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + m.NetNSPath(id)}, args...)...).CombinedOutput()
	return string(out), err
}

func TestNetworkLifecycle(t *testing.T) {
	m := newManager(t)
	before := hostNet(t)
	hostPorts, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	name := fmt.Sprintf("nt%d_default", time.Now().UnixNano()%1e6)
	n, created, err := m.Create(ctx, Config{Name: name, Project: "nt"})
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	t.Cleanup(func() { m.Remove(ctx, name) })
	if n2, created, err := m.Create(ctx, Config{Name: name}); err != nil || created || n2.Subnet != n.Subnet {
		t.Errorf("second create: %v %v %v", n2, created, err)
	}
	if len(n.Bridge) > 15 || !n.Subnet.Contains(n.Gateway) {
		t.Errorf("network %+v", n)
	}
	// A second network gets another subnet.
	other, _, err := m.Create(ctx, Config{Name: name + "2", Internal: true, Subnet: netip.MustParsePrefix("10.231.7.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Remove(ctx, other.Name) })
	if _, _, err := m.Create(ctx, Config{Name: name + "3", Subnet: netip.MustParsePrefix("10.231.7.128/25")}); err == nil {
		t.Error("an overlapping subnet was accepted")
	}

	a, err := m.Allocate(ctx, EndpointRequest{Network: name, ContainerID: "aaaaaaaaaaaaaaaa", Name: "p-a-1", Service: "a", Aliases: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Allocate(ctx, EndpointRequest{Network: name, ContainerID: "bbbbbbbbbbbbbbbb", Name: "p-b-1", Service: "b", Aliases: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := m.Allocate(ctx, EndpointRequest{Network: name, ContainerID: "aaaaaaaaaaaaaaaa", Name: "p-a-1"}); again.IP != a.IP {
		t.Errorf("a second allocation moved the address: %v -> %v", a.IP, again.IP)
	}
	static := netip.MustParseAddr("10.231.7.50")
	if _, err := m.Allocate(ctx, EndpointRequest{Network: other.Name, ContainerID: "aaaaaaaaaaaaaaaa", Name: "p-a-1", IP: static}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Allocate(ctx, EndpointRequest{Network: other.Name, ContainerID: "cccccccccccccccc", Name: "p-c-1", IP: static}); err == nil {
		t.Error("a taken static address was given twice")
	}
	// Also when the test fails: whatever it attached goes (Detach and
	// Release are idempotent), before the networks' removal (deferred
	// above, so run after these cleanups).
	t.Cleanup(func() {
		for _, id := range []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"} {
			m.Detach(ctx, id, []Attachment{{Network: name}, {Network: other.Name}})
			m.Release(ctx, id)
		}
		m.Unpublish("bbbbbbbbbbbbbbbb")
		m.Remove(ctx, name)
		m.Remove(ctx, other.Name)
	})
	if err := m.Attach(ctx, "aaaaaaaaaaaaaaaa", []Attachment{{Network: name}, {Network: other.Name}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Attach(ctx, "bbbbbbbbbbbbbbbb", []Attachment{{Network: name}}); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if err := m.Attach(ctx, "bbbbbbbbbbbbbbbb", []Attachment{{Network: name}}); err != nil {
		t.Fatal(err)
	}
	out, err := inNS(t, m, "aaaaaaaaaaaaaaaa", "ip", "-br", "addr")
	if err != nil || !strings.Contains(out, a.IP.String()) || !strings.Contains(out, "10.231.7.50") {
		t.Errorf("a's addresses: %v\n%s", err, out)
	}
	// Docker's sysctls in the namespace, the host's left as they were.
	out, err = inNS(t, m, "aaaaaaaaaaaaaaaa", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start", "/proc/sys/net/ipv4/ping_group_range")
	if err != nil || !regexp.MustCompile(`^0\n0\s+2147483647\n$`).MatchString(out) {
		t.Errorf("a's sysctls: %v\n%s", err, out)
	}
	if host, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err != nil || string(host) != string(hostPorts) {
		t.Errorf("the host's ip_unprivileged_port_start: %q %v, was %q", host, err, hostPorts)
	}
	bl := listenIn(t, m.NetNSPath("bbbbbbbbbbbbbbbb"), "tcp", ":7000")
	defer bl.Close()
	if err := dialIn(m.NetNSPath("aaaaaaaaaaaaaaaa"), b.IP.String()+":7000"); err != nil {
		t.Errorf("a cannot reach b: %v", err)
	}
	// The host reaches b through the bridge.
	if c, err := net.DialTimeout("tcp", b.IP.String()+":7000", 2*time.Second); err != nil {
		t.Errorf("the host cannot reach b: %v", err)
	} else {
		c.Close()
	}
	got := n.Lookup("B.")
	if n, _ = m.Get(name); len(n.Lookup("b")) != 1 || n.Lookup("b")[0] != b.IP || len(got) != 0 {
		t.Errorf("lookup b: %v", n.Lookup("b"))
	}
	if err := m.Remove(ctx, name); err == nil || !strings.Contains(err.Error(), "in use by p-a-1, p-b-1") {
		t.Errorf("removing a network in use: %v", err)
	}

	// A published port: DNAT from the host's other addresses, the proxy
	// on loopback.
	port, err := netspec.FreePort(ctx, "tcp", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	pr := PortRule{ContainerID: "bbbbbbbbbbbbbbbb", Bridge: n.Bridge, HostPort: port, ContainerIP: b.IP, ContainerPort: 7000, Protocol: "tcp"}
	if err := m.Publish([]PortRule{pr}); err != nil {
		t.Fatal(err)
	}
	px, err := ListenProxy(pr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ListenProxy(pr); err == nil || netspec.PortHolder("tcp", port) == "" {
		t.Errorf("a port held twice, or its holder not found: %v %q", err, netspec.PortHolder("tcp", port))
	}
	addrs := []string{"127.0.0.1"}
	if a := hostAddress(t); a != "" {
		addrs = append(addrs, a)
	}
	for _, addr := range addrs {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, fmt.Sprint(port)), 2*time.Second)
		if err != nil {
			t.Errorf("published port at %s: %v", addr, err)
			continue
		}
		buf := make([]byte, 2)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
			t.Errorf("published port at %s: %q %v", addr, buf, err)
		}
		c.Close()
	}
	px.Close()
	if err := m.Unpublish("bbbbbbbbbbbbbbbb"); err != nil {
		t.Error(err)
	}
	// The bridge has an address of its own, which stays as containers
	// leave (without one it takes its ports' lowest, and the containers
	// left would send to one that is gone).
	bridgeMAC := func() string {
		t.Helper()
		l, err := netlink.LinkByName(n.Bridge)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().HardwareAddr.String()
	}
	if got := bridgeMAC(); got != macOf(n.Gateway) {
		t.Errorf("bridge MAC %s, want %s", got, macOf(n.Gateway))
	}
	for _, id := range []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"} {
		atts := []Attachment{{Network: name}}
		if id[0] == 'a' {
			atts = append(atts, Attachment{Network: other.Name})
		}
		if err := m.Detach(ctx, id, atts); err != nil {
			t.Error(err)
		}
		if got := bridgeMAC(); got != macOf(n.Gateway) {
			t.Errorf("bridge MAC %s once %s left, want %s", got, id, macOf(n.Gateway))
		}
		if err := m.Release(ctx, id); err != nil {
			t.Error(err)
		}
	}
	for _, nn := range []string{name, other.Name} {
		if err := m.Remove(ctx, nn); err != nil {
			t.Error(err)
		}
	}
	if after := hostNet(t); after != before {
		t.Errorf("host changed:\n%s\n---\n%s", before, after)
	}
}

// listenIn listens in a network namespace (a socket stays in the
// namespace it was made in).
func listenIn(t *testing.T, path, network, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	if err := InNetNS(path, func() (err error) { l, err = net.Listen(network, addr); return err }); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	return l
}

func dialIn(path, addr string) error {
	return InNetNS(path, func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// hostAddress is an address of the host that is not loopback, if any.
func hostAddress(t *testing.T) string {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() && !strings.HasPrefix(a.Label, "brt-") && a.IP.To4() != nil {
			if l, err := netlink.LinkByIndex(a.LinkIndex); err == nil && !strings.HasPrefix(l.Attrs().Name, "brt-") {
				return a.IP.String()
			}
		}
	}
	return ""
}
