package project

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// load parses an inline project (compose-go's helpers_test.go style).
func load(t *testing.T, yaml string, opts ...func(*Options)) (*types.Project, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	o := Options{Environ: []string{}, Name: "test"}
	for _, f := range opts {
		f(&o)
	}
	return Load(context.Background(), o)
}

func graphOf(t *testing.T, yaml string, opts ...func(*Options)) *Graph {
	t.Helper()
	p, err := load(t, yaml, opts...)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGraph(p)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

const chain = `
services:
  web: {image: busybox, depends_on: [api, cache]}
  api: {image: busybox, depends_on: {db: {condition: service_healthy, restart: true}}}
  cache: {image: busybox}
  db: {image: busybox}
  worker: {image: busybox, links: ["db:database"], volumes_from: ["cache:ro", "container:other"]}
  sidecar: {image: busybox, network_mode: "service:web", ipc: "service:api", pid: "service:web"}
`

func TestGraphLevelsAndOrders(t *testing.T) {
	g := graphOf(t, chain)
	for _, tc := range []struct {
		name string
		got  any
		want string
	}{
		{"levels", g.Levels(), "[[cache db] [api worker] [web] [sidecar]]"},
		{"stop levels", g.StopLevels(), "[[sidecar] [web] [api worker] [cache db]]"},
		{"order", g.Order(), "[db api cache web sidecar worker]"},
		{"dependants of db", g.Dependants("db"), "[api worker]"},
		{"dependencies of sidecar", g.Dependencies("sidecar"), "[{api [depends_on ipc] service_started true true} {web [depends_on network_mode pid] service_started true true}]"},
		{"dependencies of api", g.Dependencies("api"), "[{db [depends_on] service_healthy true true}]"},
		{"dependencies of worker", g.Dependencies("worker"), "[{cache [depends_on volumes_from] service_started false true} {db [depends_on links] service_started true true}]"},
	} {
		if got := fmt.Sprint(tc.got); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestGraphClosures(t *testing.T) {
	g := graphOf(t, chain)
	for _, tc := range []struct {
		name     string
		fn       func(...string) ([]string, error)
		services []string
		want     string
	}{
		{"up web", g.WithDependencies, []string{"web"}, "[api cache db web]"},
		{"up worker cache", g.WithDependencies, []string{"worker", "cache"}, "[cache db worker]"},
		{"recreate db", g.WithDependants, []string{"db"}, "[api db sidecar web worker]"},
		{"recreate sidecar", g.WithDependants, []string{"sidecar"}, "[sidecar]"},
	} {
		got, err := tc.fn(tc.services...)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, got, tc.want)
		}
	}
	if _, err := g.WithDependencies("nope"); err == nil || !strings.Contains(err.Error(), `no such service: "nope"`) {
		t.Errorf("unknown service: error %v", err)
	}
}

func TestGraphDoesNotChangeTheProject(t *testing.T) {
	p, err := load(t, chain, func(o *Options) { o.NoNormalize = true })
	if err != nil {
		t.Fatal(err)
	}
	before, _ := p.MarshalJSON()
	if _, err := NewGraph(p); err != nil {
		t.Fatal(err)
	}
	after, _ := p.MarshalJSON()
	if string(before) != string(after) {
		t.Error("building the graph changed the project")
	}
}

// (Normalisation turns links, network_mode, ipc, pid and volumes_from into
// implicit depends_on entries with restart: true, as docker compose does.)
//
// Without normalisation compose-go adds no implicit depends_on: berth's
// graph still sees links, network_mode and volumes_from, and their cycles.
func TestGraphErrorsWithoutNormalisation(t *testing.T) {
	noNormalize := func(o *Options) { o.NoNormalize = true }
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"cycle through links and volumes_from", `
services:
  b: {image: busybox, volumes_from: [a]}
  a: {image: busybox, links: [c]}
  c: {image: busybox, network_mode: "service:b"}
`, `compose.yaml:4: service "a": links: dependency cycle: a -> c -> b -> a`},
		{"undefined ipc service", `
services:
  a: {image: busybox, ipc: "service:ghost"}
`, `compose.yaml:3: service "a": ipc: service "ghost" is not defined`},
		{"optional dependency disabled by profiles is dropped", `
services:
  a: {image: busybox, depends_on: {tool: {condition: service_started, required: false}}}
  tool: {image: busybox, profiles: [tools]}
`, ``},
		{"optional dependency must still exist", `
services:
  a: {image: busybox, depends_on: {ghost: {condition: service_started, required: false}}}
`, `compose.yaml:3: service "a": depends_on: service "ghost" is not defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := load(t, tc.yaml, noNormalize)
			if err == nil {
				_, err = NewGraph(p)
			}
			got := ""
			if err != nil {
				got, _, _ = strings.Cut(err.Error(), "\n")
			}
			if got != tc.want {
				t.Errorf("error %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGraphCycleIsStable(t *testing.T) {
	// The same cycle, written in different orders, reads the same.
	for _, yaml := range []string{
		"services:\n  z: {image: busybox, depends_on: [m]}\n  m: {image: busybox, depends_on: [b]}\n  b: {image: busybox, depends_on: [z]}\n",
		"services:\n  b: {image: busybox, depends_on: [z]}\n  z: {image: busybox, depends_on: [m]}\n  m: {image: busybox, depends_on: [b]}\n",
	} {
		for range 5 {
			_, err := load(t, yaml)
			if err == nil || !strings.Contains(err.Error(), "dependency cycle: b -> z -> m -> b") {
				t.Fatalf("error %v, want the cycle b -> z -> m -> b", err)
			}
		}
	}
}

func TestGraphWalk(t *testing.T) {
	g := graphOf(t, chain)
	for _, tc := range []struct {
		name string
		o    WalkOptions
	}{
		{"forward", WalkOptions{}},
		{"forward, one at a time", WalkOptions{Limit: 1}},
		{"reverse", WalkOptions{Reverse: true}},
		{"reverse, two at a time", WalkOptions{Reverse: true, Limit: 2}},
		{"subset", WalkOptions{Services: []string{"web", "api", "db"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			done := map[string]bool{}
			var running, peak atomic.Int32
			err := g.Walk(context.Background(), tc.o, func(ctx context.Context, s string) error {
				n := running.Add(1)
				defer running.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				mu.Lock()
				defer mu.Unlock()
				for _, d := range g.Dependencies(s) {
					if tc.o.Reverse {
						break
					}
					if (tc.o.Services == nil || slices.Contains(tc.o.Services, d.Service)) && !done[d.Service] {
						t.Errorf("%s visited before its dependency %s", s, d.Service)
					}
				}
				if tc.o.Reverse {
					for _, d := range g.Dependants(s) {
						if !done[d] {
							t.Errorf("%s visited before its dependant %s", s, d)
						}
					}
				}
				done[s] = true
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := len(g.Services())
			if tc.o.Services != nil {
				want = len(tc.o.Services)
			}
			if len(done) != want {
				t.Errorf("visited %d services, want %d", len(done), want)
			}
			if tc.o.Limit > 0 && int(peak.Load()) > tc.o.Limit {
				t.Errorf("%d visits at once, limit %d", peak.Load(), tc.o.Limit)
			}
		})
	}
}

func TestGraphWalkStopsOnError(t *testing.T) {
	g := graphOf(t, chain)
	var visited sync.Map
	err := g.Walk(context.Background(), WalkOptions{}, func(ctx context.Context, s string) error {
		visited.Store(s, true)
		if s == "db" {
			return fmt.Errorf("db failed")
		}
		time.Sleep(10 * time.Millisecond)
		return nil
	})
	if err == nil || err.Error() != "db failed" {
		t.Fatalf("error %v, want db failed", err)
	}
	for _, s := range []string{"api", "web", "sidecar", "worker"} {
		if _, ok := visited.Load(s); ok {
			t.Errorf("%s was visited after its dependency db failed", s)
		}
	}
}
