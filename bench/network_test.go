package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/runtime/supervisor"
	"github.com/berth-dev/berth/tests/hoststate"
)

// The published-port benchmarks measure what a published port costs
// against going straight to the container's address. The real berth
// binary runs `up -d` of a project of one busybox service that publishes
// its port 8080 on a host port berth picks; the server is a Go HTTP server
// of this process whose listening socket is made inside the container's
// network namespace (network.InNetNS), so that both ends are the same code
// on every path and only the way between them differs:
//
//   - direct: to the container's address, through its network's bridge;
//   - dnat: to the published port on the host's own non-loopback address
//     (that of the default route's interface): iptables DNAT in berth's
//     chains (nat OUTPUT for the host's own connections, PREROUTING for
//     other hosts'), then the bridge;
//   - proxy: to the published port on 127.0.0.1, where DNAT cannot lead:
//     the userland proxy in the project's supervisor process, which copies
//     between a loopback connection and one to the container (io.Copy
//     between TCP connections, which splices).
//
// BenchmarkPublishedPort/transfer/<path>: one GET of a 1 GiB body (a
// 1 MiB buffer written 1024 times from memory, read by the client into a
// 1 MiB buffer and dropped) per op; MB/s.
// BenchmarkPublishedPort/http/<path>: 16,000 keep-alive HTTP/1.1 GETs of
// a 3-byte body per op, by 8 goroutines over 8 connections; req/s.
//
// Every op of dnat and proxy is paired with the same work on the direct
// path, untimed, before it or after it in turn (the http ops in 8 rounds
// of 2,000 requests, each round paired); "ratio-vs-direct" is the direct
// path's time over this path's in those pairs: this path's throughput as
// a fraction of the direct one's, measured side by side (this machine is
// shared, and the figures of separate runs move more than the ratio).
// "cpu-ms/op" is the CPU time of this process (client and server) during
// the timed part, "supervisor-cpu-ms/op" that of the project's supervisor
// over the whole sub-benchmark, direct rounds included (they do not pass
// through it): /proc/<pid>/stat utime+stime, without the iptables
// processes it runs every 2 s to check its rules (their time is its
// children's). At rest it is about 20 ms per second.
//
// loopback-nat, only with BERTH_BENCH_LOOPBACK_NAT=1, is an experiment:
// what 127.0.0.1 would give if berth led it to the container by NAT as it
// does the other addresses (as Docker does with --userland-proxy=false):
// for the time of the sub-benchmark, route_localnet=1 on the network's
// bridge, a DNAT rule in nat OUTPUT for 127.0.0.1 and the published port,
// and a MASQUERADE rule in nat POSTROUTING for 127.0.0.0/8 leaving by the
// bridge (both commented "berth-bench-loopback-nat"); the proxy still
// holds the port, and no connection reaches it.
//
// The project is brought up once per run of BenchmarkPublishedPort (each
// -count) and brought down at the end, checking that its supervisor left,
// that no container, mount or cgroup is left, and that its network
// namespace, bridge and firewall rules are gone.

const (
	transferBytes   = 1 << 30
	transferChunk   = 1 << 20
	httpRequests    = 16000 // per op
	httpRounds      = 8     // per op, for the pairing with the direct path
	httpConcurrency = 8
)

func BenchmarkPublishedPort(b *testing.B) {
	needRoot(b)
	needTool(b, "iptables", "iptables")
	f := newPortsProject(b)
	paths := []struct{ name, addr, skip string }{
		{"direct", f.direct, ""},
		{"dnat", f.dnat, f.noDNAT},
		{"loopback", f.proxy, ""}, // 127.0.0.1: kernel DNAT since 51b6d9a, the proxy before
		{"loopback-nat", f.proxy, f.noLoopbackNAT()},
	}
	for _, kind := range []string{"transfer", "http"} {
		b.Run(kind, func(b *testing.B) {
			for _, p := range paths {
				b.Run(p.name, func(b *testing.B) {
					if p.skip != "" {
						b.Skip(p.skip)
					}
					if p.name == "loopback-nat" {
						f.loopbackNAT(b)
					}
					if kind == "transfer" {
						f.benchTransfer(b, p.addr)
					} else {
						f.benchHTTP(b, p.addr)
					}
				})
			}
		})
	}
}

// portsProject is the running project and the server in its container.
type portsProject struct {
	*upProject // the project directory and its berth state

	supervisor int    // pid of the project's supervisor
	bridge     string // the project network's bridge
	container  string // the container's id

	direct, dnat, proxy string // host:port of each path
	noDNAT              string // why there is no dnat path, if there is none

	// clients by address, kept between sub-benchmarks (their connections
	// stay open: keep-alive).
	clients map[string]*http.Client
}

