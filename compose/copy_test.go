package compose

import (
	"testing"

	"github.com/berth-dev/berth/runtime/spec"
)

// TestMountAt: which of a container's mounts a path is in.
func TestMountAt(t *testing.T) {
	c := ContainerStatus{Mounts: []spec.Mount{{Target: "/data"}, {Target: "/var/lib/db/"}}}
	for p, want := range map[string]string{
		"/data": "/data", "/data/": "/data", "data/x": "/data", "/data/../data/y": "/data",
		"/datax": "", "/": "", "/var/lib/db/base": "/var/lib/db/", "/var/lib": "",
	} {
		m, ok := mountAt(c, p)
		if ok != (want != "") || m.Target != want {
			t.Errorf("%q: %q %v, want %q", p, m.Target, ok, want)
		}
	}
}
