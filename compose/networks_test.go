package compose

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/network/netspec"
	"github.com/berth-dev/berth/runtime/spec"
)

// TestCheckPorts: two fixed host ports clash when their protocol and
// port are the same and their addresses overlap (one is every address,
// or both are the same); a replicated service cannot publish one fixed
// port; a port another process holds is refused, one the project's own
// containers hold is not.
func TestCheckPorts(t *testing.T) {
	port, err := netspec.FreePort(context.Background(), "tcp", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	p := fmt.Sprint(port)
	two := 2
	svc := func(name string, scale *int, ports ...types.ServicePortConfig) types.ServiceConfig {
		return types.ServiceConfig{Name: name, Scale: scale, Ports: ports}
	}
	pc := func(ip, published, proto string) types.ServicePortConfig {
		return types.ServicePortConfig{HostIP: ip, Published: published, Target: 80, Protocol: proto}
	}
	for _, tc := range []struct {
		name     string
		services []types.ServiceConfig
		held     []spec.Port
		want     string // in the error; none when empty
	}{
		{"two loopback addresses", []types.ServiceConfig{svc("a", nil, pc("127.0.0.1", p, "tcp")), svc("b", nil, pc("127.0.0.2", p, "tcp"))}, nil, ""},
		{"every address and one", []types.ServiceConfig{svc("a", nil, pc("", p, "tcp")), svc("b", nil, pc("127.0.0.1", p, "tcp"))}, nil, `host port 127.0.0.1:` + p + `/tcp is also published by service "a"`},
		{"one and every address", []types.ServiceConfig{svc("a", nil, pc("127.0.0.1", p, "tcp")), svc("b", nil, pc("0.0.0.0", p, "tcp"))}, nil, `is also published by service "a"`},
		{"the same address", []types.ServiceConfig{svc("a", nil, pc("127.0.0.1", p, "tcp")), svc("b", nil, pc("127.0.0.1", p, "tcp"))}, nil, `is also published by service "a"`},
		{"twice in one service", []types.ServiceConfig{svc("a", nil, pc("", p, "tcp"), pc("", p, "tcp"))}, nil, `is also published by service "a"`},
		{"tcp and udp", []types.ServiceConfig{svc("a", nil, pc("", p, "tcp")), svc("b", nil, pc("", p, "udp"))}, nil, ""},
		{"replicas on one port", []types.ServiceConfig{svc("a", &two, pc("", p, "tcp"))}, nil, fmt.Sprintf("each of its 2 replicas: give a range (%d-%d:80)", port, port+1)},
		{"replicas on a range", []types.ServiceConfig{svc("a", &two, pc("", fmt.Sprintf("%d-%d", port, port+1), "tcp"))}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proj := &types.Project{Services: types.Services{}}
			var names []string
			for _, s := range tc.services {
				proj.Services[s.Name] = s
				names = append(names, s.Name)
			}
			err := checkPorts(proj, names, tc.held)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}

	// Held by another process, and by the project's own container.
	l, err := net.Listen("tcp", "127.0.0.1:"+p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	proj := &types.Project{Services: types.Services{"a": svc("a", nil, pc("127.0.0.1", p, "tcp"))}}
	if err := checkPorts(proj, []string{"a"}, nil); err == nil || !strings.Contains(err.Error(), "host port 127.0.0.1:"+p+"/tcp is already in use") {
		t.Errorf("a port in use: %v", err)
	}
	if err := checkPorts(proj, []string{"a"}, []spec.Port{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 80, Protocol: "tcp"}}); err != nil {
		t.Errorf("a port the project holds: %v", err)
	}
	other := &types.Project{Services: types.Services{"a": svc("a", nil, pc("127.0.0.2", p, "tcp"))}}
	if err := checkPorts(other, []string{"a"}, nil); err != nil {
		t.Errorf("the same port on another address: %v", err)
	}
}

// TestPublishedPortsRange: replicas made at once, each taking a free port
// of a range, take different ones (the ports are free until the replicas
// start); when the range has no port left, the error says so.
func TestPublishedPortsRange(t *testing.T) {
	ctx := context.Background()
	// Three consecutive free ports.
	var lo int
	for range 50 {
		p, err := netspec.FreePort(ctx, "tcp", netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		if p+2 <= 65535 && portFree("tcp", netip.Addr{}, p+1) && portFree("tcp", netip.Addr{}, p+2) {
			lo = p
			break
		}
	}
	if lo == 0 {
		t.Fatal("no three consecutive free ports")
	}
	svc := types.ServiceConfig{Name: "w"}
	pc := types.ServicePortConfig{Target: 80, Published: fmt.Sprintf("%d-%d", lo, lo+2)}
	var claims portClaims
	got := make([]int, 3)
	errs := make(chan error, 3)
	for i := range got {
		go func() {
			ports, err := publishedPorts(ctx, svc, pc, &claims)
			if err == nil {
				got[i] = ports[0].HostPort
			}
			errs <- err
		}()
	}
	for range got {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int]bool{}
	for _, p := range got {
		if p < lo || p > lo+2 || seen[p] {
			t.Fatalf("replicas got ports %v of %d-%d: each a different one of the range", got, lo, lo+2)
		}
		seen[p] = true
	}
	if _, err := publishedPorts(ctx, svc, pc, &claims); err == nil || !strings.Contains(err.Error(), "no free host port in") {
		t.Errorf("a fourth replica: %v", err)
	}
}
