package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/dnstest"
	berthnet "github.com/berth-dev/berth/network"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// start serves c on a free loopback port until the test ends, and checks
// then that Serve returns nil.
func start(t *testing.T, c Config) netip.AddrPort {
	t.Helper()
	c.Addr = loopback
	if c.Lookup == nil {
		n := testNames()
		c.Lookup, c.Reverse = n.lookup, n.reverse
	}
	ctx, cancel := context.WithCancel(context.Background())
	var s *Server
	var err error
	for range 20 {
		c.Port = freePort(t)
		if s, err = Listen(ctx, c); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return netip.AddrPortFrom(loopback, uint16(c.Port))
}

// freePort is a loopback port that is free for UDP and TCP when asked.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		u, tcp, err := listenBoth(0)
		if err == nil {
			u.Close()
			tcp.Close()
			return u.LocalAddr().(*net.UDPAddr).Port
		}
	}
	t.Fatal("no free loopback port for UDP and TCP")
	return 0
}

// listenBoth binds UDP and TCP on one loopback port; port 0 picks one.
func listenBoth(port int) (net.PacketConn, net.Listener, error) {
	u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, nil, err
	}
	tcp, err := net.Listen("tcp", u.LocalAddr().String())
	if err != nil {
		u.Close()
		return nil, nil, err
	}
	return u, tcp, nil
}

// upstream is a fake host resolver on loopback, UDP and TCP, that counts
// the queries it gets over each.
type upstream struct {
	addr     netip.AddrPort
	udp, tcp atomic.Int32
}

func startUpstream(t *testing.T, h func(w dns.ResponseWriter, req *dns.Msg)) *upstream {
	t.Helper()
	var pc net.PacketConn
	var l net.Listener
	var err error
	for range 20 {
		if pc, l, err = listenBoth(0); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return serveUpstream(t, pc, l, h)
}

// serveUpstream serves h on pc and l, bound to one address, until the
// test ends.
func serveUpstream(t *testing.T, pc net.PacketConn, l net.Listener, h func(w dns.ResponseWriter, req *dns.Msg)) *upstream {
	t.Helper()
	u := &upstream{addr: netip.MustParseAddrPort(pc.LocalAddr().String())}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
			u.tcp.Add(1)
		} else {
			u.udp.Add(1)
		}
		h(w, req)
	})
	dnstest.Serve(t, handler, pc, l)
	return u
}

// answering is an upstream handler that answers A queries with n
// addresses 192.0.2.x, and truncates its UDP answers when truncate says.
func answering(n int, truncate bool) func(w dns.ResponseWriter, req *dns.Msg) {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		if _, ok := w.LocalAddr().(*net.UDPAddr); ok && truncate {
			m.Truncated = true
			w.WriteMsg(m)
			return
		}
		for i := range n {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
				A:   net.IPv4(192, 0, 2, byte(i+1)),
			})
		}
		w.WriteMsg(m)
	}
}

func failing(rcode int) func(w dns.ResponseWriter, req *dns.Msg) {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		w.WriteMsg(new(dns.Msg).SetRcode(req, rcode))
	}
}

func ask(t *testing.T, network string, server netip.AddrPort, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 3 * time.Second}
	req := question(name, qtype)
	resp, _, err := c.Exchange(req, server.String())
	if err != nil {
		t.Fatalf("%s %s over %s: %v", dns.TypeToString[qtype], name, network, err)
	}
	if resp.Id != req.Id {
		t.Fatalf("%s %s over %s: reply ID %d for query %d", dns.TypeToString[qtype], name, network, resp.Id, req.Id)
	}
	return resp
}

