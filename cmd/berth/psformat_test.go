package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

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

// TestPsPorts: published ports and those only exposed, by container port
// in PORTS; Publishers in docker compose's order, exposed ones without
// URL or published port.
func TestPsPorts(t *testing.T) {
	c := compose.ContainerStatus{
		Ports:   []spec.Port{{HostIP: "127.0.0.1", HostPort: 8001, ContainerPort: 8000, Protocol: "tcp"}, {HostPort: 5353, ContainerPort: 53, Protocol: "udp"}},
		Exposed: []string{"53/udp", "80/tcp", "443/tcp", "8000/tcp"},
	}
	ports, pubs := psPorts(c)
	if want := "0.0.0.0:5353->53/udp, 80/tcp, 443/tcp, 127.0.0.1:8001->8000/tcp"; ports != want {
		t.Errorf("ports %q, want %q", ports, want)
	}
	want := []psPublisher{{TargetPort: 80, Protocol: "tcp"}, {TargetPort: 443, Protocol: "tcp"},
		{URL: "0.0.0.0", TargetPort: 53, PublishedPort: 5353, Protocol: "udp"}, {URL: "127.0.0.1", TargetPort: 8000, PublishedPort: 8001, Protocol: "tcp"}}
	if !slices.Equal(pubs, want) {
		t.Errorf("publishers %+v, want %+v", pubs, want)
	}
}
