package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/dnstest"
	"github.com/berth-dev/berth/network"
)

// netObjects lists what berth made on the host for networks (by full
// name) while they are up: their bridges, the veths on them, the tags of
// their firewall rules. Other tests and benchmarks make their own at the
// same time: only these are checked.
func (c *cli) netObjects(networks ...string) []string {
	c.t.Helper()
	var out []string
	links, _ := netlink.LinkList()
	for _, name := range networks {
		id, bridge := c.network(name)
		out = append(out, "link "+bridge, "rule berth:net:"+id[:12])
		for _, l := range links {
			if l.Attrs().Name == bridge {
				for _, m := range links {
					if m.Attrs().MasterIndex == l.Attrs().Index {
						out = append(out, "link "+m.Attrs().Name)
					}
				}
			}
		}
	}
	if len(out) == 2*len(networks) {
		c.t.Errorf("no veth on networks %v: the test does not check what it means to", networks)
	}
	// The rules of the containers' published ports.
	for _, e := range c.ps() {
		out = append(out, "rule berth:port:"+e.ID[:12])
	}
	return out
}

// checkNetGone checks that the objects netObjects listed, and c's network
// namespaces, are gone.
func (c *cli) checkNetGone(objs []string) {
	c.t.Helper()
	rules := ""
	for _, table := range []string{"filter", "nat"} {
		b, _ := exec.Command("iptables", "-t", table, "-S").Output()
		rules += string(b)
	}
	for _, o := range objs {
		kind, name, _ := strings.Cut(o, " ")
		switch kind {
		case "link":
			if _, err := netlink.LinkByName(name); err == nil {
				c.t.Errorf("link %s left", name)
			}
		case "rule":
			if strings.Contains(rules, name) {
				c.t.Errorf("rules %s left", name)
			}
		}
	}
	if ns, _ := os.ReadDir(filepath.Join(c.runDir, "netns")); len(ns) > 0 {
		c.t.Errorf("network namespaces left: %v", ns)
	}
}

// TestServiceDiscovery: every service reaches the others by service name,
// container name, alias and link alias; every replica of a service
// answers its name; a restarted container keeps its name and address; a
// static address is honoured.
func TestServiceDiscovery(t *testing.T) {
	c := newCLI(t, `
name: disco
services:
  web:
    image: busybox
    init: true
    command: ["sh", "-c", "echo hi-from-$$(hostname) > /tmp/index.html; httpd -f -p 80 -h /tmp"]
    scale: 3
    networks:
      default:
        aliases: [frontend]
  db:
    image: busybox
    init: true
    command: ["sh", "-c", "echo db > /tmp/index.html; httpd -f -p 80 -h /tmp"]
    networks:
      default:
        ipv4_address: 10.123.45.10
  client:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    links: ["db:database"]
  sidecar:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    network_mode: service:db
networks:
  default:
    ipam:
      config:
        - subnet: 10.123.45.0/24
`)
	before := c.hostState()
	c.must("up", "-d")
	objs := c.netObjects("disco_default")
	for _, name := range []string{"db", "database", "disco-db-1", "10.123.45.10"} {
		if out, code := c.run("", "exec", "-T", "client", "timeout", "5", "wget", "-qO-", "http://"+name+"/index.html"); code != 0 || out != "db\n" {
			t.Errorf("client -> %s: %d %q", name, code, out)
		}
	}
	out := c.must("exec", "-T", "client", "nslookup", "web")
	if n := len(regexp.MustCompile(`Address: 10\.123\.45\.\d+`).FindAllString(out, -1)); n != 3 {
		t.Errorf("web has %d addresses in DNS, want 3 (one per replica):\n%s", n, out)
	}
	if out, code := c.run("", "exec", "-T", "client", "timeout", "5", "wget", "-qO-", "http://frontend/index.html"); code != 0 || !strings.HasPrefix(out, "hi-from-") {
		t.Errorf("client -> frontend (alias): %d %q", code, out)
	}
	if out, code := c.run("", "exec", "-T", "client", "nslookup", "nosuch-name.invalid"); code == 0 {
		t.Errorf("an unknown name resolved:\n%s", out)
	}
	// network_mode service:db: db's namespace, its loopback included.
	if out, code := c.run("", "exec", "-T", "sidecar", "timeout", "5", "wget", "-qO-", "http://127.0.0.1/index.html"); code != 0 || out != "db\n" {
		t.Errorf("sidecar -> its own loopback (db's): %d %q", code, out)
	}
	// A restarted container keeps its name and address.
	c.must("restart", "db")
	if out, code := c.run("", "exec", "-T", "client", "timeout", "5", "wget", "-qO-", "http://db/index.html"); code != 0 || out != "db\n" {
		t.Errorf("after restart: %d %q", code, out)
	}
	// /etc/hosts names the container on its own address.
	if out := c.must("exec", "-T", "db", "cat", "/etc/hosts"); !strings.Contains(out, "10.123.45.10\t") {
		t.Errorf("/etc/hosts:\n%s", out)
	}
	c.must("down")
	c.checkClean(before)
	c.checkNetGone(objs)
}

