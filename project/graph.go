package project

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/types"
	"golang.org/x/sync/errgroup"
)

// Keys of a service that make it depend on another service.
const (
	KeyDependsOn   = "depends_on"
	KeyLinks       = "links"
	KeyNetworkMode = "network_mode"
	KeyIPC         = "ipc"
	KeyPID         = "pid"
	KeyVolumesFrom = "volumes_from"
)

// Dependency is one edge of the graph: the dependant needs Service.
type Dependency struct {
	Service string
	// Keys are the dependant's keys that name Service, sorted (a link is
	// also an implicit depends_on once the project is normalised).
	Keys []string
	// Condition is depends_on's condition; service_started when only
	// another key names the service.
	Condition string
	// Restart is depends_on's restart: the dependant restarts with it.
	Restart bool
	// Required is false only for a depends_on with required: false and no
	// other key naming the service.
	Required bool
}

// Graph is the dependency graph of a project's services: the only one in
// berth. It is built from a project and never changes it.
type Graph struct {
	names      []string                // sorted
	deps       map[string][]Dependency // by dependant, sorted by dependency
	dependants map[string][]string     // by dependency, sorted
}

// NewGraph builds the graph of p's enabled services. A reference to a
// service that does not exist, or that profiles disabled, is an *Error naming
// the service and the key; a cycle is an error naming the whole cycle.
// Optional depends_on entries (required: false) to a service disabled by
// profiles are left out, as docker compose does.
func NewGraph(p *types.Project) (*Graph, error) {
	g := &Graph{
		names:      slices.Sorted(maps.Keys(p.Services)),
		deps:       map[string][]Dependency{},
		dependants: map[string][]string{},
	}
	for _, name := range g.names {
		deps, err := dependenciesOf(p, p.Services[name])
		if err != nil {
			return nil, err
		}
		g.deps[name] = deps
		for _, d := range deps {
			g.dependants[d.Service] = append(g.dependants[d.Service], name)
		}
	}
	if cycle := g.findCycle(); cycle != nil {
		return nil, &Error{
			Service: cycle[0],
			Key:     g.edgeKey(cycle[0], cycle[1]),
			Err:     fmt.Errorf("dependency cycle: %s", strings.Join(cycle, " -> ")),
			Hint:    "remove one of these dependencies (depends_on, links, network_mode, ipc, pid or volumes_from) to break the cycle",
		}
	}
	return g, nil
}

// dependenciesOf collects the edges of one service, merged per dependency.
func dependenciesOf(p *types.Project, s types.ServiceConfig) ([]Dependency, error) {
	byName := map[string]*Dependency{}
	add := func(key, target, condition string, restart, required bool) error {
		if _, ok := p.Services[target]; !ok {
			// As compose-go: an optional dependency may be disabled by
			// profiles, never undefined.
			if _, disabled := p.DisabledServices[target]; disabled && !required {
				return nil
			}
			return undefinedService(p, s.Name, key, target)
		}
		d, ok := byName[target]
		if !ok {
			d = &Dependency{Service: target, Condition: types.ServiceConditionStarted}
			byName[target] = d
		}
		if !slices.Contains(d.Keys, key) {
			d.Keys = append(d.Keys, key)
		}
		if key == KeyDependsOn {
			if condition != "" {
				d.Condition = condition
			}
			d.Restart = d.Restart || restart
		}
		d.Required = d.Required || required
		return nil
	}
	for _, target := range slices.Sorted(maps.Keys(s.DependsOn)) {
		dep := s.DependsOn[target]
		if err := add(KeyDependsOn, target, dep.Condition, dep.Restart, dep.Required); err != nil {
			return nil, err
		}
	}
	for _, link := range s.Links {
		target, _, _ := strings.Cut(link, ":")
		if err := add(KeyLinks, target, "", false, true); err != nil {
			return nil, err
		}
	}
	for key, mode := range map[string]string{KeyNetworkMode: s.NetworkMode, KeyIPC: s.Ipc, KeyPID: s.Pid} {
		if target, ok := strings.CutPrefix(mode, types.ServicePrefix); ok {
			if err := add(key, target, "", false, true); err != nil {
				return nil, err
			}
		}
	}
	for _, from := range s.VolumesFrom {
		if strings.HasPrefix(from, types.ContainerPrefix) {
			continue // another container, not a service of this project
		}
		target, _, _ := strings.Cut(from, ":")
		if err := add(KeyVolumesFrom, target, "", false, true); err != nil {
			return nil, err
		}
	}
	deps := make([]Dependency, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		d := byName[name]
		slices.Sort(d.Keys)
		deps = append(deps, *d)
	}
	return deps, nil
}

func undefinedService(p *types.Project, service, key, target string) error {
	if disabled, ok := p.DisabledServices[target]; ok {
		hint := fmt.Sprintf("enable service %q with one of its profiles (--profile %s)", target, strings.Join(disabled.Profiles, " or --profile "))
		if key == KeyDependsOn {
			hint += ", or mark the dependency optional with required: false"
		}
		return &Error{
			Service: service,
			Key:     key,
			Err:     fmt.Errorf("service %q is disabled by its profiles", target),
			Hint:    hint,
		}
	}
	return &Error{
		Service: service,
		Key:     key,
		Err:     fmt.Errorf("service %q is not defined", target),
		Hint:    fmt.Sprintf("define service %q under services, or remove it from %s", target, key),
	}
}

