package compose

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/project"
)

// DownOptions are `down`'s.
type DownOptions struct {
	RemoveOrphans bool
	Timeout       *time.Duration // -t
	// RemoveImages is --rmi: "local" (the images of services without an
	// image key: <project>-<service>, which docker compose builds and
	// berth loads) or "all" (every service's).
	RemoveImages string
	// Volumes is -v: the project's named volumes (never external ones)
	// and its anonymous ones go too.
	Volumes bool
	// Services, when not empty, limits down to the containers of those
	// services and of the services that depend on them; the networks
	// and volumes that other containers still use stay.
	Services []string
	Progress func(Progress)
	Warn     func(string)
}

// downServices are the services down removes with services named: those
// and the services that depend on them, which cannot run without them (as
// docker compose down SERVICE); nil for all. A name the project does not
// have is an error, unless the project is known by its name alone, whose
// services are those that have containers.
func downServices(p *types.Project, services []string, byName bool) (map[string]bool, error) {
	if len(services) == 0 {
		return nil, nil
	}
	var known []string
	for _, s := range services {
		_, enabled := p.Services[s]
		_, disabled := p.DisabledServices[s]
		switch {
		case enabled:
			known = append(known, s)
		case disabled || byName:
		default:
			return nil, &project.Error{Err: fmt.Errorf("%w: no such service: %s", errdefs.ErrNotFound, s), Hint: "run `berth config --services` to list the project's services"}
		}
	}
	g, err := project.NewGraph(p)
	if err != nil {
		return nil, err
	}
	all, err := g.WithDependants(known...)
	if err != nil {
		return nil, err
	}
	selected := map[string]bool{}
	for _, s := range all {
		selected[s] = true
	}
	for _, s := range services {
		selected[s] = true // a disabled service's containers
	}
	return selected, nil
}

// stopShown stops c as down, rm -s and a scale-down do: its pre_stop
// hooks, then the stop, shown as Stopping and Stopped (or the error).
func stopShown(ctx context.Context, eng Engine, p *types.Project, c ContainerStatus, timeout *time.Duration, progress func(Progress), warn func(string)) error {
	name := "Container " + c.Name
	progress(Progress{Resource: name, Status: StatusStopping})
	preStop(ctx, eng, p, c, warn)
	if err := eng.Stop(ctx, p.Name, c.ID, timeout); err != nil {
		progress(Progress{Resource: name, Status: StatusError, Err: err})
		return err
	}
	progress(Progress{Resource: name, Status: StatusStopped})
	return nil
}

// ImageRemover removes images by reference (`down --rmi`).
type ImageRemover interface {
	Remove(ctx context.Context, refs ...string) ([]string, error)
}

