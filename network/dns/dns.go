// Package dns is the embedded DNS server of berth's container networks, the
// counterpart of Docker's 127.0.0.11: it answers the names of a network's
// containers (service names, container names, hostnames, aliases) and
// forwards every other name to the host's resolvers. It listens on the
// network's gateway address, from the host's network namespace, so the
// host's resolvers are reachable even when they are on loopback
// (systemd-resolved's 127.0.0.53).
package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/containerd/errdefs"
	"github.com/miekg/dns"
	"golang.org/x/sync/errgroup"
)

// Lookup answers a name for the containers of one network: the addresses
// of a service (every replica), a container name, a hostname or an alias,
// IPv4 and IPv6 alike. The name is in lower case, without the trailing dot,
// so the table behind Lookup should be keyed in lower case: DNS names are
// case-insensitive. ok is false when the name is not one of the network's;
// ok with no addresses means the name exists but has no address.
type Lookup func(name string) (ips []netip.Addr, ok bool)

// Reverse answers the PTR query of an address: the names (without the
// trailing dot) of the container that holds it on the network. ok is false
// when the address is not one of the network's.
type Reverse func(ip netip.Addr) (names []string, ok bool)

// Config describes the server of one network.
type Config struct {
	// Addr is where to listen, UDP and TCP: the network's gateway.
	Addr netip.Addr
	// Port is 53 when 0; tests pick a free one.
	Port int
	// Lookup answers the network's names. It is called concurrently.
	Lookup Lookup
	// LookupFrom, when not nil, answers instead of Lookup knowing who
	// asks: a container on several networks resolves the names of all of
	// them, whichever network's server it asks (Docker's embedded DNS
	// answers per container, too).
	LookupFrom func(client netip.Addr, name string) (ips []netip.Addr, ok bool)
	// Reverse answers PTR queries for the network's addresses; nil leaves
	// them all to the upstreams. It is called concurrently.
	Reverse Reverse
	// Internal is an internal network's: its containers must not reach
	// the outside, so names that are not the network's are never
	// forwarded.
	Internal bool
	// Upstreams are the host's resolvers (see Upstreams), tried in order
	// for the names that are not the network's.
	Upstreams []netip.AddrPort
	// UpstreamsFrom, when not nil, names the resolvers of the container
	// that asks (its dns: servers), which replace Upstreams for its
	// queries; nil or none means Upstreams. Docker's embedded DNS
	// forwards to a container's dns: servers in the same way, so that
	// the container keeps resolving the network's names.
	UpstreamsFrom func(client netip.Addr) []Upstream
	// Timeout bounds the exchange with one upstream before the next is
	// tried; 4s (Docker's) when 0.
	Timeout time.Duration
	// Logf reports what a client cannot see: upstreams that failed. Nil
	// is silent.
	Logf func(format string, args ...any)
}

const (
	// ttl is the TTL of the network's records, Docker's: long enough to
	// spare the server, and the answers change only when containers do.
	ttl = 600
	// defaultTimeout is Docker's timeout for one upstream (extIOTimeout),
	// below the 5s after which glibc retries a query.
	defaultTimeout = 4 * time.Second
	// maxForwards bounds the queries being forwarded at once, as Docker
	// does, so that a flood of queries for outside names cannot open an
	// unbounded number of sockets.
	maxForwards = 1024
	// readSize is the largest request read over UDP. Requests carry one
	// question and at most an OPT record; 4096 leaves room for EDNS
	// options that clients add.
	readSize = dns.DefaultMsgSize
)

// Upstream is a resolver that the server forwards to.
type Upstream struct {
	Addr netip.AddrPort
	// Dial, when not nil, connects to Addr instead of a net.Dialer: a
	// container's dns: server on the container's own loopback is a
	// resolver that the container runs, reached from the container's
	// network namespace as Docker reaches it.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Server is a network's DNS server, bound and ready to serve.
type Server struct {
	udp   net.PacketConn
	tcp   net.Listener
	names names
	// lookupFrom is Config.LookupFrom.
	lookupFrom func(client netip.Addr, name string) ([]netip.Addr, bool)
	// addr is where the server listens: an upstream there is the server
	// itself, never forwarded to.
	addr          netip.AddrPort
	internal      bool
	upstreams     []Upstream
	upstreamsFrom func(client netip.Addr) []Upstream
	timeout       time.Duration
	logf          func(format string, args ...any)
	// forwards holds a token per query being forwarded (maxForwards).
	forwards chan struct{}
}

// Serve answers queries on c.Addr until ctx ends, then closes its sockets
// and returns nil once the queries in flight are done; it returns an error
// when it cannot listen.
func Serve(ctx context.Context, c Config) error {
	s, err := Listen(ctx, c)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}

// Listen binds the server's UDP and TCP sockets, so that the caller knows
// the network's name service is in place before starting containers that
// use it. The sockets have SO_REUSEADDR and SO_REUSEPORT: several berth
// processes may serve one network's gateway at once (each project's
// supervisor, for a network that projects share); they give the same
// answers, and the kernel spreads the queries over them. Call Serve, or
// Close if the server is not to be served after all.
func Listen(ctx context.Context, c Config) (_ *Server, retErr error) {
	if !c.Addr.IsValid() {
		return nil, fmt.Errorf("embedded DNS server: no listening address: %w", errdefs.ErrInvalidArgument)
	}
	if c.Lookup == nil && c.LookupFrom != nil {
		c.Lookup = func(name string) ([]netip.Addr, bool) { return c.LookupFrom(netip.Addr{}, name) }
	}
	if c.Lookup == nil {
		return nil, fmt.Errorf("embedded DNS server on %s: no Lookup: %w", c.Addr, errdefs.ErrInvalidArgument)
	}
	port := c.Port
	if port == 0 {
		port = 53
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded DNS server on %s: port %d out of range: %w", c.Addr, port, errdefs.ErrInvalidArgument)
	}
	addr := netip.AddrPortFrom(c.Addr, uint16(port))
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	logf := c.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}

	lc := net.ListenConfig{Control: reuseAddrAndPort}
	udp, err := lc.ListenPacket(ctx, "udp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("embedded DNS server: listen on udp %s: %w", addr, err)
	}
	defer func() {
		if retErr != nil {
			udp.Close()
		}
	}()
	tcp, err := lc.Listen(ctx, "tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("embedded DNS server: listen on tcp %s: %w", addr, err)
	}

	s := &Server{
		udp:           udp,
		tcp:           tcp,
		names:         names{lookup: c.Lookup, reverse: c.Reverse},
		lookupFrom:    c.LookupFrom,
		addr:          addr,
		internal:      c.Internal,
		upstreamsFrom: c.UpstreamsFrom,
		timeout:       timeout,
		logf:          logf,
		forwards:      make(chan struct{}, maxForwards),
	}
	hosts := make([]Upstream, 0, len(c.Upstreams))
	for _, u := range c.Upstreams {
		hosts = append(hosts, Upstream{Addr: u})
	}
	s.upstreams = s.usable(hosts)
	return s, nil
}