func TestServeNames(t *testing.T) {
	server := start(t, Config{})
	for _, tc := range []struct {
		network, name string
		qtype         uint16
		want          string
	}{
		{"udp", "web.", dns.TypeA, "NOERROR: A 10.0.0.2, A 10.0.0.3, A 10.0.0.4"},
		{"udp", "web.", dns.TypeAAAA, "NOERROR: AAAA fd00::2"},
		{"udp", "WEB.", dns.TypeA, "NOERROR: A 10.0.0.2, A 10.0.0.3, A 10.0.0.4"},
		{"udp", "db-1.", dns.TypeAAAA, "NOERROR: "},
		{"udp", "5.0.0.10.in-addr.arpa.", dns.TypePTR, "NOERROR: PTR db-1.backend., PTR db.backend."},
		{"tcp", "web.", dns.TypeA, "NOERROR: A 10.0.0.2, A 10.0.0.3, A 10.0.0.4"},
		{"tcp", "Db.", dns.TypeA, "NOERROR: A 10.0.0.5"},
	} {
		got := ask(t, tc.network, server, tc.name, tc.qtype)
		if r := records(got); r != tc.want {
			t.Errorf("%s %s over %s: got %s, want %s", dns.TypeToString[tc.qtype], tc.name, tc.network, r, tc.want)
		}
	}
}

// A service with more replicas than 512 bytes hold: truncated over UDP,
// whole over TCP.
func TestServeLargeService(t *testing.T) {
	server := start(t, Config{})
	udp := ask(t, "udp", server, "big.", dns.TypeA)
	if !udp.Truncated || len(udp.Answer) == 0 || len(udp.Answer) >= 200 {
		t.Errorf("over UDP: truncated %v with %d records, want truncated with some", udp.Truncated, len(udp.Answer))
	}
	if tcp := ask(t, "tcp", server, "big.", dns.TypeA); tcp.Truncated || len(tcp.Answer) != 200 {
		t.Errorf("over TCP: truncated %v with %d records, want all 200", tcp.Truncated, len(tcp.Answer))
	}
}

func TestServeForwards(t *testing.T) {
	up := startUpstream(t, answering(2, false))
	server := start(t, Config{Upstreams: []netip.AddrPort{up.addr}})
	for _, network := range []string{"udp", "tcp"} {
		got := ask(t, network, server, "example.com.", dns.TypeA)
		if r, want := records(got), "NOERROR: A 192.0.2.1, A 192.0.2.2"; r != want {
			t.Errorf("over %s: got %s, want %s", network, r, want)
		}
		if !got.RecursionAvailable {
			t.Errorf("over %s: RA not set on a forwarded answer", network)
		}
	}
	// The network's names stay with the network, and so does the answer
	// for web with the search domain appended, which is forwarded.
	ask(t, "udp", server, "web.", dns.TypeA)
	ask(t, "udp", server, "web.example.com.", dns.TypeA)
	if udp, tcp := up.udp.Load(), up.tcp.Load(); udp != 2 || tcp != 1 {
		t.Errorf("upstream got %d queries over UDP and %d over TCP, want 2 and 1", udp, tcp)
	}
}

func TestServeTruncatedUpstreamRetriedOverTCP(t *testing.T) {
	up := startUpstream(t, answering(3, true))
	server := start(t, Config{Upstreams: []netip.AddrPort{up.addr}})
	got := ask(t, "udp", server, "example.com.", dns.TypeA)
	if r, want := records(got), "NOERROR: A 192.0.2.1, A 192.0.2.2, A 192.0.2.3"; r != want || got.Truncated {
		t.Errorf("got %s (truncated %v), want %s", r, got.Truncated, want)
	}
	if udp, tcp := up.udp.Load(), up.tcp.Load(); udp != 1 || tcp != 1 {
		t.Errorf("upstream got %d queries over UDP and %d over TCP, want 1 and 1", udp, tcp)
	}

	// An answer too large for the client's UDP buffer comes truncated,
	// and whole when the client asks over TCP.
	big := startUpstream(t, answering(100, true))
	server = start(t, Config{Upstreams: []netip.AddrPort{big.addr}})
	if got := ask(t, "udp", server, "example.com.", dns.TypeA); !got.Truncated || len(got.Answer) >= 100 {
		t.Errorf("over UDP: truncated %v with %d records, want truncated", got.Truncated, len(got.Answer))
	}
	if got := ask(t, "tcp", server, "example.com.", dns.TypeA); got.Truncated || len(got.Answer) != 100 {
		t.Errorf("over TCP: truncated %v with %d records, want all 100", got.Truncated, len(got.Answer))
	}
}

