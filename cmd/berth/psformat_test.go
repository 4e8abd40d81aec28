package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/runtime/spec"
)

func TestPsTemplate(t *testing.T) {
	rows := []psRow{
		{Name: "p-web-1", Service: "web", Status: "Up 2 minutes", ExitCode: 0, Publishers: []psPublisher{{URL: "0.0.0.0", TargetPort: 80, PublishedPort: 8080, Protocol: "tcp"}}},
		{Name: "p-db-1", Service: "db", Status: "Exited (3) 1 second ago", ExitCode: 3, Publishers: []psPublisher{}},
	}
	for _, tc := range []struct{ format, want, err string }{
		{format: "{{.Name}}", want: "p-web-1\np-db-1\n"},
		{format: `{{.Service}}\t{{.ExitCode}}`, want: "web\t0\ndb\t3\n"},
		{format: "{{json .Publishers}}", want: `[{"URL":"0.0.0.0","TargetPort":80,"PublishedPort":8080,"Protocol":"tcp"}]` + "\n[]\n"},
		{format: "{{upper .Service}} {{truncate .Status 2}}", want: "WEB Up\nDB Ex\n"},
		{format: `table {{.Name}}\t{{.Status}}`, want: "NAME      STATUS\np-web-1   Up 2 minutes\np-db-1    Exited (3) 1 second ago\n"},
		{format: "{{.Name", err: "unclosed action"},
		{format: "{{.Nope}}", err: "can't evaluate field Nope"},
	} {
		var b bytes.Buffer
		tmpl, table, err := parsePsTemplate(tc.format)
		if err == nil {
			err = printPsTemplate(&b, tmpl, table, rows)
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.format, err, tc.err)
			}
			continue
		}
		if err != nil || b.String() != tc.want {
			t.Errorf("%q: %v\n%q\nwant\n%q", tc.format, err, b.String(), tc.want)
		}
	}
}

// TestPsPorts: published ports and those only exposed in PORTS as docker
// compose writes them; Publishers in docker compose's order, exposed ones
// without URL or published port.
func TestPsPorts(t *testing.T) {
	c := compose.ContainerStatus{
		Status:  "running",
		Ports:   []spec.Port{{HostIP: "127.0.0.1", HostPort: 8001, ContainerPort: 8000, Protocol: "tcp"}, {HostPort: 5353, ContainerPort: 53, Protocol: "udp"}},
		Exposed: []string{"53/udp", "80/tcp", "443/tcp", "8000/tcp"},
	}
	ports, pubs := psPorts(c)
	if want := "80/tcp, 443/tcp, 0.0.0.0:5353->53/udp, 127.0.0.1:8001->8000/tcp"; ports != want {
		t.Errorf("ports %q, want %q", ports, want)
	}
	want := []psPublisher{{TargetPort: 80, Protocol: "tcp"}, {TargetPort: 443, Protocol: "tcp"},
		{URL: "0.0.0.0", TargetPort: 53, PublishedPort: 5353, Protocol: "udp"}, {URL: "127.0.0.1", TargetPort: 8000, PublishedPort: 8001, Protocol: "tcp"}}
	if !slices.Equal(pubs, want) {
		t.Errorf("publishers %+v, want %+v", pubs, want)
	}
	// A stopped container holds no port, as docker ps shows it.
	c.Status = "exited"
	if ports, pubs := psPorts(c); ports != "" || len(pubs) != 0 || pubs == nil {
		t.Errorf("stopped: ports %q, publishers %+v", ports, pubs)
	}
}

