package rootfs

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// The fuzz targets' seed corpora are in testdata/fuzz; values joined with
// '|' are lists.

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "|")
}

func FuzzParsePasswd(f *testing.F) {
	f.Add([]byte(testPasswd), "app")
	f.Add([]byte("a:x:1:1::/:/bin/sh\n:x:0:0\n::::::\n+::::::\n"), "1")
	f.Fuzz(func(t *testing.T, passwd []byte, spec string) {
		for _, e := range parsePasswd(passwd) {
			if e.name == "" || strings.ContainsAny(e.name, ":\n\x00") || e.uid > maxID || e.gid > maxID || (e.home != "" && !validHome(e.home)) {
				t.Fatalf("bad entry %+v", e)
			}
		}
		u, err := ResolveUserFrom(spec, nil, bytes.NewReader(passwd), strings.NewReader(testGroup))
		checkUser(t, u, err)
	})
}

func FuzzParseGroup(f *testing.F) {
	f.Add([]byte(testGroup), "app", "docker|12")
	f.Add([]byte("g:x:1:a,,b, c\n:x:2:\ng:x:99999999999:\n"), "0:g", "g")
	f.Fuzz(func(t *testing.T, group []byte, spec, groupAdd string) {
		for _, e := range parseGroup(group) {
			if e.name == "" || strings.ContainsAny(e.name, ":\n\x00") || e.gid > maxID {
				t.Fatalf("bad entry %+v", e)
			}
			for _, m := range e.members {
				if m == "" || strings.ContainsAny(m, ",:\n\x00") {
					t.Fatalf("bad member %q in %+v", m, e)
				}
			}
		}
		u, err := ResolveUserFrom(spec, split(groupAdd), strings.NewReader(testPasswd), bytes.NewReader(group))
		checkUser(t, u, err)
	})
}

func checkUser(t *testing.T, u User, err error) {
	t.Helper()
	if err != nil {
		return
	}
	if u.UID > maxID || u.GID > maxID || len(u.AdditionalGIDs) == 0 || u.AdditionalGIDs[0] != u.GID || !validHome(u.Home) {
		t.Fatalf("bad user %+v", u)
	}
	seen := map[uint32]bool{}
	for _, g := range u.AdditionalGIDs {
		if seen[g] || g > maxID {
			t.Fatalf("bad groups %+v", u)
		}
		seen[g] = true
	}
}

func FuzzHosts(f *testing.F) {
	f.Add("web", "example.test", "db:192.0.2.10|v6=[::1]|gw:host-gateway", false, []byte(hostHosts), "172.18.0.2")
	f.Add("web", "", "", true, []byte(hostHosts), "")
	f.Add("web\n1.2.3.4 evil", "x", "a:1.2.3.4\nb", true, []byte("1.1.1.1 a\x00\n"), "fd00::1")
	f.Fuzz(func(t *testing.T, hostname, domainname, extra string, hostNetwork bool, hostFile []byte, addr string) {
		cfg := HostsConfig{
			Hostname: hostname, Domainname: domainname, ExtraHosts: split(extra),
			HostGateway: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
			HostNetwork: hostNetwork, HostFile: hostFile,
		}
		if a, err := netip.ParseAddr(addr); err == nil {
			cfg.Addresses = []netip.Addr{a}
		}
		out, err := Hosts(cfg)
		if err != nil {
			return
		}
		checkText(t, out)
		fromHost := hostFileLines(hostFile)
		defaults := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSuffix(defaultHosts, "\n"), "\n") {
			defaults[l] = true
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
			if line == "" && len(out) == 0 || defaults[line] || hostNetwork && fromHost[line] {
				continue
			}
			a, names, ok := strings.Cut(line, "\t")
			if _, err := netip.ParseAddr(a); err != nil || !ok {
				t.Fatalf("line %q: not an address and names", line)
			}
			for n := range strings.SplitSeq(names, " ") {
				if validName("name", n) != nil {
					t.Fatalf("line %q: name %q was not validated", line, n)
				}
			}
		}
	})
}

func FuzzResolvConf(f *testing.F) {
	f.Add([]byte(hostResolv), "", "", "", false, false)
	f.Add([]byte(hostResolv), "192.0.2.1|fe80::1%eth0", ".|svc.example", "ndots:2", true, true)
	f.Add([]byte("nameserver 1.1.1.1\x00\nsearch a\nb\n"), "1.1.1.1\nnameserver 6.6.6.6", "a b", "x\ny", false, false)
	f.Fuzz(func(t *testing.T, hostFile []byte, dns, search, options string, hostNetwork, ipv6 bool) {
		out, err := ResolvConf(ResolvConfig{HostFile: hostFile, DNS: split(dns), Search: split(search), Options: split(options), HostNetwork: hostNetwork, IPv6: ipv6})
		if err != nil {
			return
		}
		checkText(t, out)
		fromHost := hostFileLines(hostFile)
		for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
			if line == "" && len(out) == 0 || fromHost[line] {
				continue
			}
			directive, rest, _ := strings.Cut(line, " ")
			switch directive {
			case "nameserver":
				if a, err := netip.ParseAddr(rest); err != nil || !validZone(a.Zone()) {
					t.Fatalf("line %q: not an address", line)
				}
			case "search", "options":
				// Tokens are either validated values or the host's.
				for _, tok := range strings.Split(rest, " ") {
					if tok == "" || !bytes.Contains(hostFile, []byte(tok)) && validName("", tok) != nil && !validOption(tok) {
						t.Fatalf("line %q: token %q came from nowhere", line, tok)
					}
				}
			default:
				t.Fatalf("line %q was not produced from validated input", line)
			}
		}
	})
}

// checkText asserts generated content is lines of printable text.
func checkText(t *testing.T, out []byte) {
	t.Helper()
	if len(out) > 0 && out[len(out)-1] != '\n' {
		t.Fatalf("no final newline: %q", out)
	}
	for _, c := range out {
		if c == 0 || (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			t.Fatalf("control character %q in %q", c, out)
		}
	}
}

// hostFileLines are the lines of a host file as they may be copied.
func hostFileLines(file []byte) map[string]bool {
	m := map[string]bool{}
	for l := range bytes.Lines(file) {
		m[strings.TrimSuffix(strings.TrimSuffix(string(l), "\n"), "\r")] = true
	}
	return m
}
