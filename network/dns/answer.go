package dns

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// ednsSize is the UDP payload size the server advertises in its own
// answers: the size that DNS Flag Day 2020 settled on to avoid IP
// fragmentation.
const ednsSize = 1232

// names is what a server knows of its network.
type names struct {
	lookup  Lookup
	reverse Reverse
}

// answer is the reply to req from the network's names, or nil when req
// asks about a name that is not the network's, for the upstreams to
// answer. Apart from the shuffled order of the addresses it depends on req
// and the names alone, and it must be safe on any message a client can
// send: FuzzAnswer checks that.
func (n names) answer(req *dns.Msg) *dns.Msg {
	// miekg/dns's server already turns these away; answer does it again so
	// that it is safe on its own.
	if req.Opcode != dns.OpcodeQuery {
		return new(dns.Msg).SetRcode(req, dns.RcodeNotImplemented)
	}
	if req.Response || len(req.Question) != 1 {
		return new(dns.Msg).SetRcodeFormatError(req)
	}
	q := req.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return nil
	}
	// Resolvers may mix the case of a name (DNS 0x20) and DNS names are
	// case-insensitive; the records keep the name as asked, which such
	// resolvers check.
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	if name == "" {
		return nil
	}

	if q.Qtype == dns.TypePTR && n.reverse != nil {
		if ip, ok := reverseAddr(name); ok {
			if hosts, ok := n.reverse(ip); ok {
				reply := reply(req)
				for _, h := range hosts {
					h = dns.Fqdn(h)
					if _, ok := dns.IsDomainName(h); !ok {
						continue
					}
					reply.Answer = append(reply.Answer, &dns.PTR{Hdr: header(q.Name, dns.TypePTR), Ptr: h})
				}
				return reply
			}
		}
	}

	ips, ok := n.lookup(name)
	if !ok {
		return nil
	}
	// A name of the network answers every type itself, with no records
	// for the types it has none of (NODATA). Forwarding them would tell
	// the host's resolvers the network's names, and their NXDOMAIN would
	// say that the name does not exist at all (RFC 8020), which resolvers
	// may cache against the A query too.
	reply := reply(req)
	for _, ip := range ips {
		ip = ip.Unmap()
		switch {
		case ip.Is4() && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
			reply.Answer = append(reply.Answer, &dns.A{Hdr: header(q.Name, dns.TypeA), A: ip.AsSlice()})
		case ip.Is6() && (q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY):
			reply.Answer = append(reply.Answer, &dns.AAAA{Hdr: header(q.Name, dns.TypeAAAA), AAAA: ip.WithZone("").AsSlice()})
		}
	}
	// A shuffled order spreads the clients that take the first address
	// over a service's replicas, as Docker does.
	rand.Shuffle(len(reply.Answer), func(i, j int) {
		reply.Answer[i], reply.Answer[j] = reply.Answer[j], reply.Answer[i]
	})
	return reply
}

// reply is an empty NOERROR reply to req, with an OPT record when req has
// one (RFC 6891 6.1.1).
func reply(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg).SetReply(req)
	if req.IsEdns0() != nil {
		m.SetEdns0(ednsSize, false)
	}
	return m
}

func header(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// reverseAddr is the address that a lower-case name under in-addr.arpa
// (RFC 1035 3.5) or ip6.arpa (RFC 3596 2.5) stands for; ok is false for
// other names, and for the names of whole networks (fewer labels).
func reverseAddr(name string) (_ netip.Addr, ok bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			v, err := strconv.ParseUint(l, 10, 8)
			if err != nil || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			if len(l) != 1 {
				return netip.Addr{}, false
			}
			v, err := strconv.ParseUint(l, 16, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			// The first label is the last nibble of the address.
			nibble := 31 - i
			if nibble%2 == 0 {
				b[nibble/2] |= byte(v) << 4
			} else {
				b[nibble/2] |= byte(v)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}
