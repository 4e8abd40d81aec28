package dns

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// testNames is a network with a service of three replicas (one of them
// dual-stack), a container with an IPv4 address only, a name without
// addresses and a service large enough not to fit 512 bytes.
func testNames() names {
	table := map[string][]netip.Addr{
		"web":   addrs("10.0.0.2", "10.0.0.3", "10.0.0.4", "fd00::2"),
		"db":    addrs("10.0.0.5"),
		"db-1":  addrs("10.0.0.5"),
		"empty": nil,
		// An IPv4-mapped address is an IPv4 one; a zero Addr is skipped.
		"odd": {netip.MustParseAddr("::ffff:10.0.0.9"), {}},
	}
	for i := range 200 {
		table["big"] = append(table["big"], netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))
	}
	ptr := map[netip.Addr][]string{
		netip.MustParseAddr("10.0.0.5"): {"db-1.backend", "db.backend."},
		netip.MustParseAddr("fd00::2"):  {"web-1.backend"},
	}
	return names{
		lookup: func(name string) ([]netip.Addr, bool) {
			ips, ok := table[name]
			return ips, ok
		},
		reverse: func(ip netip.Addr) ([]string, bool) {
			n, ok := ptr[ip]
			return n, ok
		},
	}
}

func addrs(s ...string) []netip.Addr {
	var a []netip.Addr
	for _, x := range s {
		a = append(a, netip.MustParseAddr(x))
	}
	return a
}

func question(name string, qtype uint16) *dns.Msg {
	return new(dns.Msg).SetQuestion(name, qtype)
}

// records lists a reply's answers as sorted text without TTLs, or "nil"
// for a question left to the upstreams.
func records(m *dns.Msg) string {
	if m == nil {
		return "nil"
	}
	var rrs []string
	for _, rr := range m.Answer {
		var v string
		switch rr := rr.(type) {
		case *dns.A:
			v = rr.A.String()
		case *dns.AAAA:
			v = rr.AAAA.String()
		case *dns.PTR:
			v = rr.Ptr
		default:
			v = rr.String()
		}
		rrs = append(rrs, dns.TypeToString[rr.Header().Rrtype]+" "+v)
	}
	slices.Sort(rrs)
	return dns.RcodeToString[m.Rcode] + ": " + strings.Join(rrs, ", ")
}

func TestAnswer(t *testing.T) {
	n := testNames()
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"web.", dns.TypeA, "NOERROR: A 10.0.0.2, A 10.0.0.3, A 10.0.0.4"},
		{"web.", dns.TypeAAAA, "NOERROR: AAAA fd00::2"},
		{"web.", dns.TypeANY, "NOERROR: A 10.0.0.2, A 10.0.0.3, A 10.0.0.4, AAAA fd00::2"},
		{"WeB.", dns.TypeA, "NOERROR: A 10.0.0.2, A 10.0.0.3, A 10.0.0.4"},
		// A question built in memory may lack the root's dot.
		{"web", dns.TypeA, "NOERROR: A 10.0.0.2, A 10.0.0.3, A 10.0.0.4"},
		// The name exists but has no record of the type: NODATA.
		{"db.", dns.TypeAAAA, "NOERROR: "},
		{"db.", dns.TypeMX, "NOERROR: "},
		{"empty.", dns.TypeA, "NOERROR: "},
		{"odd.", dns.TypeA, "NOERROR: A 10.0.0.9"},
		{"odd.", dns.TypeAAAA, "NOERROR: "},
		// The search domain appended, another name, the root: upstreams'.
		{"web.example.com.", dns.TypeA, "nil"},
		{"example.com.", dns.TypeA, "nil"},
		{".", dns.TypeNS, "nil"},
		{"5.0.0.10.in-addr.arpa.", dns.TypePTR, "NOERROR: PTR db-1.backend., PTR db.backend."},
		{"5.0.0.10.IN-ADDR.ARPA.", dns.TypePTR, "NOERROR: PTR db-1.backend., PTR db.backend."},
		{"2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR, "NOERROR: PTR web-1.backend."},
		// Addresses that are not the network's, and names that are not
		// addresses, are the upstreams'.
		{"9.9.9.9.in-addr.arpa.", dns.TypePTR, "nil"},
		{"0.0.10.in-addr.arpa.", dns.TypePTR, "nil"},
		{"05.0.0.10.in-addr.arpa.", dns.TypePTR, "nil"},
		{"x.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR, "nil"},
		{"db.", dns.TypePTR, "NOERROR: "},
	} {
		t.Run(dns.TypeToString[tc.qtype]+" "+tc.name, func(t *testing.T) {
			req := question(tc.name, tc.qtype)
			if tc.name == "web" {
				req.Question[0].Name = "web"
			}
			got := n.answer(req)
			if r := records(got); r != tc.want {
				t.Fatalf("got %s, want %s", r, tc.want)
			}
			if got == nil {
				return
			}
			if got.Id != req.Id || !got.Response || got.Question[0] != req.Question[0] {
				t.Errorf("reply does not match the query:\n%v", got)
			}
			for _, rr := range got.Answer {
				if rr.Header().Ttl != ttl || rr.Header().Name != req.Question[0].Name {
					t.Errorf("record %v: want TTL %d and the name as asked", rr, ttl)
				}
			}
		})
	}
}