// Down stops and removes the project's containers (one-off ones too),
// dependants before their dependencies; the containers of services the
// project no longer has only with RemoveOrphans.
func Down(ctx context.Context, lo project.Options, eng Engine, images ImageRemover, o DownOptions) (err error) {
	lo.NoEnvResolution = true
	p, byName, err := loadOrState(ctx, lo, eng)
	if err != nil {
		return err
	}
	selected, err := downServices(p, o.Services, byName)
	if err != nil {
		return err
	}
	o.Progress, o.Warn = orNoProgress(o.Progress), orNoWarn(o.Warn)
	var removed atomic.Bool
	progress := o.Progress
	o.Progress = func(e Progress) {
		if e.Status == StatusRemoved {
			removed.Store(true)
		}
		progress(e)
	}
	defer func() {
		if err == nil && !removed.Load() {
			o.Warn(fmt.Sprintf("Warning: No resource found to remove for project %q.", p.Name))
		}
	}()
	switch o.RemoveImages {
	case "", "local", "all":
	default:
		return fmt.Errorf("%w: --rmi %q: use local or all", errdefs.ErrInvalidArgument, o.RemoveImages)
	}
	unlock, err := eng.Lock(ctx, p.Name)
	if err != nil {
		return err
	}
	defer unlock()
	cs, err := projectList(ctx, eng, p.Name)
	if err != nil {
		return err
	}
	var orphans []string
	cs = slices.DeleteFunc(cs, func(c ContainerStatus) bool {
		if _, ok := p.Services[c.Service()]; ok {
			return selected != nil && !selected[c.Service()]
		}
		if _, ok := p.DisabledServices[c.Service()]; ok {
			// A service of an inactive profile goes too.
			return selected != nil && !selected[c.Service()]
		}
		if !o.RemoveOrphans && !c.OneOff() {
			orphans = append(orphans, c.Name)
			return true
		}
		return false
	})
	if len(orphans) > 0 {
		o.Warn(fmt.Sprintf("Found orphan containers (%s) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.", strings.Join(orphans, ", ")))
	}
	err = inReverseOrder(ctx, p, cs, func(ctx context.Context, c ContainerStatus) error {
		name := "Container " + c.Name
		if c.Running() || c.Restarting {
			if err := stopShown(ctx, eng, p, c, o.Timeout, o.Progress, o.Warn); err != nil {
				return err
			}
		}
		o.Progress(Progress{Resource: name, Status: StatusRemoving})
		if err := eng.Delete(ctx, p.Name, c.ID, o.Timeout); err != nil {
			o.Progress(Progress{Resource: name, Status: StatusError, Err: err})
			return err
		}
		o.Progress(Progress{Resource: name, Status: StatusRemoved})
		return nil
	})
	if err != nil {
		return err
	}
	if err := removeNetworks(ctx, p, eng.Networks(), o.Progress, o.Warn); err != nil {
		return err
	}
	if o.Volumes {
		left, err := eng.List(ctx)
		if err != nil {
			return err
		}
		if err := removeVolumes(p, eng.Volumes(), left, o.Progress, o.Warn); err != nil {
			return err
		}
	}
	if o.RemoveImages != "" && images != nil {
		var refs []string
		for _, s := range p.Services {
			if selected != nil && !selected[s.Name] {
				continue
			}
			// local: only the images of services without an image
			// key, named for the project and service (those docker
			// compose builds, which berth takes from `load`).
			if s.Image != "" && o.RemoveImages == "local" {
				continue
			}
			if ref := imageRef(p.Name, s.Name, s.Image); !slices.Contains(refs, ref) {
				refs = append(refs, ref)
			}
		}
		slices.Sort(refs)
		for _, ref := range refs {
			if _, err := images.Remove(ctx, ref); err != nil {
				if errdefs.IsNotFound(err) {
					continue
				}
				o.Progress(Progress{Resource: "Image " + ref, Status: StatusError, Err: err})
				return err
			}
			o.Progress(Progress{Resource: "Image " + ref, Status: StatusRemoved})
		}
	}
	return nil
}

// inReverseOrder calls fn for each container, the containers of a
// service only once those of every service that depends on it are done,
// the containers of one service at once. Containers of services the
// project does not know (orphans) go first.
func inReverseOrder(ctx context.Context, p *types.Project, cs []ContainerStatus, fn func(context.Context, ContainerStatus) error) error {
	return walkContainers(ctx, p, cs, true, fn)
}

// inOrder is inReverseOrder with dependencies first.
func inOrder(ctx context.Context, p *types.Project, cs []ContainerStatus, fn func(context.Context, ContainerStatus) error) error {
	return walkContainers(ctx, p, cs, false, fn)
}

func walkContainers(ctx context.Context, p *types.Project, cs []ContainerStatus, reverse bool, fn func(context.Context, ContainerStatus) error) error {
	return walkContainersWith(ctx, p, cs, reverse, nil, fn)
}

// walkContainersWith is walkContainers calling before, when not nil, for
// each service that has containers to walk, before them.
func walkContainersWith(ctx context.Context, p *types.Project, cs []ContainerStatus, reverse bool,
	before func(ctx context.Context, service string) error, fn func(context.Context, ContainerStatus) error) error {
	g, err := project.NewGraph(p)
	if err != nil {
		return err
	}
	byService := map[string][]ContainerStatus{}
	var unknown []ContainerStatus
	for _, c := range cs {
		if _, ok := p.Services[c.Service()]; ok {
			byService[c.Service()] = append(byService[c.Service()], c)
		} else {
			unknown = append(unknown, c)
		}
	}
	all := func(ctx context.Context, cs []ContainerStatus) error {
		eg, ctx := errgroup.WithContext(ctx)
		for _, c := range cs {
			eg.Go(func() error { return fn(ctx, c) })
		}
		return eg.Wait()
	}
	if reverse {
		if err := all(ctx, unknown); err != nil {
			return err
		}
	}
	err = g.Walk(ctx, project.WalkOptions{Reverse: reverse}, func(ctx context.Context, service string) error {
		if before != nil && len(byService[service]) > 0 {
			if err := before(ctx, service); err != nil {
				return err
			}
		}
		return all(ctx, byService[service])
	})
	if err != nil || reverse {
		return err
	}
	return all(ctx, unknown)
}

