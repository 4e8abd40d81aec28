package compose

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/project"
)

// planProject is the project the plan tests converge: db, a cache, a web
// service that depends on both (restarting with db), a sidecar in web's
// network namespace, and a worker of profile jobs.
const planProject = `
name: shop
services:
  db:
    image: postgres:15
  cache:
    image: redis:7
  web:
    image: busybox
    depends_on:
      db: {condition: service_started, restart: true}
      cache: {condition: service_started}
  sidecar:
    image: busybox
    network_mode: "service:web"
  worker:
    image: busybox
    profiles: [jobs]
`

func loadPlanProject(t *testing.T, yaml string) (*types.Project, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := project.Load(context.Background(), project.Options{Files: []string{file}, WorkingDir: dir, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	hashes := map[string]string{}
	for name, s := range p.Services {
		if hashes[name], err = project.ServiceHash(s); err != nil {
			t.Fatal(err)
		}
	}
	return p, hashes
}

// running is every service of the project up to date and running.
func running(hashes map[string]string, services ...string) []Observed {
	var out []Observed
	for _, s := range services {
		out = append(out, Observed{Name: "shop-" + s + "-1", Service: s, Number: 1, ConfigHash: hashes[s], State: "running"})
	}
	return out
}

func TestPlanUp(t *testing.T) {
	p, hashes := loadPlanProject(t, planProject)
	all := running(hashes, "db", "cache", "web", "sidecar")
	changed := func(service string, obs []Observed) []Observed {
		out := append([]Observed(nil), obs...)
		for i := range out {
			if out[i].Service == service {
				out[i].ConfigHash = "old"
			}
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		observed []Observed
		o        UpOptions
		want     string
	}{
		{
			name: "nothing there: everything created, in dependency order",
			want: `
level 0:
  create   shop-cache-1 (no container)
  create   shop-db-1 (no container)
level 1:
  create   shop-web-1 (no container)
level 2:
  create   shop-sidecar-1 (no container)`,
		},
		{
			name:     "unchanged and running: nothing to do",
			observed: all,
			want: `
level 0:
  keep     shop-cache-1 (running, unchanged)
  keep     shop-db-1 (running, unchanged)
level 1:
  keep     shop-web-1 (running, unchanged)
level 2:
  keep     shop-sidecar-1 (running, unchanged)`,
		},
		{
			name:     "db changed: db recreated, web restarts with it (restart: true)",
			observed: changed("db", all),
			want: `
level 0:
  keep     shop-cache-1 (running, unchanged)
  recreate shop-db-1 (configuration changed)
level 1:
  restart  shop-web-1 (its dependency db is recreated (restart: true))
level 2:
  keep     shop-sidecar-1 (running, unchanged)`,
		},
		{
			name:     "web changed: the sidecar in its network namespace is recreated with it",
			observed: changed("web", all),
			want: `
level 0:
  keep     shop-cache-1 (running, unchanged)
  keep     shop-db-1 (running, unchanged)
level 1:
  recreate shop-web-1 (configuration changed)
level 2:
  recreate shop-sidecar-1 (it shares the namespaces of web, recreated)`,
		},
		{
			name:     "cache changed: web is not recreated (no restart: true)",
			observed: changed("cache", all),
			want: `
level 0:
  recreate shop-cache-1 (configuration changed)
  keep     shop-db-1 (running, unchanged)
level 1:
  keep     shop-web-1 (running, unchanged)
level 2:
  keep     shop-sidecar-1 (running, unchanged)`,
		},
		{
			name:     "--no-recreate keeps a changed container, starts a stopped one",
			observed: append(changed("db", running(hashes, "db")), Observed{Name: "shop-cache-1", Service: "cache", Number: 1, ConfigHash: hashes["cache"], State: "exited"}),
			o:        UpOptions{Services: []string{"db", "cache"}, NoRecreate: true},
			want: `
level 0:
  start    shop-cache-1 (exited, --no-recreate)
  keep     shop-db-1 (running, --no-recreate)`,
		},
		{
			name:     "up web: its dependencies come along, --force-recreate applies to web only",
			observed: all,
			o:        UpOptions{Services: []string{"web"}, ForceRecreate: true},
			want: `
level 0:
  keep     shop-cache-1 (running, unchanged)
  keep     shop-db-1 (running, unchanged)
level 1:
  recreate shop-web-1 (--force-recreate)`,
		},
		{
			name:     "--renew-anon-volumes recreates the selected services, not their dependencies",
			observed: all,
			o:        UpOptions{Services: []string{"web"}, RenewAnonVolumes: true},
			want: `
level 0:
  keep     shop-cache-1 (running, unchanged)
  keep     shop-db-1 (running, unchanged)
level 1:
  recreate shop-web-1 (--renew-anon-volumes)`,
		},
		{
			name:     "--always-recreate-deps recreates the dependencies",
			observed: all,
			o:        UpOptions{Services: []string{"web"}, AlwaysRecreateDeps: true},
			want: `
level 0:
  recreate shop-cache-1 (--always-recreate-deps)
  recreate shop-db-1 (--always-recreate-deps)
level 1:
  restart  shop-web-1 (its dependency db is recreated (restart: true))`,
		},
		{
			name:     "--no-deps: the named service alone",
			observed: nil,
			o:        UpOptions{Services: []string{"web"}, NoDeps: true},
			want: `
level 0:
  create   shop-web-1 (no container)`,
		},
		{
			name: "--scale up keeps the replicas there, --scale down removes the highest",
			observed: append(running(hashes, "db"),
				Observed{Name: "shop-web-1", Service: "web", Number: 1, ConfigHash: hashes["web"], State: "running"},
				Observed{Name: "shop-cache-1", Service: "cache", Number: 1, ConfigHash: hashes["cache"], State: "running"},
				Observed{Name: "shop-cache-2", Service: "cache", Number: 2, ConfigHash: hashes["cache"], State: "running"},
				Observed{Name: "shop-cache-3", Service: "cache", Number: 3, ConfigHash: hashes["cache"], State: "running"}),
			o: UpOptions{Services: []string{"web", "cache"}, NoDeps: true, Scale: map[string]int{"web": 3, "cache": 1}},
			want: `
level 0:
  keep     shop-cache-1 (running, unchanged)
level 1:
  keep     shop-web-1 (running, unchanged)
  create   shop-web-2 (no container)
  create   shop-web-3 (no container)
then:
  remove   shop-cache-2 (scale is 1)
  remove   shop-cache-3 (scale is 1)`,
		},
		{
			name:     "orphans are listed, removed with --remove-orphans; an inactive profile's containers are left alone",
			observed: append(running(hashes, "db"), Observed{Name: "shop-old-1", Service: "old", Number: 1, State: "running"}, Observed{Name: "shop-worker-1", Service: "worker", Number: 1, State: "exited"}),
			o:        UpOptions{Services: []string{"db"}},
			want: `
level 0:
  keep     shop-db-1 (running, unchanged)
then:
  orphan   shop-old-1 (service old is not in the project)`,
		},
		{
			name:     "--remove-orphans",
			observed: append(running(hashes, "db"), Observed{Name: "shop-old-1", Service: "old", Number: 1, State: "running"}),
			o:        UpOptions{Services: []string{"db"}, RemoveOrphans: true},
			want: `
level 0:
  keep     shop-db-1 (running, unchanged)
then:
  remove   shop-old-1 (service old is not in the project)`,
		},
		{
			name:     "--compatibility: new containers named with _, existing ones keep their names",
			observed: running(hashes, "db"),
			o:        UpOptions{Compatibility: true},
			want: `
level 0:
  create   shop_cache_1 (no container)
  keep     shop-db-1 (running, unchanged)
level 1:
  create   shop_web_1 (no container)
level 2:
  create   shop_sidecar_1 (no container)`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := PlanUp(p, tc.observed, hashes, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := strings.TrimSpace(plan.String()), strings.TrimSpace(tc.want); got != want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestPlanUpChanges(t *testing.T) {
	p, hashes := loadPlanProject(t, planProject)
	plan, err := PlanUp(p, running(hashes, "db", "cache", "web", "sidecar"), hashes, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Changes() {
		t.Errorf("an up-to-date project plans changes:\n%s", plan)
	}
	if _, err := PlanUp(p, nil, hashes, UpOptions{ForceRecreate: true, NoRecreate: true}); err == nil {
		t.Error("--force-recreate with --no-recreate accepted")
	}
	if _, err := PlanUp(p, nil, hashes, UpOptions{RenewAnonVolumes: true, NoRecreate: true}); err == nil {
		t.Error("--renew-anon-volumes with --no-recreate accepted")
	}
	if _, err := PlanUp(p, nil, hashes, UpOptions{Services: []string{"nosuch"}}); err == nil || !strings.Contains(err.Error(), "no such service: nosuch") {
		t.Errorf("unknown service: %v", err)
	}
}

// TestWithRestartDependants: restart takes along the services that depend
// on a restarted one with restart: true, transitively, and no others.
func TestWithRestartDependants(t *testing.T) {
	p, _ := loadPlanProject(t, `
services:
  db: {image: busybox}
  cache: {image: busybox}
  api:
    image: busybox
    depends_on:
      db: {condition: service_started, restart: true}
      cache: {condition: service_started}
  worker:
    image: busybox
    depends_on:
      api: {condition: service_started, restart: true}
  web:
    image: busybox
    depends_on: [api]
`)
	for _, tc := range []struct{ in, want string }{
		{"db", "db api worker"},
		{"cache", "cache"},
		{"api", "api worker"},
		{"web", "web"},
		{"cache db", "cache db api worker"},
	} {
		if got := strings.Join(withRestartDependants(p, strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.in, got, tc.want)
		}
	}
}
