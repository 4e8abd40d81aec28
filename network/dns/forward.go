package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// forward asks ups, in order, about a name that is not the
// network's, and returns the first answer that is not a failure, with the
// client's ID. The replies of the server itself, when it cannot get one:
//
//   - SERVFAIL on an internal network, with no upstreams, or when every
//     upstream failed or timed out. Docker answers SERVFAIL in all these
//     cases, and berth keeps it so that programs in containers see the
//     errors they see under Docker (glibc's "Temporary failure in name
//     resolution").
//   - REFUSED when maxForwards queries are already being forwarded and
//     none ends within the timeout, as Docker does under load.
func (s *Server) forward(ctx context.Context, req *dns.Msg, ups []Upstream, overTCP bool) *dns.Msg {
	if len(ups) == 0 || len(req.Question) != 1 {
		return new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
	}
	wait, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	select {
	case s.forwards <- struct{}{}:
		defer func() { <-s.forwards }()
	case <-wait.Done():
		s.logf("embedded DNS server: more than %d queries being forwarded, refusing %s", maxForwards, req.Question[0].Name)
		return new(dns.Msg).SetRcode(req, dns.RcodeRefused)
	}

	// A fresh ID for each upstream query: the client's ID was chosen for
	// the client's exchange with this server, and the upstream answer is
	// matched on it (miekg/dns drops UDP replies with another ID).
	q := req.Copy()
	var errs []error
	for _, up := range ups {
		q.Id = dns.Id()
		resp, err := s.exchange(ctx, q, up, overTCP)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		// Another upstream may know better: SERVFAIL is often one
		// resolver's transient failure, REFUSED its policy.
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			errs = append(errs, fmt.Errorf("upstream %s: %s", up.Addr, dns.RcodeToString[resp.Rcode]))
			continue
		}
		resp.Id = req.Id
		return resp
	}
	if ctx.Err() == nil {
		s.logf("embedded DNS server: no upstream answered %s: %v", req.Question[0].Name, errors.Join(errs...))
	}
	return new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
}

// exchange asks one upstream within the server's timeout: over UDP, and
// again over TCP when the UDP answer is truncated; over TCP at once when
// the client came over TCP, since it then wants the whole answer. When the
// TCP retry fails, the truncated answer is still an answer: the client can
// ask again over TCP itself.
func (s *Server) exchange(ctx context.Context, q *dns.Msg, up Upstream, overTCP bool) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var truncated *dns.Msg
	if !overTCP {
		resp, err := exchangeOver(ctx, "udp", q, up)
		if err != nil {
			return nil, err
		}
		if !resp.Truncated {
			return resp, nil
		}
		truncated = resp
	}
	resp, err := exchangeOver(ctx, "tcp", q, up)
	if err != nil {
		if truncated != nil {
			s.logf("embedded DNS server: upstream %s truncated its answer about %s, and TCP failed: %v", up.Addr, q.Question[0].Name, err)
			return truncated, nil
		}
		return nil, err
	}
	return resp, nil
}

func exchangeOver(ctx context.Context, network string, q *dns.Msg, up Upstream) (*dns.Msg, error) {
	c := &dns.Client{Net: network}
	// The Client's own timeouts (2s) would cut the context's deadline
	// short, so they are set to the deadline itself.
	if d, ok := ctx.Deadline(); ok {
		c.Timeout = time.Until(d)
	}
	conn, err := dial(ctx, network, up)
	if err != nil {
		return nil, fmt.Errorf("upstream %s over %s: %w", up.Addr, network, err)
	}
	// UDPSize is the read buffer for answers to queries without EDNS(0):
	// a misbehaving upstream's oversized answer is still read whole, and
	// then truncated for the client.
	co := &dns.Conn{Conn: conn, UDPSize: dns.MaxMsgSize}
	defer co.Close()
	// miekg/dns heeds the context's deadline but not its cancellation: a
	// server shutting down would wait for the upstream's timeout. Closing
	// the connection ends the exchange at once.
	stop := context.AfterFunc(ctx, func() { co.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, q, co)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("upstream %s over %s: %w", up.Addr, network, err)
	}
	return resp, nil
}

// dial connects to an upstream, with its own Dial when it has one.
func dial(ctx context.Context, network string, up Upstream) (net.Conn, error) {
	if up.Dial != nil {
		return up.Dial(ctx, network, up.Addr.String())
	}
	var d net.Dialer
	return d.DialContext(ctx, network, up.Addr.String())
}