func TestAnswerMalformed(t *testing.T) {
	n := testNames()

	notify := question("web.", dns.TypeA)
	notify.Opcode = dns.OpcodeNotify
	if got := n.answer(notify); got == nil || got.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY: got %v, want NOTIMP", got)
	}
	two := question("web.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	if got := n.answer(two); got == nil || got.Rcode != dns.RcodeFormatError {
		t.Errorf("two questions: got %v, want FORMERR", got)
	}
	none := new(dns.Msg)
	if got := n.answer(none); got == nil || got.Rcode != dns.RcodeFormatError {
		t.Errorf("no question: got %v, want FORMERR", got)
	}
	chaos := question("web.", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	if got := n.answer(chaos); got != nil {
		t.Errorf("CHAOS class: got %v, want it left to the upstreams", got)
	}
}

func TestAnswerEDNS(t *testing.T) {
	req := question("web.", dns.TypeA).SetEdns0(4096, true)
	got := testNames().answer(req)
	opt := got.IsEdns0()
	if opt == nil || opt.UDPSize() != ednsSize {
		t.Fatalf("want an OPT record of size %d in the reply to an EDNS query:\n%v", ednsSize, got)
	}
	if got := testNames().answer(question("web.", dns.TypeA)); got.IsEdns0() != nil {
		t.Errorf("OPT record in the reply to a query without one:\n%v", got)
	}
}

// FuzzAnswer checks that no message a client can send makes answer panic
// or build a reply that cannot be sent. Its seed corpus is in
// testdata/fuzz/FuzzAnswer: A, AAAA, ANY with EDNS, PTR (IPv4, IPv6),
// a large service, a name that is not the network's, and a NOTIFY.
func FuzzAnswer(f *testing.F) {
	n := testNames()
	f.Fuzz(func(t *testing.T, data []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(data); err != nil {
			return
		}
		got := n.answer(req)
		if got == nil {
			if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
				t.Fatalf("no answer to a malformed query:\n%v", req)
			}
			return
		}
		if got.Id != req.Id || !got.Response {
			t.Fatalf("reply does not match the query:\n%v\n%v", req, got)
		}
		got.Truncate(udpSize(req))
		b, err := got.Pack()
		if err != nil {
			t.Fatalf("reply cannot be packed: %v\n%v", err, got)
		}
		if len(b) > udpSize(req) {
			t.Fatalf("reply of %d bytes for a client that takes %d", len(b), udpSize(req))
		}
	})
}
