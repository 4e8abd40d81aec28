package network

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// PortRule is a published port of a container: connections to HostIP
// (every address of the host when not valid) at HostPort reach the
// container's ContainerIP at ContainerPort.
//
// How: kernel DNAT, from other hosts and from this host's own addresses,
// loopback included (the bridges accept 127.0.0.0/8 with route_localnet,
// as Docker does without its userland proxy): no copy through berth, the
// throughput of the bridge itself. The supervisor's userland proxy holds
// the port, so that no other program takes it, and serves what DNAT
// cannot (a kernel without route_localnet).
type PortRule struct {
	ContainerID   string
	Bridge        string
	HostIP        netip.Addr
	HostPort      int
	ContainerIP   netip.Addr
	ContainerPort int
	Protocol      string // tcp, udp
}

func (p PortRule) tag() string { return "port:" + p.ContainerID[:12] }

// rules are p's DNAT rule (loopback addresses included: from this host
// only, see ensureBase) and the rule that lets the DNAT'ed connection
// through to the bridge.
func (p PortRule) rules() []rule {
	var out []rule
	dnat := []string{"!", "-i", p.Bridge, "-p", p.Protocol, "--dport", strconv.Itoa(p.HostPort)}
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		dnat = append([]string{"-d", p.HostIP.String()}, dnat...)
	}
	dnat = append(dnat, "-j", "DNAT", "--to-destination", netip.AddrPortFrom(p.ContainerIP, uint16(p.ContainerPort)).String())
	out = append(out, rule{"nat", chainDNAT, withComment(p.tag(), dnat...)})
	out = append(out, rule{"filter", chainNet, withComment(p.tag(), "-d", p.ContainerIP.String(), "!", "-i", p.Bridge, "-o", p.Bridge,
		"-p", p.Protocol, "--dport", strconv.Itoa(p.ContainerPort), "-j", "ACCEPT")})
	return out
}

// Publish adds the firewall rules of a container's published ports.
func (m *Manager) Publish(ports []PortRule) error {
	if len(ports) == 0 {
		return nil
	}
	fw, rs, err := m.firewall(false)
	if err != nil {
		return err
	}
	// All at once: the rules of one container's ports share its tag.
	var rules []rule
	for _, p := range ports {
		rules = append(rules, p.rules()...)
	}
	return fw.ensureRules(rules, rs)
}

// Unpublish removes the firewall rules of a container's published ports.
func (m *Manager) Unpublish(containerID string) error {
	fw, _, err := m.firewall(false)
	if err != nil {
		return err
	}
	return fw.removeTagged("port:" + containerID[:12])
}

// Proxy is the userland end of a published port: it holds the host port
// and copies connections (datagrams for UDP) to the container.
type Proxy struct {
	rule   PortRule
	tcp    net.Listener
	udp    *net.UDPConn
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[io.Closer]struct{}
	closed bool
}

// ListenProxy binds the host port of p; a port another program holds is
// an error naming it.
func ListenProxy(p PortRule) (*Proxy, error) {
	host := ""
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		host = p.HostIP.String()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(p.HostPort))
	px := &Proxy{rule: p, conns: map[io.Closer]struct{}{}}
	var err error
	switch p.Protocol {
	case "udp":
		var ua *net.UDPAddr
		if ua, err = net.ResolveUDPAddr("udp", addr); err == nil {
			px.udp, err = net.ListenUDP("udp", ua)
		}
	default:
		px.tcp, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("publishing %s/%s: %w", addr, p.Protocol, err)
	}
	px.wg.Add(1)
	if px.tcp != nil {
		go px.serveTCP()
	} else {
		go px.serveUDP()
	}
	return px, nil
}

func (px *Proxy) target() string {
	return netip.AddrPortFrom(px.rule.ContainerIP, uint16(px.rule.ContainerPort)).String()
}

func (px *Proxy) track(c io.Closer) bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.closed {
		c.Close()
		return false
	}
	px.conns[c] = struct{}{}
	return true
}

func (px *Proxy) untrack(c io.Closer) {
	px.mu.Lock()
	delete(px.conns, c)
	px.mu.Unlock()
	c.Close()
}

func (px *Proxy) serveTCP() {
	defer px.wg.Done()
	for {
		in, err := px.tcp.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		px.wg.Add(1)
		go func() {
			defer px.wg.Done()
			if !px.track(in) {
				return
			}
			defer px.untrack(in)
			out, err := net.DialTimeout("tcp", px.target(), 10*time.Second)
			if err != nil {
				return
			}
			if !px.track(out) {
				return
			}
			defer px.untrack(out)
			// Both directions; a half close is passed on (a client that
			// shuts its writing side down still gets the answer). On
			// Linux, io.Copy between TCP sockets splices.
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(out, in)
			go pipe(in, out)
			<-done
			<-done
		}()
	}
}

// udpIdle is how long a UDP flow lives without traffic (Docker's proxy
// uses 90 s).
const udpIdle = 90 * time.Second

func (px *Proxy) serveUDP() {
	defer px.wg.Done()
	flows := map[string]*net.UDPConn{}
	var mu sync.Mutex
	buf := make([]byte, 65535)
	for {
		n, from, err := px.udp.ReadFromUDP(buf)
		if err != nil {
			mu.Lock()
			for _, c := range flows {
				c.Close()
			}
			mu.Unlock()
			return
		}
		mu.Lock()
		out, ok := flows[from.String()]
		if !ok {
			ta, err := net.ResolveUDPAddr("udp", px.target())
			if err == nil {
				out, err = net.DialUDP("udp", nil, ta)
			}
			if err != nil {
				mu.Unlock()
				continue
			}
			flows[from.String()] = out
			px.wg.Add(1)
			go func(from *net.UDPAddr) {
				defer px.wg.Done()
				reply := make([]byte, 65535)
				for {
					out.SetReadDeadline(time.Now().Add(udpIdle))
					n, err := out.Read(reply)
					if err != nil {
						break
					}
					px.udp.WriteToUDP(reply[:n], from)
				}
				mu.Lock()
				delete(flows, from.String())
				mu.Unlock()
				out.Close()
			}(from)
		}
		mu.Unlock()
		out.Write(buf[:n])
	}
}

// Close releases the port and ends the connections under way.
func (px *Proxy) Close() error {
	px.mu.Lock()
	px.closed = true
	for c := range px.conns {
		c.Close()
	}
	px.mu.Unlock()
	if px.tcp != nil {
		px.tcp.Close()
	}
	if px.udp != nil {
		px.udp.Close()
	}
	px.wg.Wait()
	return nil
}