const portsProjectName = "benchports"

func newPortsProject(b *testing.B) *portsProject {
	b.Helper()
	f := &portsProject{upProject: newBerthProject(b, portsProjectName, "name: "+portsProjectName+`
services:
  web:
    image: busybox
    init: true
    command: ["sleep", "100000"]
    healthcheck:
      disable: true
    ports: ["8080"]
`, "busybox"), clients: map[string]*http.Client{}}
	before, err := hoststate.Of(f.cgroup, f.root, f.run)
	if err != nil {
		b.Fatal(err)
	}

	// Registered before up: whatever up left is brought down, also when
	// the benchmark fails.
	var srv *http.Server
	b.Cleanup(func() { f.down(srv, before) })
	if out, err := f.berth("up", "-d"); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	f.container = f.containerID()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if f.supervisor, err = supervisor.NewClient(filepath.Join(f.run, "projects", portsProjectName), nil).Ping(ctx); err != nil {
		b.Fatalf("after up -d, no supervisor answers: %v", err)
	}

	// The server, in the container's network namespace.
	var l net.Listener
	if err := network.InNetNS(filepath.Join(f.run, "netns", f.container), func() (err error) {
		l, err = net.Listen("tcp", ":8080")
		return err
	}); err != nil {
		b.Fatal(err)
	}
	srv = &http.Server{Handler: portsHandler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)

	// The paths.
	ip, bridge := f.containerAddr()
	f.bridge = bridge
	f.direct = net.JoinHostPort(ip.String(), "8080")
	out, err := f.berth("port", "web", "8080")
	if err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	_, port, err := net.SplitHostPort(strings.TrimSpace(out))
	if err != nil {
		b.Fatalf("berth port web 8080: %q: %v", out, err)
	}
	f.proxy = net.JoinHostPort("127.0.0.1", port)
	if host, why := hostAddress(); host.IsValid() {
		f.dnat = net.JoinHostPort(host.String(), port)
	} else {
		f.noDNAT = "no dnat path: " + why
	}
	b.Logf("direct %s (bridge %s), dnat %s, proxy %s; supervisor pid %d", f.direct, f.bridge, f.dnat, f.proxy, f.supervisor)
	// Each path must serve before anything is timed.
	for _, addr := range []string{f.direct, f.dnat, f.proxy} {
		if addr == "" {
			continue
		}
		if err := f.get(addr, "/small", nil); err != nil {
			b.Fatalf("%s: %v", addr, err)
		}
	}
	return f
}

// down stops the server, brings the project down and checks that nothing
// is left of it.
func (f *portsProject) down(srv *http.Server, before string) {
	b := f.b
	for _, c := range f.clients {
		c.CloseIdleConnections()
	}
	if srv != nil {
		srv.Close()
	}
	if out, err := f.berth("down", "-t", "1"); err != nil {
		b.Errorf("%v: %s", err, out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.supervisor != 0 && time.Now().Before(deadline) && procAlive(f.supervisor) {
		time.Sleep(20 * time.Millisecond)
	}
	if f.supervisor != 0 && procAlive(f.supervisor) {
		b.Errorf("the supervisor (pid %d) did not leave within 5 s of down", f.supervisor)
		if p, err := os.FindProcess(f.supervisor); err == nil {
			p.Kill()
		}
	}
	if out, err := f.berth("ps", "-a", "--format", "json"); err != nil || strings.TrimSpace(out) != "" && strings.TrimSpace(out) != "[]" {
		b.Errorf("after down, ps -a: %v: %s", err, out)
	}
	if after, err := hoststate.Of(f.cgroup, f.root, f.run); err != nil || after != before {
		b.Errorf("after down, the host changed (%v):\n%s\n---\n%s", err, before, after)
	}
	if ns, _ := os.ReadDir(filepath.Join(f.run, "netns")); len(ns) != 0 {
		b.Errorf("after down, %d network namespaces are left", len(ns))
	}
	if f.bridge != "" {
		if _, err := net.InterfaceByName(f.bridge); err == nil {
			b.Errorf("after down, the bridge %s is left", f.bridge)
		}
	}
	if f.container != "" {
		for _, table := range []string{"filter", "nat"} {
			out, _ := exec.Command("iptables", "-t", table, "-S").Output()
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, "berth:port:"+f.container[:12]) || f.bridge != "" && strings.Contains(l, f.bridge) ||
					strings.Contains(l, "berth-bench-loopback-nat") {
					b.Errorf("after down, a rule is left: iptables -t %s %s", table, l)
				}
			}
		}
	}
}

func procAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// containerID is the id of the web service's container, which must run.
func (f *portsProject) containerID() string {
	out, err := f.berth("ps", "--format", "json")
	if err != nil {
		f.b.Fatalf("%v: %s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e struct{ ID, Service, State string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Service == "web" && e.State == "running" && len(e.ID) >= 12 {
			return e.ID
		}
	}
	f.b.Fatalf("after up -d, web has no running container: ps lists\n%s", out)
	return ""
}

// containerAddr reads the container's address and its network's bridge in
// berth's network state.
func (f *portsProject) containerAddr() (netip.Addr, string) {
	m, err := network.New(filepath.Join(f.root, "networks"), filepath.Join(f.run, "netns"))
	if err != nil {
		f.b.Fatal(err)
	}
	nets, err := m.List()
	if err != nil {
		f.b.Fatal(err)
	}
	for _, n := range nets {
		if ep, ok := n.Endpoints[f.container]; ok && ep.IP.IsValid() {
			return ep.IP, n.Bridge
		}
	}
	f.b.Fatalf("container %s is on no network", f.container)
	return netip.Addr{}, ""
}

// hostAddress is an IPv4 address of the host's that is not loopback:
// that of the default route's interface, else of any interface but
// berth's bridges and veths (and the tests' peers); or why there is none.
func hostAddress() (netip.Addr, string) {
	var dflt string
	if b, err := os.ReadFile("/proc/net/route"); err == nil {
		for _, l := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(l); len(f) > 7 && f[1] == "00000000" && f[7] == "00000000" {
				dflt = f[0]
				break
			}
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return netip.Addr{}, err.Error()
	}
	addrOf := func(ifc net.Interface) netip.Addr {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			return netip.Addr{}
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && p.Addr().IsGlobalUnicast() {
				return p.Addr()
			}
		}
		return netip.Addr{}
	}
	for _, ifc := range ifs {
		if ifc.Name == dflt {
			if a := addrOf(ifc); a.IsValid() {
				return a, ""
			}
		}
	}
	for _, ifc := range ifs {
		if strings.HasPrefix(ifc.Name, "brt-") || strings.HasPrefix(ifc.Name, "vt") || strings.HasPrefix(ifc.Name, "bpeer") {
			continue
		}
		if a := addrOf(ifc); a.IsValid() {
			return a, ""
		}
	}
	return netip.Addr{}, "the host has no IPv4 address but loopback and berth's bridges"
}

// portsHandler serves /small (3 bytes) and /big (1 GiB from memory).
func portsHandler() http.Handler {
	chunk := bytes.Repeat([]byte("berth ports benchmark\n"), transferChunk/22+1)[:transferChunk]
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(transferBytes))
		for range transferBytes / transferChunk {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	return mux
}

// client is the keep-alive HTTP client of addr.
func (f *portsProject) client(addr string) *http.Client {
	if c, ok := f.clients[addr]; ok {
		return c
	}
	c := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: httpConcurrency,
		DisableCompression:  true,
		ReadBufferSize:      64 << 10,
		WriteBufferSize:     4 << 10,
	}, Timeout: 5 * time.Minute}
	f.clients[addr] = c
	return c
}

// get GETs path from addr and reads the whole body into buf (a small one
// when nil), checking its length.
func (f *portsProject) get(addr, path string, buf []byte) error {
	resp, err := f.client(addr).Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if buf == nil {
		buf = make([]byte, 512)
	}
	var n int64
	for {
		m, err := resp.Body.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("GET %s: after %d bytes: %w", path, n, err)
		}
	}
	if n != resp.ContentLength {
		return fmt.Errorf("GET %s: %d bytes, want %d", path, n, resp.ContentLength)
	}
	return nil
}