// A failing, a refusing and a silent upstream are passed over for the next.
func TestServeNextUpstream(t *testing.T) {
	servfail := startUpstream(t, failing(dns.RcodeServerFailure))
	refused := startUpstream(t, failing(dns.RcodeRefused))
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	good := startUpstream(t, answering(1, false))
	server := start(t, Config{
		Upstreams: []netip.AddrPort{servfail.addr, refused.addr, netip.MustParseAddrPort(silent.LocalAddr().String()), good.addr},
		Timeout:   200 * time.Millisecond,
	})
	if r, want := records(ask(t, "udp", server, "example.com.", dns.TypeA)), "NOERROR: A 192.0.2.1"; r != want {
		t.Errorf("got %s, want %s", r, want)
	}

	// When every upstream fails, the client gets SERVFAIL.
	server = start(t, Config{Upstreams: []netip.AddrPort{servfail.addr, refused.addr}})
	if r, want := records(ask(t, "udp", server, "example.com.", dns.TypeA)), "SERVFAIL: "; r != want {
		t.Errorf("every upstream failing: got %s, want %s", r, want)
	}
	// NXDOMAIN is an answer, not a failure: it is relayed.
	nx := startUpstream(t, failing(dns.RcodeNameError))
	server = start(t, Config{Upstreams: []netip.AddrPort{nx.addr, good.addr}})
	if r, want := records(ask(t, "udp", server, "example.com.", dns.TypeA)), "NXDOMAIN: "; r != want {
		t.Errorf("NXDOMAIN upstream: got %s, want %s", r, want)
	}
}

func TestServeInternalDoesNotForward(t *testing.T) {
	up := startUpstream(t, answering(1, false))
	for _, c := range []Config{
		{Internal: true, Upstreams: []netip.AddrPort{up.addr}},
		{},
	} {
		server := start(t, c)
		for _, network := range []string{"udp", "tcp"} {
			got := ask(t, network, server, "example.com.", dns.TypeA)
			if r, want := records(got), "SERVFAIL: "; r != want {
				t.Errorf("internal %v, %d upstreams, over %s: got %s, want %s", c.Internal, len(c.Upstreams), network, r, want)
			}
			if got.RecursionAvailable {
				t.Errorf("internal %v, %d upstreams: RA set", c.Internal, len(c.Upstreams))
			}
			if r, want := records(ask(t, network, server, "web.", dns.TypeA)), "NOERROR: A 10.0.0.2, A 10.0.0.3, A 10.0.0.4"; r != want {
				t.Errorf("internal %v, %d upstreams, over %s: web: got %s, want %s", c.Internal, len(c.Upstreams), network, r, want)
			}
		}
	}
	if n := up.udp.Load() + up.tcp.Load(); n != 0 {
		t.Errorf("the upstream of an internal network got %d queries", n)
	}
}

// Several berth processes may serve one gateway: a second server binds the
// same address and port, and either answers.
func TestListenShared(t *testing.T) {
	ctx := context.Background()
	first, err := Listen(ctx, Config{Addr: loopback, Port: freePort(t), Lookup: testNames().lookup})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	port := first.udp.LocalAddr().(*net.UDPAddr).Port
	second, err := Listen(ctx, Config{Addr: loopback, Port: port, Lookup: testNames().lookup})
	if err != nil {
		t.Fatalf("second server on port %d: %v", port, err)
	}
	second.Close()
}

func TestListenInvalid(t *testing.T) {
	ctx := context.Background()
	for _, c := range []Config{
		{Lookup: testNames().lookup},
		{Addr: loopback},
		{Addr: loopback, Port: 70000, Lookup: testNames().lookup},
	} {
		if s, err := Listen(ctx, c); err == nil {
			s.Close()
			t.Errorf("Listen(%+v) succeeded", c)
		}
	}
}

