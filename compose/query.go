package compose

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/project"
)

// ProjectName is the name of the project lo loads, or the name it is
// known by when it cannot be loaded (loadOrByName).
func ProjectName(ctx context.Context, lo project.Options) (string, error) {
	lo.NoEnvResolution = true
	p, err := project.Load(ctx, lo)
	if err != nil {
		if name := knownName(lo); name != "" {
			return name, nil
		}
		return "", err
	}
	return p.Name, nil
}

// RunningContainer is the running container of a service that `exec`
// runs in: replica index, or the first running one when index is 0.
func RunningContainer(ctx context.Context, lo project.Options, eng Engine, service string, index int) (ContainerStatus, error) {
	_, cs, err := SelectContainers(ctx, lo, eng, []string{service})
	if err != nil {
		return ContainerStatus{}, err
	}
	slices.SortFunc(cs, func(a, b ContainerStatus) int { return cmp.Compare(a.Number(), b.Number()) })
	for _, c := range cs {
		if (index == 0 || c.Number() == index) && c.Status == "running" {
			return c, nil
		}
	}
	for _, c := range cs {
		if (index == 0 || c.Number() == index) && c.Status == "paused" {
			return ContainerStatus{}, fmt.Errorf("%w: container %s is paused: unpause it (berth unpause %s) before exec", errdefs.ErrFailedPrecondition, c.Name, service)
		}
	}
	if index > 0 {
		return ContainerStatus{}, fmt.Errorf("%w: service %q is not running container #%d", errdefs.ErrFailedPrecondition, service, index)
	}
	return ContainerStatus{}, fmt.Errorf("%w: service %q is not running", errdefs.ErrFailedPrecondition, service)
}

// Wait waits until every container of the services has stopped for good
// (exited, not restarting), calls exited for each as it does, and returns
// the exit code of the first.
func Wait(ctx context.Context, lo project.Options, eng Engine, services []string, exited func(ContainerStatus)) (int, error) {
	p, cs, err := SelectContainers(ctx, lo, eng, services)
	if err != nil {
		return 0, err
	}
	if len(cs) == 0 {
		return 0, fmt.Errorf("%w: no containers for %s", errdefs.ErrNotFound, strings.Join(services, ", "))
	}
	pending := map[string]bool{}
	for _, c := range cs {
		pending[c.ID] = true
	}
	first, seen := 0, false
	for len(pending) > 0 {
		now, err := projectList(ctx, eng, p.Name)
		if err != nil {
			return 0, err
		}
		for _, c := range now {
			if !pending[c.ID] || !c.Done() {
				continue
			}
			delete(pending, c.ID)
			if !seen {
				first, seen = c.ExitCode, true
			}
			exited(c)
		}
		for id := range pending {
			if !slices.ContainsFunc(now, func(c ContainerStatus) bool { return c.ID == id }) {
				delete(pending, id) // removed
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(4 * pollInterval):
		}
	}
	return first, nil
}

// ProjectStatus is a project as `ls` shows it (docker compose's JSON
// fields).
type ProjectStatus struct {
	Name        string `json:"Name"`
	Status      string `json:"Status"`
	ConfigFiles string `json:"ConfigFiles"`
}

// Projects lists the projects that have containers: those with a running
// one, or all with all. Status counts containers by state: "running(2),
// exited(1)".
func Projects(ctx context.Context, store ContainerStore, all bool) ([]ProjectStatus, error) {
	cs, err := store.List(ctx)
	if err != nil {
		return nil, err
	}
	type counts struct {
		byState map[string]int
		files   string
	}
	projects := map[string]*counts{}
	for _, c := range cs {
		name := c.Project()
		if name == "" {
			continue
		}
		pc := projects[name]
		if pc == nil {
			pc = &counts{byState: map[string]int{}}
			projects[name] = pc
		}
		pc.byState[c.Status]++
		if f := c.Labels[ConfigFilesLabel]; f != "" && !c.OneOff() {
			pc.files = f
		}
	}
	var out []ProjectStatus
	for _, name := range slices.Sorted(maps.Keys(projects)) {
		pc := projects[name]
		if !all && pc.byState["running"] == 0 && pc.byState["paused"] == 0 {
			continue
		}
		var parts []string
		for _, st := range slices.Sorted(maps.Keys(pc.byState)) {
			parts = append(parts, fmt.Sprintf("%s(%d)", st, pc.byState[st]))
		}
		out = append(out, ProjectStatus{Name: name, Status: strings.Join(parts, ", "), ConfigFiles: pc.files})
	}
	return out, nil
}

// DependenciesOf lists what `run SERVICE` starts first: the services it
// depends on, transitively (the service itself enabled if a profile
// disabled it, as run does). It fails on the service's secrets and
// configs as run would, before anything starts.
func DependenciesOf(ctx context.Context, lo project.Options, service string) ([]string, error) {
	lo.NoEnvResolution = true
	p, err := project.Load(ctx, lo)
	if err != nil {
		return nil, err
	}
	if _, disabled := p.DisabledServices[service]; disabled {
		if p, err = p.WithServicesEnabled(service); err != nil {
			return nil, err
		}
	}
	if _, ok := p.Services[service]; !ok {
		return nil, &project.Error{Err: fmt.Errorf("no such service: %s", service), Hint: "run `berth config --services` to list the project's services"}
	}
	if _, err := serviceFiles(p, p.Services[service]); err != nil {
		return nil, err
	}
	g, err := project.NewGraph(p)
	if err != nil {
		return nil, err
	}
	all, err := g.WithDependencies(service)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(s string) bool { return s == service }), nil
}