// SelectContainers loads the project and returns its containers of the
// services named (all when none; one-off ones left out), checking the
// names.
func SelectContainers(ctx context.Context, lo project.Options, eng Engine, services []string) (*types.Project, []ContainerStatus, error) {
	p, err := loadForServices(ctx, lo, eng, services)
	if err != nil {
		return nil, nil, err
	}
	cs, err := watched(ctx, eng, p.Name)
	if err != nil {
		return nil, nil, err
	}
	cs = slices.DeleteFunc(cs, func(c ContainerStatus) bool {
		return c.OneOff() || len(services) > 0 && !slices.Contains(services, c.Service())
	})
	return p, cs, nil
}

// ActionOptions are those of stop, start, restart, kill, pause and
// unpause.
type ActionOptions struct {
	Services []string
	Timeout  *time.Duration // stop, restart: -t
	Signal   string         // kill: -s
	NoDeps   bool           // restart: not the dependants with restart: true
	Progress func(Progress)
	// Warn tells of an optional dependency that failed (start, restart).
	Warn func(string)
}

// Stop stops the running containers of the services, dependants first.
func Stop(ctx context.Context, lo project.Options, eng Engine, o ActionOptions) error {
	return act(ctx, lo, eng, o, action{reverse: true, want: func(c ContainerStatus) bool { return c.Running() || c.Restarting },
		doing: StatusStopping, done: StatusStopped,
		// One that exited while no supervisor watched it (killed) would
		// be started again by its restart policy once the next one
		// adopts it: its stop is recorded too, without a line (it was
		// not running).
		quietly: func(ctx context.Context, p *types.Project, c ContainerStatus) error {
			if c.Status != "exited" || c.Restarting {
				return nil
			}
			if err := eng.Stop(ctx, p.Name, c.ID, o.Timeout); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
			return nil
		},
		fn: func(ctx context.Context, p *types.Project, c ContainerStatus) error {
			preStop(ctx, eng, p, c, o.Warn)
			return eng.Stop(ctx, p.Name, c.ID, o.Timeout)
		}})
}

// Start starts the stopped containers of the services and of their
// dependencies, dependencies first, each service once the conditions of
// its depends_on are met (healthy, completed), as docker compose does. A
// service without containers is an error, as in docker compose.
func Start(ctx context.Context, lo project.Options, eng Engine, o ActionOptions) error {
	if len(o.Services) > 0 {
		p, err := loadForServices(ctx, lo, eng, o.Services)
		if err != nil {
			return err
		}
		g, err := project.NewGraph(p)
		if err != nil {
			return err
		}
		if o.Services, err = g.WithDependencies(o.Services...); err != nil {
			return err
		}
	}
	return act(ctx, lo, eng, o, action{want: func(c ContainerStatus) bool { return !c.Running() },
		doing: StatusStarting, done: StatusStarted, waitDeps: true,
		fn: func(ctx context.Context, p *types.Project, c ContainerStatus) error {
			if err := eng.Start(ctx, p.Name, c.ID); err != nil {
				return err
			}
			return postStart(ctx, eng, p, c.Service(), c.ID)
		}})
}

// Restart stops and starts the containers of the services, running or not,
// dependencies first, each service once the conditions of its depends_on
// are met. As in docker compose, the services that depend on one of them
// with restart: true are restarted after it, unless NoDeps.
func Restart(ctx context.Context, lo project.Options, eng Engine, o ActionOptions) error {
	if len(o.Services) > 0 && !o.NoDeps {
		p, err := loadForServices(ctx, lo, eng, o.Services)
		if err != nil {
			return err
		}
		o.Services = withRestartDependants(p, o.Services)
	}
	return act(ctx, lo, eng, o, action{want: func(ContainerStatus) bool { return true },
		doing: StatusRestarting, done: StatusStarted, waitDeps: true,
		fn: func(ctx context.Context, p *types.Project, c ContainerStatus) error {
			if c.Running() || c.Restarting {
				preStop(ctx, eng, p, c, o.Warn)
				if err := eng.Stop(ctx, p.Name, c.ID, o.Timeout); err != nil {
					return err
				}
			}
			if err := eng.Start(ctx, p.Name, c.ID); err != nil {
				return err
			}
			return postStart(ctx, eng, p, c.Service(), c.ID)
		}})
}