// peer plays another host: a network namespace joined to the host by a
// veth pair, 10.250.N.1 on the host's end, 10.250.N.2 on its own.
type peer struct {
	ns       string
	hostAddr string
	addr     string
	link     string
}

func newPeer(t *testing.T, c *cli, n int) *peer {
	t.Helper()
	p := &peer{ns: filepath.Join(c.runDir, fmt.Sprintf("peer%d", n)), hostAddr: fmt.Sprintf("10.250.%d.1", n), addr: fmt.Sprintf("10.250.%d.2", n), link: fmt.Sprintf("bpeer%d", n)}
	if err := network.NewNetNS(p.ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(p.link); err == nil {
			netlink.LinkDel(l)
		}
		network.RemoveNetNS(p.ns)
	})
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	run("ip", "link", "add", p.link, "type", "veth", "peer", "name", p.link+"p")
	run("ip", "link", "set", p.link+"p", "netns", p.ns)
	run("ip", "addr", "add", p.hostAddr+"/24", "dev", p.link)
	run("ip", "link", "set", p.link, "up")
	run("nsenter", "--net="+p.ns, "ip", "addr", "add", p.addr+"/24", "dev", p.link+"p")
	run("nsenter", "--net="+p.ns, "ip", "link", "set", p.link+"p", "up")
	run("nsenter", "--net="+p.ns, "ip", "link", "set", "lo", "up")
	run("nsenter", "--net="+p.ns, "ip", "route", "add", "default", "via", p.hostAddr)
	return p
}

// dial connects from the peer to addr and reads what the server says.
func (p *peer) dial(addr string) (string, error) {
	var got string
	err := network.InNetNS(p.ns, func() error {
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /index.html HTTP/1.0\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(conn)
		got = string(b)
		return err
	})
	return got, err
}

// listen serves "peer" on port in the peer.
func (p *peer) listen(t *testing.T, port int) {
	t.Helper()
	var l net.Listener
	if err := network.InNetNS(p.ns, func() (err error) {
		l, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Write([]byte("peer\n"))
			conn.Close()
		}
	}()
}

