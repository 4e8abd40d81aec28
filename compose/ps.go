package compose

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/spec"
)

// ContainerStatus is a container as `ps` shows it and `rm` picks it.
type ContainerStatus struct {
	ID, Name, Image string
	Command         []string
	Labels          map[string]string
	Created         time.Time
	StartedAt       time.Time
	FinishedAt      time.Time
	Status          string // created, running, paused, exited
	ExitCode        int
	// Health is the health check's verdict: starting, healthy,
	// unhealthy; empty without a health check.
	Health string
	// HealthOutput is the output of the last health probe.
	HealthOutput string
	// RestartCount is how many times the restart policy started it;
	// Restarting is set while it waits to start again.
	RestartCount int
	Restarting   bool
	// Ports are its published ports.
	Ports []spec.Port
	// Exposed are the ports the container exposes ("80/tcp").
	Exposed []string
	// Mounts are its volumes, bind mounts and tmpfs, as created.
	Mounts []spec.Mount
	// Networks are the networks it is attached to, by full name; "host"
	// or "none" with those network modes.
	Networks []string
}

// Service is the compose service the container belongs to.
func (c ContainerStatus) Service() string { return c.Labels[ServiceLabel] }

// ContainerStore is what `ps` and `rm` need of the runtime: every
// container berth has, and removing one.
type ContainerStore interface {
	List(ctx context.Context) ([]ContainerStatus, error)
	Remove(ctx context.Context, id string, stop bool) error
}

// PsOptions are `ps`'s.
type PsOptions struct {
	All      bool // stopped containers too
	Services []string
}

// Ps lists the project's containers (one-off ones included, as docker
// compose does), running ones only unless All, sorted by name.
func Ps(ctx context.Context, lo project.Options, eng Engine, o PsOptions) ([]ContainerStatus, error) {
	_, cs, err := projectContainers(ctx, lo, eng, o.Services)
	if err != nil {
		return nil, err
	}
	if !o.All {
		cs = slices.DeleteFunc(cs, func(c ContainerStatus) bool { return c.Status != "running" && c.Status != "paused" })
	}
	return cs, nil
}

// RmOptions are `rm`'s.
type RmOptions struct {
	Stop     bool // -s: stop running containers first
	Services []string
	// Confirm, when not nil, is asked before anything is removed, with
	// the names; false removes nothing.
	Confirm func(names []string) bool
	// Volumes (-v) removes the anonymous volumes of the removed
	// containers that no other container uses.
	Volumes  bool
	Progress func(Progress)
	Warn     func(string) // a pre_stop hook that failed
}

// Rm removes the project's stopped containers (one-off ones included),
// and with Stop its running ones too, stopped first (dependants first), as
// docker compose rm -s does. It returns the names removed.
func Rm(ctx context.Context, lo project.Options, eng Engine, o RmOptions) ([]string, error) {
	p, cs, err := projectContainers(ctx, lo, eng, o.Services)
	if err != nil {
		return nil, err
	}
	progress := orNoProgress(o.Progress)
	if o.Stop {
		running := slices.DeleteFunc(slices.Clone(cs), func(c ContainerStatus) bool { return !c.Running() && !c.Restarting })
		err := inReverseOrder(ctx, p, running, func(ctx context.Context, c ContainerStatus) error {
			if err := stopShown(ctx, eng, p, c, nil, progress, o.Warn); err != nil {
				return fmt.Errorf("stopping %s: %w", c.Name, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	} else {
		cs = slices.DeleteFunc(cs, func(c ContainerStatus) bool { return c.Running() })
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	if len(names) == 0 || o.Confirm != nil && !o.Confirm(names) {
		return nil, nil
	}
	var removed, anonymous []string
	for _, c := range cs {
		name := "Container " + c.Name
		progress(Progress{Resource: name, Status: StatusRemoving})
		if err := eng.Remove(ctx, c.ID, o.Stop); err != nil {
			progress(Progress{Resource: name, Status: StatusError, Err: err})
			return removed, fmt.Errorf("removing %s: %w", c.Name, err)
		}
		progress(Progress{Resource: name, Status: StatusRemoved})
		removed = append(removed, c.Name)
		anonymous = append(anonymous, ownAnonymousVolumes(c.Project(), c.Service(), c.Mounts)...)
	}
	if o.Volumes && len(anonymous) > 0 {
		// Once they are all gone: a container may use another's volume.
		left, err := eng.List(ctx)
		if err != nil {
			return removed, err
		}
		vols, err := removeAnonymous(eng.Volumes(), left, anonymous)
		for _, v := range vols {
			progress(Progress{Resource: "Volume " + v, Status: StatusRemoved})
		}
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// projectContainers are the project's containers of the services named
// (all when none), one-off ones too, once its supervisor (if they need one)
// adopted them.
func projectContainers(ctx context.Context, lo project.Options, eng Engine, services []string) (*types.Project, []ContainerStatus, error) {
	p, err := loadForServices(ctx, lo, eng, services)
	if err != nil {
		return nil, nil, err
	}
	cs, err := watched(ctx, eng, p.Name)
	if err != nil {
		return nil, nil, err
	}
	return p, slices.DeleteFunc(cs, func(c ContainerStatus) bool {
		return len(services) > 0 && !slices.Contains(services, c.Service())
	}), nil
}

// loadForServices loads the project (its environment unresolved: only
// names matter) and checks that the services named are its.
func loadForServices(ctx context.Context, lo project.Options, eng Engine, services []string) (*types.Project, error) {
	lo.NoEnvResolution = true
	p, err := loadOrByName(ctx, lo, eng)
	if err != nil {
		return nil, err
	}
	for _, s := range services {
		if _, ok := p.Services[s]; !ok {
			if _, ok := p.DisabledServices[s]; !ok {
				return nil, &project.Error{Err: fmt.Errorf("%w: no such service: %s", errdefs.ErrNotFound, s), Hint: "run `berth config --services` to list the project's services"}
			}
		}
	}
	return p, nil
}