// Kill sends the running containers of the services a signal.
func Kill(ctx context.Context, lo project.Options, eng Engine, o ActionOptions) error {
	return act(ctx, lo, eng, o, action{reverse: true, want: func(c ContainerStatus) bool { return c.Running() },
		doing: StatusKilling, done: StatusKilled, fn: func(ctx context.Context, p *types.Project, c ContainerStatus) error {
			return eng.Kill(ctx, p.Name, c.ID, o.Signal)
		}})
}

// Pause freezes the running containers of the services.
func Pause(ctx context.Context, lo project.Options, eng Engine, o ActionOptions) error {
	return act(ctx, lo, eng, o, action{want: func(c ContainerStatus) bool { return c.Status == "running" },
		doing: "Pausing", done: "Paused", fn: func(ctx context.Context, _ *types.Project, c ContainerStatus) error {
			return eng.Pause(ctx, c.ID)
		}})
}

// Unpause thaws the paused containers of the services.
func Unpause(ctx context.Context, lo project.Options, eng Engine, o ActionOptions) error {
	return act(ctx, lo, eng, o, action{want: func(c ContainerStatus) bool { return c.Status == "paused" },
		doing: "Unpausing", done: "Unpaused", fn: func(ctx context.Context, _ *types.Project, c ContainerStatus) error {
			return eng.Unpause(ctx, c.ID)
		}})
}

// action is what act does to the selected containers that want it.
type action struct {
	reverse     bool // dependants first
	want        func(ContainerStatus) bool
	doing, done string // the progress of each
	// waitDeps: a service's containers are done once the conditions of
	// its depends_on hold (start, restart), as up waits.
	waitDeps bool
	// quietly, when not nil, is done first to every selected container,
	// with no progress line.
	quietly func(ctx context.Context, p *types.Project, c ContainerStatus) error
	fn      func(ctx context.Context, p *types.Project, c ContainerStatus) error
}

// act does a's fn to the containers of the services that want it, in
// dependency order (reverse: dependants first), under the project's lock.
func act(ctx context.Context, lo project.Options, eng Engine, o ActionOptions, a action) error {
	p, cs, err := SelectContainers(ctx, lo, eng, o.Services)
	if err != nil {
		return err
	}
	progress := orNoProgress(o.Progress)
	var before func(ctx context.Context, service string) error
	if a.waitDeps {
		g, err := project.NewGraph(p)
		if err != nil {
			return err
		}
		// Every dependency that has containers, whether this command
		// starts it or it runs already.
		u := &upper{p: p, g: g, eng: eng, o: UpRunOptions{Progress: progress, Warn: orNoWarn(o.Warn)}}
		all := p.ServiceNames()
		before = func(ctx context.Context, service string) error { return u.waitDependencies(ctx, service, all) }
	}
	for _, s := range o.Services {
		if !slices.ContainsFunc(cs, func(c ContainerStatus) bool { return c.Service() == s }) && a.doing == StatusStarting {
			return fmt.Errorf("%w: service %q has no container to start", errdefs.ErrNotFound, s)
		}
	}
	unlock, err := eng.Lock(ctx, p.Name)
	if err != nil {
		return err
	}
	defer unlock()
	if a.quietly != nil {
		for _, c := range cs {
			if err := a.quietly(ctx, p, c); err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
		}
	}
	cs = slices.DeleteFunc(cs, func(c ContainerStatus) bool { return !a.want(c) })
	return walkContainersWith(ctx, p, cs, a.reverse, before, func(ctx context.Context, c ContainerStatus) error {
		name := "Container " + c.Name
		progress(Progress{Resource: name, Status: a.doing})
		if err := a.fn(ctx, p, c); err != nil {
			progress(Progress{Resource: name, Status: StatusError, Err: err})
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		progress(Progress{Resource: name, Status: a.done})
		return nil
	})
}

// withRestartDependants adds to services those that depend on one of
// them with restart: true, and theirs in turn.
func withRestartDependants(p *types.Project, services []string) []string {
	out := slices.Clone(services)
	for i := 0; i < len(out); i++ {
		for _, name := range p.ServiceNames() {
			if d, ok := p.Services[name].DependsOn[out[i]]; ok && d.Restart && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

func orNoProgress(f func(Progress)) func(Progress) {
	if f == nil {
		return func(Progress) {}
	}
	return f
}

func orNoWarn(f func(string)) func(string) {
	if f == nil {
		return func(string) {}
	}
	return f
}