// requests makes n GETs of /small on addr by httpConcurrency goroutines.
func (f *portsProject) requests(addr string, n int) error {
	var wg sync.WaitGroup
	errs := make([]error, httpConcurrency)
	for g := range httpConcurrency {
		wg.Go(func() {
			buf := make([]byte, 512)
			for range n / httpConcurrency {
				if errs[g] = f.get(addr, "/small", buf); errs[g] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// benchTransfer: an op is one GET of the 1 GiB body.
func (f *portsProject) benchTransfer(b *testing.B, addr string) {
	buf := make([]byte, transferChunk)
	b.SetBytes(transferBytes)
	f.benchPaired(b, addr, 1, func(addr string) error { return f.get(addr, "/big", buf) }, "")
}

// benchHTTP: an op is httpRequests GETs, in httpRounds rounds.
func (f *portsProject) benchHTTP(b *testing.B, addr string) {
	// The connections are opened first: the figure is of requests, not
	// of connecting.
	for _, a := range []string{addr, f.direct} {
		if err := f.requests(a, 4*httpConcurrency); err != nil {
			b.Fatal(err)
		}
	}
	f.benchPaired(b, addr, httpRounds, func(addr string) error { return f.requests(addr, httpRequests/httpRounds) }, "req/s")
}

// benchPaired times b.N ops on addr, each op being rounds runs of round.
// Unless addr is the direct path, each round is paired with an untimed
// round on the direct path, before it or after it in turn, and the
// ratio of the direct rounds' time to the timed ones' is reported.
// perSec, if not empty, names a metric of httpRequests per op per
// second.
func (f *portsProject) benchPaired(b *testing.B, addr string, rounds int, round func(string) error, perSec string) {
	paired := addr != f.direct
	var timed, cpu, direct time.Duration
	sup0, err := procCPU(f.supervisor, false)
	if err != nil {
		b.Fatalf("the supervisor (pid %d): %v", f.supervisor, err)
	}
	runDirect := func() {
		t0 := time.Now()
		if err := round(f.direct); err != nil {
			b.Fatal(err)
		}
		direct += time.Since(t0)
	}
	n := 0
	b.ResetTimer()
	for range b.N {
		for range rounds {
			b.StopTimer()
			if paired && n%2 == 1 {
				runDirect()
			}
			c0, t0 := cpuTime(), time.Now()
			b.StartTimer()
			err := round(addr)
			b.StopTimer()
			timed += time.Since(t0)
			cpu += cpuTime() - c0
			if err != nil {
				b.Fatal(err)
			}
			if paired && n%2 == 0 {
				runDirect()
			}
			n++
			b.StartTimer()
		}
	}
	b.StopTimer()
	sup1, err := procCPU(f.supervisor, false)
	if err != nil {
		b.Fatalf("the supervisor (pid %d): %v", f.supervisor, err)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	if perSec != "" {
		b.ReportMetric(float64(b.N*httpRequests)/timed.Seconds(), perSec)
	}
	b.ReportMetric(ms(cpu), "cpu-ms/op")
	b.ReportMetric(ms(sup1-sup0), "supervisor-cpu-ms/op")
	if paired {
		b.ReportMetric(direct.Seconds()/timed.Seconds(), "ratio-vs-direct")
		b.Logf("%d ops in %v, the same on the direct path in %v: %.0f%% of its throughput",
			b.N, timed.Round(time.Millisecond), direct.Round(time.Millisecond), 100*direct.Seconds()/timed.Seconds())
	}
}

// noLoopbackNAT says why the loopback-nat experiment does not run, if it
// does not.
func (f *portsProject) noLoopbackNAT() string {
	if os.Getenv("BERTH_BENCH_LOOPBACK_NAT") != "1" {
		return "an experiment, not berth's way: BERTH_BENCH_LOOPBACK_NAT=1 runs it"
	}
	return ""
}

// loopbackNAT leads 127.0.0.1 at the published port to the container by
// NAT for the time of b (see loopback-nat above).
func (f *portsProject) loopbackNAT(b *testing.B) {
	_, port, _ := net.SplitHostPort(f.proxy)
	const tag = "berth-bench-loopback-nat"
	dnat := []string{"OUTPUT", "-d", "127.0.0.1", "-p", "tcp", "--dport", port, "-j", "DNAT", "--to-destination", f.direct,
		"-m", "comment", "--comment", tag}
	masq := []string{"POSTROUTING", "-s", "127.0.0.0/8", "-o", f.bridge, "-j", "MASQUERADE", "-m", "comment", "--comment", tag}
	b.Cleanup(func() {
		for _, r := range [][]string{dnat, masq} {
			exec.Command("iptables", append([]string{"-t", "nat", "-D"}, r...)...).Run()
		}
		f.client(f.proxy).CloseIdleConnections()
	})
	for _, c := range [][]string{
		{"sysctl", "-q", "-w", "net.ipv4.conf." + f.bridge + ".route_localnet=1"},
		append([]string{"iptables", "-t", "nat", "-I", dnat[0], "1"}, dnat[1:]...),
		append([]string{"iptables", "-t", "nat", "-I", masq[0], "1"}, masq[1:]...),
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v: %s", strings.Join(c, " "), err, bytes.TrimSpace(out))
		}
	}
	// The keep-alive connections to 127.0.0.1 go through the proxy: new
	// ones take the NAT.
	f.client(f.proxy).CloseIdleConnections()
	if err := f.get(f.proxy, "/small", nil); err != nil {
		b.Fatal(err)
	}
}