// TestPublishedPorts: TCP and UDP ports are reachable at 127.0.0.1 and at
// the host's other addresses, also from another host; a port published on
// 127.0.0.1 is not reachable from another host; a random host port is
// given when none is asked; port prints it.
func TestPublishedPorts(t *testing.T) {
	c := newCLI(t, `
name: ports
services:
  web:
    image: busybox
    init: true
    command: ["sh", "-c", "echo web > /tmp/index.html; httpd -f -p 80 -h /tmp"]
    ports:
      - "18481:80"
      - "127.0.0.1:18482:80"
      - "80"
    extra_hosts: ["host.docker.internal:host-gateway"]
  echo:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    expose: ["443", "53535/udp"]
    ports:
      - "18483:53535/udp"
      - "127.0.0.1:18497-18498:18497-18498"
  ranged:
    image: busybox
    init: true
    command: ["sh", "-c", "echo ranged > /tmp/index.html; httpd -f -p 80 -h /tmp"]
    ports:
      - "18486-18488:80"
  beside:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    network_mode: container:ports-ranged-1
`)
	p := newPeer(t, c, 1)
	before := c.hostState()
	// beside joins ranged by container name: once ranged exists.
	c.must("up", "-d", "web", "echo", "ranged")
	c.must("up", "-d", "beside")
	objs := c.netObjects("ports_default")
	// busybox has no UDP server: the test serves UDP echo inside the echo
	// container's network namespace, where its published port leads.
	var udp net.PacketConn
	if err := network.InNetNS(filepath.Join(c.runDir, "netns", c.ps()["ports-echo-1"].ID), func() (err error) {
		udp, err = net.ListenPacket("udp", ":53535")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			udp.WriteTo(buf[:n], from)
		}
	}()
	get := func(addr string) (string, error) {
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /index.html HTTP/1.0\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(conn)
		return string(b), err
	}
	for _, addr := range []string{"127.0.0.1:18481", p.hostAddr + ":18481", "127.0.0.1:18482"} {
		if out, err := get(addr); err != nil || !strings.HasSuffix(out, "web\n") {
			t.Errorf("%s: %v %q", addr, err, out)
		}
	}
	if out, err := p.dial(p.hostAddr + ":18481"); err != nil || !strings.HasSuffix(out, "web\n") {
		t.Errorf("from another host: %v %q", err, out)
	}
	if out, err := p.dial(p.hostAddr + ":18482"); err == nil {
		t.Errorf("a port published on 127.0.0.1 answered another host: %q", out)
	}
	if out := c.must("port", "web", "80"); out != "0.0.0.0:18481\n" {
		t.Errorf("port web 80: %q", out)
	}
	ps := c.must("ps")
	// "80" alone: a free port of the host's.
	if n := len(regexp.MustCompile(`:\d+->80/tcp`).FindAllString(ps, -1)); n != 4 { // web's 3, ranged's 1
		t.Errorf("%d bindings of port 80, want 4:\n%s", n, ps)
	}
	// An exposed port shows without a host part; one also published,
	// once; consecutive ports published on the same ports, as one range;
	// those published on another port, last (as docker compose).
	if !strings.Contains(ps, "0.0.0.0:18481->80/tcp") || !strings.Contains(ps, "127.0.0.1:18482->80/tcp") ||
		!strings.Contains(ps, "   443/tcp, 127.0.0.1:18497-18498->18497-18498/tcp, 0.0.0.0:18483->53535/udp\n") {
		t.Errorf("ps ports:\n%s", ps)
	}
	// UDP, through the proxy and through DNAT.
	for _, addr := range []string{"127.0.0.1:18483", p.hostAddr + ":18483"} {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		var got string
		for try := 0; try < 5 && got == ""; try++ {
			conn.Write([]byte("ping\n"))
			buf := make([]byte, 64)
			conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if n, err := conn.Read(buf); err == nil {
				got = string(buf[:n])
			}
		}
		conn.Close()
		if got != "ping\n" {
			t.Errorf("udp %s: %q", addr, got)
		}
	}
	// A range: the first free port of it.
	if out := c.must("port", "ranged", "80"); out != "0.0.0.0:18486\n" {
		t.Errorf("port ranged 80: %q", out)
	}
	if out, err := get("127.0.0.1:18486"); err != nil || !strings.HasSuffix(out, "ranged\n") {
		t.Errorf("ranged: %v %q", err, out)
	}
	// network_mode container:NAME: that container's namespace.
	if out, code := c.run("", "exec", "-T", "beside", "timeout", "5", "wget", "-qO-", "http://127.0.0.1/index.html"); code != 0 || out != "ranged\n" {
		t.Errorf("beside -> its own loopback (ranged's): %d %q", code, out)
	}
	// Hairpin: a container reaches its own published port at the host's
	// address on its network (its gateway).
	gw := strings.Fields(c.must("exec", "-T", "web", "ip", "route", "show", "default"))[2]
	// extra_hosts host-gateway: the host as the container reaches it.
	if out := c.must("exec", "-T", "web", "grep", "host.docker.internal", "/etc/hosts"); !strings.HasPrefix(out, gw+"\t") {
		t.Errorf("host-gateway is not %s: %q", gw, out)
	}
	if out, code := c.run("", "exec", "-T", "web", "timeout", "5", "wget", "-qO-", "http://"+gw+":18481/index.html"); code != 0 || out != "web\n" {
		t.Errorf("hairpin through %s:18481: %d %q", gw, code, out)
	}
	// The bridges accept 127.0.0.0/8 (loopback ports are DNATed): a
	// container that routes 127.0.0.1 to its gateway, from its own
	// address, must still not reach the host's loopback services. (On
	// this test's kernel the answer does not get back even without
	// berth's INPUT guard; the guard is for what does not need one, such
	// as a UDP datagram.)
	hostOnly, err := net.Listen("tcp", "127.0.0.1:18485")
	if err != nil {
		t.Fatal(err)
	}
	defer hostOnly.Close()
	go func() {
		for {
			conn, err := hostOnly.Accept()
			if err != nil {
				return
			}
			conn.Write([]byte("host secret\n"))
			conn.Close()
		}
	}()
	web := c.ps()["ports-web-1"].ID
	webNS := filepath.Join(c.runDir, "netns", web)
	webIP := strings.TrimSpace(c.must("exec", "-T", "web", "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1"))
	// (The worst case: the container also accepts 127.0.0.0/8 on its
	// side, so the host's answer would get back to it.)
	for _, args := range [][]string{
		{"sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1", "net.ipv4.conf.eth0.route_localnet=1"},
		{"ip", "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local"},
		{"ip", "route", "del", "local", "127.0.0.1", "dev", "lo", "table", "local"},
		{"ip", "route", "add", "127.0.0.0/8", "via", gw, "dev", "eth0"},
	} {
		if out, err := exec.Command("nsenter", append([]string{"--net=" + webNS}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	if err := network.InNetNS(webNS, func() error {
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(webIP)}}
		conn, err := d.Dial("tcp", "127.0.0.1:18485")
		if err != nil {
			return nil // refused or dropped: what must happen
		}
		defer conn.Close()
		b, _ := io.ReadAll(conn)
		return fmt.Errorf("the container reached the host's loopback: %q", b)
	}); err != nil {
		t.Error(err)
	}
	// A flush of berth's rules while the containers run (what iptables -F
	// does to them): the supervisor puts them back within seconds.
	exec.Command("iptables", "-D", "FORWARD", "-m", "comment", "--comment", "berth:base", "-j", "BERTH-FORWARD").Run()
	exec.Command("iptables", "-t", "nat", "-F", "BERTH-DNAT").Run()
	exec.Command("iptables", "-t", "nat", "-D", "POSTROUTING", "-m", "comment", "--comment", "berth:base", "-j", "BERTH-POSTROUTING").Run()
	eventually(t, 10*time.Second, "rules restored", func() bool {
		nat, _ := exec.Command("iptables", "-t", "nat", "-S").Output()
		filter, _ := exec.Command("iptables", "-S", "FORWARD").Output()
		return strings.Contains(string(nat), "--dport 18481") && strings.Contains(string(nat), "-j BERTH-POSTROUTING") &&
			strings.Contains(string(filter), "-j BERTH-FORWARD")
	})
	if out, err := p.dial(p.hostAddr + ":18481"); err != nil || !strings.HasSuffix(out, "web\n") {
		t.Errorf("from another host after the flush: %v %q", err, out)
	}
	// A taken port fails up before anything is created, naming the port,
	// the service and who holds it.
	l, err := net.Listen("tcp", ":18484")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c.writeCompose(`
name: ports
services:
  web:
    image: busybox
    init: true
    command: ["sh", "-c", "echo web > /tmp/index.html; httpd -f -p 80 -h /tmp"]
    ports: ["18481:80", "127.0.0.1:18482:80", "80"]
  echo:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    ports: ["18483:53535/udp"]
  late:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    ports: ["18484:80"]
`)
	out, code := c.run("", "up", "-d")
	if code == 0 || !strings.Contains(out, "18484") || !strings.Contains(out, `late`) || !strings.Contains(out, "already in use by") {
		t.Errorf("taken port: %d\n%s", code, out)
	}
	if _, ok := c.ps()["ports-late-1"]; ok {
		t.Error("late was created")
	}
	c.must("down", "--remove-orphans")
	c.checkClean(before)
	c.checkNetGone(objs)
}

// TestNetworkIsolation: two networks of a project cannot reach each other
// unless a container joins both; an internal network has no egress; a
// container on a normal network reaches another host, also when the
// FORWARD policy is DROP and a DOCKER-USER chain exists (Docker's layout).
func TestNetworkIsolation(t *testing.T) {
	c := newCLI(t, `
name: iso
services:
  front:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    networks: [frontnet]
  back:
    image: busybox
    init: true
    command: ["sh", "-c", "echo back > /tmp/index.html; httpd -f -p 80 -h /tmp"]
    networks: [backnet]
  both:
    image: busybox
    init: true
    command: ["sh", "-c", "echo both > /tmp/index.html; httpd -f -p 80 -h /tmp"]
    networks:
      frontnet: {}
      backnet:
        priority: 100
        mac_address: "02:42:0a:0b:0c:0d"
  sealed:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    networks: [inner]
networks:
  frontnet: {}
  backnet: {}
  inner:
    internal: true
`)
	p := newPeer(t, c, 2)
	before := c.hostState()
	p.listen(t, 18490)
	// Docker's layout: FORWARD drops by default, DOCKER-USER comes first.
	policy := forwardPolicy(t)
	exec.Command("iptables", "-N", "DOCKER-USER").Run()
	exec.Command("iptables", "-I", "FORWARD", "-j", "DOCKER-USER").Run()
	exec.Command("iptables", "-P", "FORWARD", "DROP").Run()
	t.Cleanup(func() {
		exec.Command("iptables", "-P", "FORWARD", policy).Run()
		exec.Command("iptables", "-D", "FORWARD", "-j", "DOCKER-USER").Run()
		exec.Command("iptables", "-X", "DOCKER-USER").Run()
	})
	c.must("up", "-d")
	objs := c.netObjects("iso_frontnet", "iso_backnet", "iso_inner")
	wget := func(svc, url string) (string, int) {
		// (busybox's wget crashes with -T: timeout bounds it instead.)
		return c.run("", "exec", "-T", svc, "timeout", "3", "wget", "-qO-", url)
	}
	if out, code := wget("front", "http://both/index.html"); code != 0 || out != "both\n" {
		t.Errorf("front -> both: %d %q", code, out)
	}
	if out, code := wget("both", "http://back/index.html"); code != 0 || out != "back\n" {
		t.Errorf("both -> back: %d %q", code, out)
	}
	// priority: backnet first (eth0, the default route), with its
	// mac_address.
	if out := c.must("exec", "-T", "both", "cat", "/sys/class/net/eth0/address"); out != "02:42:0a:0b:0c:0d\n" {
		t.Errorf("both's eth0 (backnet, priority 100): %q", out)
	}
	// front does not even resolve back (other network); by address it
	// cannot reach it either.
	backIP := strings.TrimSpace(c.must("exec", "-T", "back", "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1"))
	if out, code := wget("front", "http://"+backIP+"/index.html"); code == 0 {
		t.Errorf("front reached back at %s across networks: %q", backIP, out)
	}
	// Egress to another host: yes from a normal network, with FORWARD DROP.
	if out, code := c.run("", "exec", "-T", "front", "nc", "-w", "3", p.addr, "18490"); code != 0 || out != "peer\n" {
		t.Errorf("front -> another host: %d %q", code, out)
	}
	// None from an internal one.
	if out, code := c.run("", "exec", "-T", "sealed", "nc", "-w", "2", p.addr, "18490"); code == 0 && out == "peer\n" {
		t.Error("an internal network reached another host")
	}
	c.must("down")
	c.checkClean(before)
	c.checkNetGone(objs)
}

func forwardPolicy(t *testing.T) string {
	out, err := exec.Command("iptables", "-S", "FORWARD").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if p, ok := strings.CutPrefix(l, "-P FORWARD "); ok {
			return strings.TrimSpace(p)
		}
	}
	return "ACCEPT"
}

