package rootfs

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

const hostHosts = "# the host's\n127.0.0.1 localhost\n192.0.2.7\tbuildhost.example buildhost\n"

func TestHosts(t *testing.T) {
	gw := []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	tests := []struct {
		name string
		cfg  HostsConfig
		want string // the lines after Docker's default ones, or the whole file when it starts with '='
		err  string
	}{
		{name: "defaults only", cfg: HostsConfig{Hostname: "web"}},
		{name: "extra hosts, both separators, in order", cfg: HostsConfig{Hostname: "web", ExtraHosts: []string{
			"db:192.0.2.10", "cache=192.0.2.11", "v6host:::1", "v6eq=2001:db8::1", "bracketed:[2001:db8::2]", "db:192.0.2.12",
		}}, want: "192.0.2.10\tdb\n192.0.2.11\tcache\n::1\tv6host\n2001:db8::1\tv6eq\n2001:db8::2\tbracketed\n192.0.2.12\tdb\n"},
		{name: "own addresses after the extra hosts", cfg: HostsConfig{Hostname: "web", Domainname: "example.test",
			ExtraHosts: []string{"db:192.0.2.10"},
			Addresses:  []netip.Addr{netip.MustParseAddr("172.18.0.2"), netip.MustParseAddr("fd00::2")}},
			want: "192.0.2.10\tdb\n172.18.0.2\tweb.example.test web\nfd00::2\tweb.example.test web\n"},
		{name: "own address, bare hostname", cfg: HostsConfig{Hostname: "web", Addresses: []netip.Addr{netip.MustParseAddr("172.18.0.2")}},
			want: "172.18.0.2\tweb\n"},
		{name: "own address, dotted hostname", cfg: HostsConfig{Hostname: "web.internal", Addresses: []netip.Addr{netip.MustParseAddr("172.18.0.2")}},
			want: "172.18.0.2\tweb.internal web\n"},
		{name: "host-gateway", cfg: HostsConfig{Hostname: "web", ExtraHosts: []string{"host.docker.internal:host-gateway"},
			HostGateway: append(gw, netip.MustParseAddr("fd00::1"))},
			want: "192.0.2.1\thost.docker.internal\nfd00::1\thost.docker.internal\n"},
		{name: "host network copies the host's file", cfg: HostsConfig{Hostname: "web", HostNetwork: true, HostFile: []byte(hostHosts),
			Addresses: []netip.Addr{netip.MustParseAddr("172.18.0.2")}}, want: "=" + hostHosts},
		{name: "host network drops control characters", cfg: HostsConfig{HostNetwork: true, HostFile: []byte("1.2.3.4 a\x00b\n5.6.7.8 c\r\n9.9.9.9 d\re\n")},
			want: "=5.6.7.8 c\n"},
		{name: "host network without a host file", cfg: HostsConfig{HostNetwork: true}},
		// docker/cli#4563: Docker replaces the host's entries when
		// --add-host is given with --network host.
		{name: "host network with extra hosts", cfg: HostsConfig{HostNetwork: true, HostFile: []byte(hostHosts), ExtraHosts: []string{"db:192.0.2.10"}},
			want: "192.0.2.10\tdb\n"},

		{name: "host-gateway unknown", cfg: HostsConfig{ExtraHosts: []string{"host.docker.internal:host-gateway"}}, err: "host-gateway is not available"},
		{name: "no address", cfg: HostsConfig{ExtraHosts: []string{"db"}}, err: `"db" has no address`},
		{name: "bad address", cfg: HostsConfig{ExtraHosts: []string{"db:192.0.2"}}, err: "is not an IP address"},
		{name: "address with a zone", cfg: HostsConfig{ExtraHosts: []string{"db=fe80::1%eth0"}}, err: "is not an IP address"},
		{name: "address with a newline", cfg: HostsConfig{ExtraHosts: []string{"db:192.0.2.1\n6.6.6.6 evil"}}, err: "is not an IP address"},
		{name: "name with a newline", cfg: HostsConfig{ExtraHosts: []string{"db\n6.6.6.6 evil=192.0.2.1"}}, err: "host name"},
		{name: "name with a space", cfg: HostsConfig{ExtraHosts: []string{"db evil:192.0.2.1"}}, err: "host name"},
		{name: "name with a NUL", cfg: HostsConfig{ExtraHosts: []string{"db\x00:192.0.2.1"}}, err: "host name"},
		{name: "empty name", cfg: HostsConfig{ExtraHosts: []string{":192.0.2.1"}}, err: "host name"},
		{name: "hostname with a newline", cfg: HostsConfig{Hostname: "web\n6.6.6.6 evil"}, err: "hostname"},
		{name: "hostname too long", cfg: HostsConfig{Hostname: strings.Repeat("a", 65)}, err: "hostname"},
		{name: "domainname with a tab", cfg: HostsConfig{Hostname: "web", Domainname: "a\tb"}, err: "domainname"},
		{name: "addresses without hostname", cfg: HostsConfig{Addresses: []netip.Addr{netip.MustParseAddr("172.18.0.2")}}, err: "no hostname"},
		{name: "invalid own address", cfg: HostsConfig{Hostname: "web", Addresses: []netip.Addr{{}}}, err: "container address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Hosts(tc.cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				if !errdefs.IsInvalidArgument(err) && !errdefs.IsNotImplemented(err) {
					t.Errorf("error %v is not classified", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaultHosts + tc.want
			if w, ok := strings.CutPrefix(tc.want, "="); ok {
				want = w
			}
			if string(got) != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestHostname(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "web", want: "web\n"},
		{in: "web-1.example", want: "web-1.example\n"},
		{in: "a1b2c3d4e5f6", want: "a1b2c3d4e5f6\n"},
		{in: "", err: "hostname"},
		{in: "web\nx", err: "hostname"},
		{in: "web.", err: "hostname"},
		{in: "-web", err: "hostname"},
		{in: strings.Repeat("a", 63), want: strings.Repeat("a", 63) + "\n"},
		{in: strings.Repeat("a", 64), err: "hostname"}, // a DNS label has at most 63
		{in: strings.Repeat("ab.", 21) + "a", want: strings.Repeat("ab.", 21) + "a\n"},
		{in: strings.Repeat("a.", 32) + "a", err: "at most 64"},
	} {
		got, err := Hostname(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errdefs.IsInvalidArgument(err) {
				t.Errorf("Hostname(%q): error %v, want one with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("Hostname(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

const hostResolv = `# generated by NetworkManager
domain corp.example
search corp.example lab.example
nameserver 127.0.0.53
nameserver 192.0.2.53
nameserver ::1
nameserver 2001:db8::53
nameserver not-an-address
options edns0
options timeout:2 ; trailing
sortlist 130.155.160.0/255.255.240.0
`

func TestResolvConf(t *testing.T) {
	tests := []struct {
		name string
		cfg  ResolvConfig
		want string
		err  string
	}{
		{name: "host's servers without loopback or IPv6", cfg: ResolvConfig{HostFile: []byte(hostResolv)},
			want: "nameserver 192.0.2.53\nsearch corp.example lab.example\noptions edns0 timeout:2 ; trailing\nsortlist 130.155.160.0/255.255.240.0\n"},
		{name: "with IPv6", cfg: ResolvConfig{HostFile: []byte(hostResolv), IPv6: true},
			want: "nameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch corp.example lab.example\noptions edns0 timeout:2 ; trailing\nsortlist 130.155.160.0/255.255.240.0\n"},
		{name: "only loopback: Docker's fallback", cfg: ResolvConfig{HostFile: []byte("nameserver 127.0.0.53\nnameserver 127.1.2.3\nnameserver ::ffff:127.0.0.1\nsearch x.example\n")},
			want: "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch x.example\n"},
		{name: "fallback with IPv6", cfg: ResolvConfig{HostFile: []byte("nameserver ::1\n"), IPv6: true},
			want: "nameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n"},
		{name: "no host file", cfg: ResolvConfig{}, want: "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
		{name: "dns replaces, loopback kept", cfg: ResolvConfig{HostFile: []byte(hostResolv), DNS: []string{"127.0.0.11", "2001:db8::1"}},
			want: "nameserver 127.0.0.11\nnameserver 2001:db8::1\nsearch corp.example lab.example\noptions edns0 timeout:2 ; trailing\nsortlist 130.155.160.0/255.255.240.0\n"},
		{name: "search and options replace", cfg: ResolvConfig{HostFile: []byte(hostResolv), Search: []string{"svc.example"}, Options: []string{"ndots:2", "rotate"}},
			want: "nameserver 192.0.2.53\nsearch svc.example\noptions ndots:2 rotate\nsortlist 130.155.160.0/255.255.240.0\n"},
		{name: "search . means none", cfg: ResolvConfig{HostFile: []byte(hostResolv), Search: []string{"."}},
			want: "nameserver 192.0.2.53\noptions edns0 timeout:2 ; trailing\nsortlist 130.155.160.0/255.255.240.0\n"},
		{name: "host network copies the host's file", cfg: ResolvConfig{HostFile: []byte(hostResolv), HostNetwork: true}, want: hostResolv},
		{name: "host network without a host file", cfg: ResolvConfig{HostNetwork: true}, want: ""},
		{name: "host network with dns_search keeps loopback servers", cfg: ResolvConfig{HostFile: []byte(hostResolv), HostNetwork: true, Search: []string{"a.example"}},
			want: "nameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver ::1\nnameserver 2001:db8::53\nsearch a.example\noptions edns0 timeout:2 ; trailing\nsortlist 130.155.160.0/255.255.240.0\n"},
		{name: "control characters in the host file", cfg: ResolvConfig{HostFile: []byte("nameserver 192.0.2.1\x00\nnameserver 192.0.2.2\r\nsearch a\x07b\n")},
			want: "nameserver 192.0.2.2\n"},
		{name: "zone kept", cfg: ResolvConfig{DNS: []string{"fe80::1%eth0"}}, want: "nameserver fe80::1%eth0\n"},

		{name: "bad dns", cfg: ResolvConfig{DNS: []string{"dns.example"}}, err: "dns: "},
		{name: "dns with a newline", cfg: ResolvConfig{DNS: []string{"192.0.2.1\nnameserver 6.6.6.6"}}, err: "dns: "},
		{name: "dns zone with a newline", cfg: ResolvConfig{DNS: []string{"fe80::1%eth0\nx"}}, err: "dns: "},
		{name: "search with a space", cfg: ResolvConfig{Search: []string{"a.example b.example"}}, err: "dns_search"},
		{name: "search with a NUL", cfg: ResolvConfig{Search: []string{"a\x00"}}, err: "dns_search"},
		{name: "option with a newline", cfg: ResolvConfig{Options: []string{"ndots:1\nnameserver 6.6.6.6"}}, err: "dns_opt"},
		{name: "empty option", cfg: ResolvConfig{Options: []string{""}}, err: "dns_opt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolvConf(tc.cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestCleanWorkingDir(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "", want: "/"},
		{in: "/", want: "/"},
		{in: "/app/", want: "/app"},
		{in: "//srv/./www//", want: "/srv/www"},
		{in: "/procfs/x", want: "/procfs/x"},
		{in: "/devices", want: "/devices"},
		{in: "app", err: "not an absolute path"},
		{in: "./app", err: "not an absolute path"},
		{in: "/a/../b", err: `".." component`},
		{in: "/../../tmp/x", err: `".." component`},
		{in: "/a/..", err: `".." component`},
		{in: "/proc", err: "under /proc"},
		{in: "/proc/self/fd/7", err: "under /proc"},
		{in: "//proc/./self/cwd", err: "under /proc"},
		{in: "/dev/fd/7", err: "under /dev"},
		{in: "/sys/fs", err: "under /sys"},
		{in: "/a\x00b", err: "NUL"},
	} {
		got, err := CleanWorkingDir(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errdefs.IsInvalidArgument(err) {
				t.Errorf("CleanWorkingDir(%q): error %v, want one with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("CleanWorkingDir(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