// When ctx ends, Serve returns at once, even with queries being forwarded
// to an upstream that never answers, and leaves neither sockets nor
// goroutines behind.
func TestServeStops(t *testing.T) {
	before := runtime.NumGoroutine()
	// The silent upstream never reads: its kernel queues take the UDP
	// query and accept the TCP connection.
	silentUDP, silentTCP, err := listenBoth(0)
	if err != nil {
		t.Fatal(err)
	}
	defer silentUDP.Close()
	defer silentTCP.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Config{
			Addr:      loopback,
			Port:      port,
			Lookup:    testNames().lookup,
			Upstreams: []netip.AddrPort{netip.MustParseAddrPort(silentUDP.LocalAddr().String())},
			Timeout:   time.Minute,
		})
	}()
	server := netip.AddrPortFrom(loopback, uint16(port))
	// Serve binds in its goroutine: ask until it answers.
	deadline := time.Now().Add(2 * time.Second)
	for {
		c := &dns.Client{Net: "tcp", Timeout: time.Second}
		if _, _, err := c.Exchange(question("web.", dns.TypeA), server.String()); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var clients sync.WaitGroup
	for _, network := range []string{"udp", "tcp"} {
		clients.Go(func() {
			c := &dns.Client{Net: network, Timeout: time.Second}
			c.Exchange(question("example.com.", dns.TypeA), server.String())
		})
	}
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Serve took %v to return", d)
	}
	clients.Wait()

	// The port is free for sockets without SO_REUSEPORT, which cannot
	// share it: the server's sockets are closed.
	u, tcp, err := listenBoth(port)
	if err != nil {
		t.Fatalf("port %d still in use: %v", port, err)
	}
	u.Close()
	tcp.Close()

	deadline = time.Now().Add(time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestServeListenError(t *testing.T) {
	// 192.0.2.1 (TEST-NET-1) is not an address of this host.
	err := Serve(context.Background(), Config{Addr: netip.MustParseAddr("192.0.2.1"), Port: 5353, Lookup: testNames().lookup})
	if !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("got %v, want EADDRNOTAVAIL", err)
	}
}

// LookupFrom: the server tells who asks (a container on several
// networks resolves the names of all of them).
func TestServeLookupFrom(t *testing.T) {
	var mu sync.Mutex
	var asked netip.Addr
	server := start(t, Config{
		Lookup: func(string) ([]netip.Addr, bool) { return nil, false },
		LookupFrom: func(client netip.Addr, name string) ([]netip.Addr, bool) {
			mu.Lock()
			defer mu.Unlock()
			asked = client
			if name == "other-network-name" && client == loopback {
				return []netip.Addr{netip.MustParseAddr("10.9.9.9")}, true
			}
			return nil, false
		},
	})
	for _, network := range []string{"udp", "tcp"} {
		r := records(ask(t, network, server, "other-network-name.", dns.TypeA))
		mu.Lock()
		if r != "NOERROR: A 10.9.9.9" || asked != loopback {
			t.Errorf("over %s: %s, asked by %v", network, r, asked)
		}
		asked = netip.Addr{}
		mu.Unlock()
	}
}