// TestProjectsIsolated: two projects' networks cannot reach each other;
// a network one project created is shared with another that declares it
// external, whose services then reach the first's by name; down of the
// second leaves the external network alone.
func TestProjectsIsolated(t *testing.T) {
	a := newCLI(t, `
name: proja
services:
  api:
    image: busybox
    init: true
    command: ["sh", "-c", "echo api > /tmp/index.html; httpd -f -p 80 -h /tmp"]
    networks: [default, shared]
networks:
  shared:
    name: proja_shared
`)
	before := a.hostState()
	a.must("up", "-d")
	objs := a.netObjects("proja_default", "proja_shared")
	apiIP := strings.TrimSpace(a.must("exec", "-T", "api", "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1"))

	// The second project shares the first's state (one host, one berth).
	b := newCLI(t, `
name: projb
services:
  joined:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    networks: [default, shared]
    external_links: ["proja-api-1:legacy-api"]
  alone:
    image: busybox
    init: true
    command: ["sleep", "1000"]
networks:
  shared:
    name: proja_shared
    external: true
`)
	b.root, b.runDir, b.cgroup = a.root, a.runDir, a.cgroup
	b.environ = a.environ
	b.must("up", "-d")
	if out, code := b.run("", "exec", "-T", "joined", "timeout", "5", "wget", "-qO-", "http://api/index.html"); code != 0 || out != "api\n" {
		t.Errorf("through the external network, by name: %d %q", code, out)
	}
	// external_links: a name only joined resolves.
	if out, code := b.run("", "exec", "-T", "joined", "timeout", "5", "wget", "-qO-", "http://legacy-api/index.html"); code != 0 || out != "api\n" {
		t.Errorf("through an external link: %d %q", code, out)
	}
	if out, code := a.run("", "exec", "-T", "api", "nslookup", "legacy-api"); code == 0 {
		t.Errorf("another container resolved joined's external link:\n%s", out)
	}
	if out, code := b.run("", "exec", "-T", "alone", "timeout", "3", "wget", "-qO-", "http://"+apiIP+"/index.html"); code == 0 {
		t.Errorf("another project's network reached api at %s: %q", apiIP, out)
	}
	_, shared := a.network("proja_shared")
	b.must("down")
	// The external network stayed: the first project still works.
	if _, err := netlink.LinkByName(shared); err != nil {
		t.Errorf("down of the second project removed the external network: %v", err)
	}
	a.must("down")
	a.checkClean(before)
	a.checkNetGone(objs)
}