// usable are the upstreams that the server may forward to: none on an
// internal network, and never the server itself, which would make every
// outside name loop between its own sockets until the timeout.
func (s *Server) usable(ups []Upstream) []Upstream {
	if s.internal {
		return nil
	}
	var out []Upstream
	for _, u := range ups {
		if u.Dial == nil && u.Addr.Addr().Unmap() == s.addr.Addr().Unmap() && u.Addr.Port() == s.addr.Port() {
			continue
		}
		out = append(out, u)
	}
	return out
}

// upstreamsOf are the upstreams for a query of client: its own when it
// has usable ones, the host's otherwise.
func (s *Server) upstreamsOf(client netip.Addr) []Upstream {
	if s.upstreamsFrom != nil && !s.internal {
		if ups := s.usable(s.upstreamsFrom(client)); len(ups) > 0 {
			return ups
		}
	}
	return s.upstreams
}

// Close releases the sockets of a server that is not served; Serve closes
// them itself.
func (s *Server) Close() error {
	return errors.Join(s.udp.Close(), s.tcp.Close())
}

// Serve answers queries until ctx ends, then closes the server's sockets
// and returns nil once the queries in flight are done (forwarded ones are
// abandoned, as they run under ctx too). It returns an error when a socket
// fails while serving; the other one is closed as well.
func (s *Server) Serve(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		s.handle(ctx, w, req)
	})
	for _, srv := range []*dns.Server{
		{PacketConn: s.udp, Handler: handler, UDPSize: readSize},
		{Listener: s.tcp, Handler: handler},
	} {
		g.Go(func() error { return run(ctx, srv) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("embedded DNS server on %s: %w", s.udp.LocalAddr(), err)
	}
	return nil
}

// run serves one socket of the server until ctx ends. miekg/dns's Shutdown
// fails on a server that has not yet marked itself started, which would
// leave it serving forever; run therefore waits for the start before it
// may shut down.
func run(ctx context.Context, srv *dns.Server) error {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case err := <-done:
		return err
	case <-started:
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// Shutdown unblocks the reads of the socket and of TCP connections,
	// then waits for the handlers in flight; they end soon, since their
	// forwarding runs under the ctx that just ended.
	if err := srv.ShutdownContext(context.Background()); err != nil {
		return err
	}
	return <-done
}

// handle answers one query: from the network's names, or else from the
// upstreams.
func (s *Server) handle(ctx context.Context, w dns.ResponseWriter, req *dns.Msg) {
	_, overTCP := w.LocalAddr().(*net.TCPAddr)
	var client netip.Addr
	if ap, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
		client = ap.Addr().Unmap()
	}
	names := s.names
	if s.lookupFrom != nil {
		names.lookup = func(name string) ([]netip.Addr, bool) { return s.lookupFrom(client, name) }
	}
	// RA says whether this server recurses for the names it does not hold
	// (RFC 1035), which it does when it may forward, whatever the
	// upstream that answered says of itself. The client's own upstreams
	// are looked up only when a query needs them.
	reply := names.answer(req)
	if reply == nil {
		ups := s.upstreamsOf(client)
		reply = s.forward(ctx, req, ups, overTCP)
		reply.RecursionAvailable = len(ups) > 0
	} else {
		reply.RecursionAvailable = !s.internal && (len(s.upstreams) > 0 || s.upstreamsFrom != nil)
	}
	if !overTCP {
		// A client over UDP gets what fits its buffer, with the TC bit
		// set when records had to go, so that it asks again over TCP.
		reply.Truncate(udpSize(req))
	}
	if err := w.WriteMsg(reply); err != nil {
		s.logf("embedded DNS server: reply to %s: %v", w.RemoteAddr(), err)
	}
}

// udpSize is the size of the reply that a client accepts over UDP: 512
// bytes, or what its EDNS(0) record says (RFC 6891).
func udpSize(req *dns.Msg) int {
	if opt := req.IsEdns0(); opt != nil && opt.UDPSize() > dns.MinMsgSize {
		return int(opt.UDPSize())
	}
	return dns.MinMsgSize
}