// UpstreamsFrom: a container's own resolvers (its dns: servers) answer
// its outside names; the host's answer when it has none, or only the
// server itself; an internal network forwards to neither.
func TestServeUpstreamsFrom(t *testing.T) {
	host := startUpstream(t, answering(1, false))
	own := startUpstream(t, answering(2, false))
	var mu sync.Mutex
	var ups []Upstream
	c := Config{
		Upstreams: []netip.AddrPort{host.addr},
		UpstreamsFrom: func(client netip.Addr) []Upstream {
			mu.Lock()
			defer mu.Unlock()
			if client != loopback {
				return nil
			}
			return ups
		},
	}
	server := start(t, c)
	set := func(u ...Upstream) {
		mu.Lock()
		ups = u
		mu.Unlock()
	}

	set(Upstream{Addr: own.addr})
	for _, network := range []string{"udp", "tcp"} {
		if r, want := records(ask(t, network, server, "example.com.", dns.TypeA)), "NOERROR: A 192.0.2.1, A 192.0.2.2"; r != want {
			t.Errorf("own upstream, over %s: got %s, want %s", network, r, want)
		}
	}
	// The network's names are still the network's.
	if r, want := records(ask(t, "udp", server, "web.", dns.TypeA)), "NOERROR: A 10.0.0.2, A 10.0.0.3, A 10.0.0.4"; r != want {
		t.Errorf("own upstream: web: got %s, want %s", r, want)
	}
	if n := host.udp.Load() + host.tcp.Load(); n != 0 {
		t.Errorf("the host's upstream got %d queries of a client with its own", n)
	}

	// None, or only the server itself: the host's.
	for _, u := range [][]Upstream{nil, {{Addr: server}}} {
		set(u...)
		if r, want := records(ask(t, "udp", server, "example.com.", dns.TypeA)), "NOERROR: A 192.0.2.1"; r != want {
			t.Errorf("upstreams %v: got %s, want %s", u, r, want)
		}
	}

	set(Upstream{Addr: own.addr})
	c.Internal = true
	internal := start(t, c)
	if r, want := records(ask(t, "udp", internal, "example.com.", dns.TypeA)), "SERVFAIL: "; r != want {
		t.Errorf("internal: got %s, want %s", r, want)
	}
	if n := own.udp.Load() + own.tcp.Load(); n != 2 {
		t.Errorf("the client's upstream got %d queries, want 2", n)
	}
}

// An upstream with a Dial of its own is reached with it: the supervisor
// dials a resolver on a container's own loopback from the container's
// namespace.
func TestServeUpstreamDial(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root")
		}
		t.Skip("needs root")
	}
	nsPath, inner := upstreamInNetNS(t, answering(3, false))
	server := start(t, Config{
		UpstreamsFrom: func(netip.Addr) []Upstream { return []Upstream{{Addr: inner.addr, Dial: berthnet.DialIn(nsPath)}} },
	})
	for _, network := range []string{"udp", "tcp"} {
		if r, want := records(ask(t, network, server, "example.com.", dns.TypeA)), "NOERROR: A 192.0.2.1, A 192.0.2.2, A 192.0.2.3"; r != want {
			t.Errorf("over %s: got %s, want %s", network, r, want)
		}
	}
	if udp, tcp := inner.udp.Load(), inner.tcp.Load(); udp != 1 || tcp != 1 {
		t.Errorf("the namespace's upstream got %d queries over UDP and %d over TCP, want 1 and 1", udp, tcp)
	}
	// The same address from the server's own namespace is not that
	// resolver: nothing listens there, or something else does.
	server = start(t, Config{
		UpstreamsFrom: func(netip.Addr) []Upstream { return []Upstream{{Addr: inner.addr}} },
		Timeout:       200 * time.Millisecond,
	})
	ask(t, "udp", server, "example.com.", dns.TypeA)
	if udp := inner.udp.Load(); udp != 1 {
		t.Errorf("the namespace's upstream was reached without entering it (%d queries)", udp)
	}
}

// upstreamInNetNS serves h on 127.0.0.1 in a new network namespace, which
// lives as long as the test: the path of the namespace, and the upstream.
func upstreamInNetNS(t *testing.T, h func(w dns.ResponseWriter, req *dns.Msg)) (string, *upstream) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netns")
	if err := berthnet.NewNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { berthnet.RemoveNetNS(path) })
	var pc net.PacketConn
	var l net.Listener
	err := berthnet.InNetNS(path, func() error {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			return fmt.Errorf("loopback up: %w", err)
		}
		pc, l, err = listenBoth(0)
		return err
	})
	if err != nil {
		t.Fatalf("a resolver in a network namespace: %v", err)
	}
	return path, serveUpstream(t, pc, l, h)
}