// network reads the id and the bridge berth gave a network of c's.
func (c *cli) network(name string) (id, bridge string) {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.root, "networks", name+".json"))
	if err != nil {
		c.t.Fatalf("network %s: %v", name, err)
	}
	var n struct{ ID, Bridge string }
	if err := json.Unmarshal(b, &n); err != nil {
		c.t.Fatal(err)
	}
	return n.ID, n.Bridge
}

// TestDNSServers: with dns: set, a container still resolves the network's
// names (resolv.conf names the embedded DNS, as Docker's does on a
// user-defined network), and its other names are asked of its own
// servers: one on another host, and one on the container's own loopback
// (a resolver the container runs); a container in its network namespace
// (network_mode: service:) asks them too; a container without dns: never
// asks them.
func TestDNSServers(t *testing.T) {
	c := newCLI(t, `
name: dnsfwd
services:
  web:
    image: busybox
    init: true
    command: ["sleep", "1000"]
  client:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    dns: [10.250.3.2]
    dns_search: [example.test]
  local:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    dns: [127.0.0.1]
  sidecar:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    network_mode: service:client
networks:
  default:
    ipam:
      config:
        - subnet: 10.123.47.0/24
`)
	p := newPeer(t, c, 3)
	before := c.hostState()
	remote := serveDNSIn(t, p.ns, p.addr+":53", "outside.test.", "192.0.2.77")
	c.must("up", "-d")
	objs := c.netObjects("dnsfwd_default")
	local := serveDNSIn(t, filepath.Join(c.runDir, "netns", c.ps()["dnsfwd-local-1"].ID), "127.0.0.1:53", "inner.test.", "192.0.2.88")

	resolv := c.must("exec", "-T", "client", "cat", "/etc/resolv.conf")
	if !strings.Contains(resolv, "nameserver 10.123.47.1\n") || strings.Contains(resolv, "10.250.3.2") || !strings.Contains(resolv, "search example.test\n") {
		t.Errorf("client's resolv.conf names the embedded DNS and the dns_search domain only:\n%s", resolv)
	}
	for _, q := range []struct{ svc, name, want string }{
		{"client", "outside.test", "192.0.2.77"},
		// web. without the search domain, which nslookup would try
		// alone: web.example.test is client's server's to answer.
		{"client", "web.", "10.123.47."},
		{"local", "inner.test", "192.0.2.88"},
		{"local", "web", "10.123.47."},
		{"web", "client", "10.123.47."},
		// In client's network namespace, sidecar asks as client.
		{"sidecar", "outside.test", "192.0.2.77"},
	} {
		out, code := c.run("", "exec", "-T", q.svc, "nslookup", q.name)
		if code != 0 || !strings.Contains(out, "Address: "+q.want) {
			t.Errorf("%s: nslookup %s: %d, want an address %s…:\n%s", q.svc, q.name, code, q.want, out)
		}
	}
	// web has no dns: its outside names go to the host's resolvers.
	c.run("", "exec", "-T", "web", "timeout", "10", "nslookup", "outside.test")
	if n := remote.Load(); n != 2 {
		t.Errorf("client's server got %d queries for outside.test, want 2 (client's and sidecar's)", n)
	}
	if n := local.Load(); n != 1 {
		t.Errorf("local's own server got %d queries for inner.test, want 1", n)
	}
	c.must("down")
	c.checkClean(before)
	c.checkNetGone(objs)
}

// serveDNSIn serves DNS over UDP on addr in the network namespace at ns
// until the test ends: name has an A record ip, other names none. It
// counts the queries for name's A record.
func serveDNSIn(t *testing.T, ns, addr, name, ip string) *atomic.Int32 {
	t.Helper()
	var pc net.PacketConn
	if err := network.InNetNS(ns, func() (err error) {
		pc, err = net.ListenPacket("udp", addr)
		return err
	}); err != nil {
		t.Fatalf("DNS server on %s: %v", addr, err)
	}
	var asked atomic.Int32
	dnstest.Serve(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		q := req.Question[0]
		switch {
		case !strings.EqualFold(q.Name, name):
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			asked.Add(1)
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.ParseIP(ip)})
		}
		w.WriteMsg(m)
	}), pc, nil)
	return &asked
}