// TestPsRowMountsNetworks: Networks, Mounts and LocalVolumes of ps --format
// json as docker ps's: the networks by name, sorted; a volume by its name
// and a bind mount by its source, each cut to 15 characters; the volumes
// counted.
func TestPsRowMountsNetworks(t *testing.T) {
	c := compose.ContainerStatus{
		Name: "p-a-1", Status: "running",
		Networks: []string{"p_front", "p_back"},
		Mounts: []spec.Mount{
			{Type: "bind", Source: "/srv/data/long/path", Target: "/data", Volume: "p_db"},
			{Type: "bind", Source: "/home/me/app", Target: "/app"},
			{Type: "tmpfs", Target: "/tmp"},
			{Type: "bind", Source: "/x", Target: "/anon", Volume: "0123456789abcdef0123"},
		},
	}
	var b strings.Builder
	if err := printPs(&b, []compose.ContainerStatus{c}, psOptions{format: "json"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	var row psRow
	if err := json.Unmarshal([]byte(b.String()), &row); err != nil {
		t.Fatal(err)
	}
	if row.Networks != "p_back,p_front" || row.Mounts != "p_db,/home/me/app,0123456789abcd…" || row.LocalVolumes != "2" {
		t.Errorf("networks %q, mounts %q, local volumes %q", row.Networks, row.Mounts, row.LocalVolumes)
	}
}

// TestDisplayPorts: PORTS as docker ps and docker compose ps write it
// (docker/cli's DisplayablePorts): runs of consecutive ports in one entry,
// ports published on another port last.
func TestDisplayPorts(t *testing.T) {
	pub := func(url string, target, published int, proto string) psPublisher {
		return psPublisher{URL: url, TargetPort: target, PublishedPort: published, Protocol: proto}
	}
	exposed := func(target int, proto string) psPublisher { return psPublisher{TargetPort: target, Protocol: proto} }
	var rng []psPublisher
	for p := 20999; p >= 20000; p-- {
		rng = append(rng, pub("127.0.0.1", p, p, "tcp"))
	}
	for _, tc := range []struct {
		name string
		in   []psPublisher
		want string
	}{
		{"none", nil, ""},
		{"one published", []psPublisher{pub("0.0.0.0", 80, 8080, "tcp")}, "0.0.0.0:8080->80/tcp"},
		{"exposed, not consecutive", []psPublisher{exposed(8080, "tcp"), exposed(443, "tcp"), exposed(80, "tcp")}, "80/tcp, 443/tcp, 8080/tcp"},
		{"exposed range", []psPublisher{exposed(8001, "tcp"), exposed(8000, "tcp"), exposed(8002, "tcp"), exposed(9000, "tcp")}, "8000-8002/tcp, 9000/tcp"},
		{"published range on the same ports", rng, "127.0.0.1:20000-20999->20000-20999/tcp"},
		{"protocols apart", []psPublisher{exposed(53, "udp"), exposed(53, "tcp"), exposed(54, "udp")}, "53/tcp, 53-54/udp"},
		{"remapped last, by port then address", []psPublisher{
			pub("127.0.0.1", 80, 18482, "tcp"), pub("0.0.0.0", 80, 18481, "tcp"), exposed(443, "tcp"), pub("0.0.0.0", 53535, 18483, "udp"),
		}, "443/tcp, 0.0.0.0:18481->80/tcp, 127.0.0.1:18482->80/tcp, 0.0.0.0:18483->53535/udp"},
		{"same port published and exposed runs", []psPublisher{
			pub("0.0.0.0", 5432, 5432, "tcp"), exposed(80, "tcp"), exposed(81, "tcp"), pub("0.0.0.0", 5433, 5433, "tcp"),
		}, "80-81/tcp, 0.0.0.0:5432-5433->5432-5433/tcp"},
		{"IPv6 address in brackets", []psPublisher{pub("::1", 80, 8080, "tcp"), pub("::", 9000, 9000, "tcp")}, "[::]:9000->9000/tcp, [::1]:8080->80/tcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := displayPorts(tc.in); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPsTruncated: ps cuts ID to 12 digits and Command to 20 characters,
// quoted, as docker compose ps does in every format; --no-trunc keeps both
// whole.
func TestPsTruncated(t *testing.T) {
	c := compose.ContainerStatus{
		ID: strings.Repeat("0123456789abcdef", 4), Name: "p-a-1", Status: "running",
		Command: []string{"sh", "-c", "sleep 3; touch /tmp/ready"},
	}
	for _, tc := range []struct {
		trunc       bool
		id, command string
	}{
		{true, "0123456789ab", `"sh -c sleep 3; touc…"`},
		{false, c.ID, `"sh -c sleep 3; touch /tmp/ready"`},
	} {
		var b strings.Builder
		if err := printPs(&b, []compose.ContainerStatus{c}, psOptions{format: "json", trunc: tc.trunc}, time.Now()); err != nil {
			t.Fatal(err)
		}
		var row psRow
		if err := json.Unmarshal([]byte(b.String()), &row); err != nil {
			t.Fatal(err)
		}
		if row.ID != tc.id || row.Command != tc.command {
			t.Errorf("trunc %v: ID %q Command %q, want %q %q", tc.trunc, row.ID, row.Command, tc.id, tc.command)
		}
		b.Reset()
		printPs(&b, []compose.ContainerStatus{c}, psOptions{format: "table", trunc: tc.trunc}, time.Now())
		if !strings.Contains(b.String(), tc.command) {
			t.Errorf("trunc %v: table without %s:\n%s", tc.trunc, tc.command, b.String())
		}
	}
}
