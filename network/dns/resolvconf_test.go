package dns

import (
	"net/netip"
	"slices"
	"testing"
)

func TestUpstreams(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		want       []string
	}{
		{"empty", "", nil},
		{"systemd-resolved", "# This is /etc/resolv.conf\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.com\n", []string{"127.0.0.53:53"}},
		{"in order", "nameserver 10.0.0.1\nnameserver 10.0.0.2\n", []string{"10.0.0.1:53", "10.0.0.2:53"}},
		{"IPv6 and zone", "nameserver 2001:db8::1\nnameserver fe80::1%eth0\n", []string{"[2001:db8::1]:53", "[fe80::1%eth0]:53"}},
		{"IPv4-mapped", "nameserver ::ffff:10.0.0.1\n", []string{"10.0.0.1:53"}},
		{"spaces, tabs, CRLF", "  nameserver\t10.0.0.1  \r\n", []string{"10.0.0.1:53"}},
		{"invalid skipped", "nameserver\nnameserver dns.example.com\nnameserver 10.0.0.300\nnameserver 10.0.0.1:53\nnameservers 10.0.0.2\n#nameserver 10.0.0.3\n; nameserver 10.0.0.4\nnameserver 10.0.0.5\n", []string{"10.0.0.5:53"}},
		{"trailing words ignored", "nameserver 10.0.0.1 # office\n", []string{"10.0.0.1:53"}},
		{"glibc reads three", "nameserver 10.0.0.1\nnameserver bad\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n", []string{"10.0.0.1:53", "10.0.0.2:53", "10.0.0.3:53"}},
		{"no final newline", "nameserver 10.0.0.1", []string{"10.0.0.1:53"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []netip.AddrPort
			for _, w := range tc.want {
				want = append(want, netip.MustParseAddrPort(w))
			}
			if got := Upstreams([]byte(tc.conf)); !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}
