package hostpaths

import "testing"

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		want    Paths
	}{
		{"defaults", nil, Paths{Root: "/var/lib/berth", Run: "/run/berth"}},
		{"set", []string{"BERTH_ROOT=/srv/b", "BERTH_RUN=/run/b", "BERTH_CGROUP_PARENT=/b"}, Paths{Root: "/srv/b", Run: "/run/b", CgroupParent: "/b"}},
		{"empty means the default", []string{"BERTH_ROOT=", "BERTH_RUN="}, Paths{Root: "/var/lib/berth", Run: "/run/berth"}},
		{"the last value wins", []string{"BERTH_ROOT=/a", "BERTH_ROOT=/b"}, Paths{Root: "/b", Run: "/run/berth"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FromEnv(tc.environ)
			if got != tc.want {
				t.Errorf("FromEnv(%q) = %+v, want %+v", tc.environ, got, tc.want)
			}
		})
	}
}

func TestPlaces(t *testing.T) {
	p := Paths{Root: "/r", Run: "/run/x"}
	for got, want := range map[string]string{
		p.Containers():           "/r/containers",
		p.Images():               "/r/images",
		p.Networks():             "/r/networks",
		p.Volumes():              "/r/volumes",
		p.NetNS():                "/run/x/netns",
		p.ProjectRun("web"):      "/run/x/projects/web",
		p.SupervisorState("web"): "/r/projects/web/supervisor.json",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}