// findCycle returns a cycle, first service repeated at the end, or nil. The
// search visits services and edges in name order and the cycle is rotated to
// start at its smallest name, so the same project always reports the same
// cycle however the files were written.
func (g *Graph) findCycle() []string {
	const (
		unvisited = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(string) []string
	visit = func(n string) []string {
		state[n] = onPath
		path = append(path, n)
		for _, d := range g.deps[n] {
			switch state[d.Service] {
			case onPath:
				cycle := slices.Clone(path[slices.Index(path, d.Service):])
				return rotateToSmallest(cycle)
			case unvisited:
				if c := visit(d.Service); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[n] = done
		return nil
	}
	for _, n := range g.names {
		if state[n] == unvisited {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

// edgeKey is the first key of from that names to.
func (g *Graph) edgeKey(from, to string) string {
	for _, d := range g.deps[from] {
		if d.Service == to && len(d.Keys) > 0 {
			return d.Keys[0]
		}
	}
	return KeyDependsOn
}

func rotateToSmallest(cycle []string) []string {
	i := slices.Index(cycle, slices.Min(cycle))
	out := append(slices.Clone(cycle[i:]), cycle[:i]...)
	return append(out, out[0])
}

// Services returns the services of the graph, sorted.
func (g *Graph) Services() []string { return slices.Clone(g.names) }

// Dependencies returns the direct dependencies of service, sorted.
func (g *Graph) Dependencies(service string) []Dependency { return slices.Clone(g.deps[service]) }

// Dependants returns the services that directly depend on service, sorted.
func (g *Graph) Dependants(service string) []string { return slices.Clone(g.dependants[service]) }

// Levels groups the services for start: every service comes in a later level
// than all its dependencies, as early as possible; each level is sorted.
// Services of one level can start in parallel.
func (g *Graph) Levels() [][]string {
	level := map[string]int{}
	var depth func(string) int
	depth = func(n string) int {
		if l, ok := level[n]; ok {
			return l
		}
		l := 0
		for _, d := range g.deps[n] {
			l = max(l, depth(d.Service)+1)
		}
		level[n] = l
		return l
	}
	var levels [][]string
	for _, n := range g.names {
		l := depth(n)
		for len(levels) <= l {
			levels = append(levels, nil)
		}
		levels[l] = append(levels[l], n)
	}
	return levels
}

// StopLevels is the order for stop: dependants before their dependencies.
func (g *Graph) StopLevels() [][]string {
	levels := g.Levels()
	slices.Reverse(levels)
	return levels
}

// WithDependencies returns services and everything they depend on,
// transitively, sorted: what `up svc` starts. Unknown names are an error.
func (g *Graph) WithDependencies(services ...string) ([]string, error) {
	return g.closure(services, func(n string) []string {
		names := make([]string, 0, len(g.deps[n]))
		for _, d := range g.deps[n] {
			names = append(names, d.Service)
		}
		return names
	})
}

// WithDependants returns services and every service that depends on them,
// transitively, sorted: what a recreate of services touches.
func (g *Graph) WithDependants(services ...string) ([]string, error) {
	return g.closure(services, func(n string) []string { return g.dependants[n] })
}

func (g *Graph) closure(start []string, next func(string) []string) ([]string, error) {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, m := range next(n) {
			visit(m)
		}
	}
	for _, n := range start {
		if _, ok := g.deps[n]; !ok {
			return nil, &Error{Err: fmt.Errorf("no such service: %q", n), Hint: "run `berth config --services` to list the project's services"}
		}
		visit(n)
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// WalkOptions tune Walk.
type WalkOptions struct {
	// Reverse visits dependants before their dependencies (stop, down).
	Reverse bool
	// Limit caps how many visits run at once; 0 or less means no limit.
	Limit int
	// Services restricts the walk to these services (edges to others are
	// ignored); nil means every service.
	Services []string
}

// Walk calls fn once per service, each as soon as everything it waits for
// (its dependencies, or its dependants when reversed) has returned. The first
// error cancels ctx for the visits under way and stops new ones.
func (g *Graph) Walk(ctx context.Context, o WalkOptions, fn func(ctx context.Context, service string) error) error {
	in := map[string]bool{}
	names := o.Services
	if names == nil {
		names = g.names
	}
	for _, n := range names {
		if _, ok := g.deps[n]; !ok {
			return &Error{Err: fmt.Errorf("no such service: %q", n)}
		}
		in[n] = true
	}
	waitsFor := func(n string) []string { // what n waits for
		if o.Reverse {
			return g.dependants[n]
		}
		var ds []string
		for _, d := range g.deps[n] {
			ds = append(ds, d.Service)
		}
		return ds
	}
	pending := map[string]int{}
	unblocks := map[string][]string{}
	for n := range in {
		for _, m := range waitsFor(n) {
			if in[m] {
				pending[n]++
				unblocks[m] = append(unblocks[m], n)
			}
		}
	}

	eg, ctx := errgroup.WithContext(ctx)
	// The limit is a semaphore around fn, not errgroup's own limit: a visit
	// that finishes starts its successors while it still holds its slot.
	slots := o.Limit
	if slots <= 0 {
		slots = len(in) + 1
	}
	sem := make(chan struct{}, slots)
	var mu sync.Mutex
	var start func(string)
	start = func(n string) {
		eg.Go(func() error {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			err := fn(ctx, n)
			<-sem
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range unblocks[n] {
				pending[m]--
				if pending[m] == 0 {
					start(m)
				}
			}
			return nil
		})
	}
	mu.Lock()
	for _, n := range slices.Sorted(maps.Keys(in)) {
		if pending[n] == 0 {
			start(n)
		}
	}
	mu.Unlock()
	return eg.Wait()
}

// Order lists every service after everything it depends on: services in name
// order, each preceded by its dependencies not yet listed.
func (g *Graph) Order() []string {
	seen := map[string]bool{}
	var order []string
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range g.deps[n] {
			visit(d.Service)
		}
		order = append(order, n)
	}
	for _, n := range g.names {
		visit(n)
	}
	return order
}
