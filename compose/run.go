package compose

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/compose-spec/compose-go/v2/format"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/image"
	"github.com/berth-dev/berth/runtime/spec"
)

// ContainerRuntime is what the verbs need of the container runtime
// (runtime/container): making containers from specs.
type ContainerRuntime interface {
	Create(ctx context.Context, c spec.Container) (Container, error)
	// Networks creates networks and gives containers their addresses.
	Networks() NetworkManager
	// Volumes creates named volumes.
	Volumes() VolumeManager
	// List lists berth's containers: the sources of volumes_from.
	List(ctx context.Context) ([]ContainerStatus, error)
	// StartDetached has the project's supervisor start a created
	// container and own it (run -d).
	StartDetached(ctx context.Context, project, id string) error
	// Check reports what Create would refuse in a container's
	// configuration, without making anything.
	Check(c spec.Container) error
}

// Container is a created container, as the verbs drive it: started once,
// waited for, signalled, removed.
type Container interface {
	// Start runs the main process, attached to a's streams while the
	// caller lives.
	Start(ctx context.Context, a Attach) error
	// Wait returns the exit code, 128+signal when killed.
	Wait(ctx context.Context) (int, error)
	Signal(ctx context.Context, sig syscall.Signal) error
	// Remove stops the container if it runs and removes it.
	Remove(ctx context.Context) error
}

// Attach connects a container's standard streams to the caller's.
type Attach struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// ConsoleWidth and ConsoleHeight size the container's terminal.
	ConsoleWidth, ConsoleHeight uint16
}

// RunOptions are `berth run`'s.
type RunOptions struct {
	Service    string
	Command    []string // replaces the service's command when not nil
	Entrypoint []string // replaces the service's entrypoint when not nil; empty clears it
	Env        []string // KEY=VALUE, or KEY to take berth's own value
	Labels     map[string]string
	User       string
	WorkingDir string
	Name       string
	Remove     bool // --rm
	// Detach starts the container in the background, owned by the
	// project's supervisor (-d); Run then returns at once.
	Detach bool
	// Started, when not nil, is told the container's name once it runs
	// detached.
	Started     func(name string)
	NoDeps      bool
	TTY         bool // -t, the default on a terminal
	Interactive bool // -i: keep stdin open
	CapAdd      []string
	CapDrop     []string
	// Publish are -p's ports, published with the service's own when
	// ServicePorts (--service-ports); without either, none is.
	Publish      []string
	ServicePorts bool
	// Volumes are -v's, in the service's short syntax, added to its own.
	Volumes []string
	// Compatibility names the container as Compose v1 did,
	// <project>_<service>_run_<random> (--compatibility).
	Compatibility bool
	// UseAliases gives the container the service's name and aliases on
	// its networks (--use-aliases); otherwise it answers to its own
	// name only.
	UseAliases bool
	PullPolicy string // --pull: "" (the service's pull_policy), missing, always, never
	PullEvents func(PullEvent)
	Attach     Attach
	// Signals, when not nil, carries the signals the user sends berth
	// (Ctrl-C without a terminal): they are passed on to the container.
	Signals <-chan syscall.Signal
	// BeforeStart, when not nil, runs just before the container starts
	// (once the image is there and the container created): the terminal
	// goes raw and signals go to the container from then on, not during
	// a pull. It returns what undoes it.
	BeforeStart func() (undo func())
	// Warn tells the user of a problem that does not change the exit
	// code: a --rm that failed.
	Warn func(error)
	// Dependencies, when not nil, starts what the service depends on. Run
	// calls it once the one-off container's configuration is checked, so
	// that a bad one fails before anything is made.
	Dependencies func(ctx context.Context) error
}

// Run runs a one-off container of a service, attached, and returns its
// exit code, as `docker compose run` does.
func Run(ctx context.Context, lo project.Options, environ map[string]string, images ImageStore, rt ContainerRuntime, o RunOptions) (int, error) {
	lo.CheckContainerNames = true
	p, err := project.Load(ctx, lo)
	if err != nil {
		return 0, err
	}
	// Like docker compose, run enables the service it names even when its
	// profiles are not.
	if _, disabled := p.DisabledServices[o.Service]; disabled {
		if p, err = p.WithServicesEnabled(o.Service); err != nil {
			return 0, err
		}
	}
	svc, ok := p.Services[o.Service]
	if !ok {
		return 0, &project.Error{Err: fmt.Errorf("no such service: %s", o.Service), Hint: "run `berth config --services` to list the project's services"}
	}
	if svc, err = runPortsAndVolumes(p, svc, o); err != nil {
		return 0, err
	}
	one, alone := 1, svc // run makes one container, whatever the service's scale
	alone.Scale = &one
	if err := checkPorts(&types.Project{Services: types.Services{svc.Name: alone}}, []string{svc.Name}, nil); err != nil {
		return 0, err
	}
	files, err := serviceFiles(p, svc)
	if err != nil {
		return 0, err
	}
	if err := ensureImages(ctx, p, []string{o.Service}, images, o.PullPolicy, o.PullEvents); err != nil {
		return 0, err
	}
	img, err := serviceImage(ctx, images, p.Name, p.Services[o.Service])
	if err != nil {
		return 0, err
	}

	c, err := runSpec(p, svc, img, environ, o)
	if err != nil {
		return 0, err
	}
	if err := rt.Check(c); err != nil {
		return 0, &project.Error{Service: svc.Name, Err: err}
	}
	if err := checkResources(p, []string{svc.Name}, rt.Volumes(), rt.Networks()); err != nil {
		return 0, err
	}
	if o.Dependencies != nil {
		if err := o.Dependencies(ctx); err != nil {
			return 0, err
		}
	}
	cs, err := rt.List(ctx)
	if err != nil {
		return 0, err
	}
	// Like docker compose run, the one-off container gets anonymous
	// volumes of its own, which --rm removes with it.
	vols, err := mounts(p, svc, rt.Volumes(), mountOptions{number: 1, oneOff: c.ID, image: img, containers: cs})
	if err != nil {
		return 0, err
	}
	c.Mounts = append(c.Mounts, vols...)
	sortMounts(c.Mounts)
	giveFiles(&c, files)
	nm := rt.Networks()
	if err := ensureNetworks(ctx, p, []string{o.Service}, nm, func(Progress) {}); err != nil {
		return 0, err
	}
	if err := connect(ctx, p, svc, &c, nm, connectOptions{publish: len(svc.Ports) > 0, useAliases: o.UseAliases}); err != nil {
		return 0, err
	}
	if o.Detach && o.Remove {
		// The supervisor removes it once it exits, as Docker's
		// AutoRemove.
		c.Labels[spec.AutoRemoveLabel] = strings.Join(ownAnonymousVolumes(p.Name, svc.Name, c.Mounts), ",")
	}
	ct, err := rt.Create(ctx, c)
	if err != nil {
		nm.Release(context.WithoutCancel(ctx), c.ID)
		return 0, err
	}
	if o.Detach {
		if err := rt.StartDetached(ctx, p.Name, c.ID); err != nil {
			return 0, err
		}
		if o.Started != nil {
			o.Started(c.Name)
		}
		return 0, nil
	}
	if o.Remove {
		defer func() {
			ctx := context.WithoutCancel(ctx)
			if err := ct.Remove(ctx); err != nil {
				if o.Warn != nil {
					o.Warn(fmt.Errorf("removing the container: %w", err))
				}
				return
			}
			cs, err := rt.List(ctx)
			if err == nil {
				_, err = removeAnonymous(rt.Volumes(), cs, ownAnonymousVolumes(p.Name, svc.Name, c.Mounts))
			}
			if err != nil && o.Warn != nil {
				o.Warn(fmt.Errorf("removing the container's anonymous volumes: %w", err))
			}
		}()
	}
	if o.BeforeStart != nil {
		defer o.BeforeStart()()
	}
	if err := ct.Start(ctx, o.Attach); err != nil {
		return 0, err
	}
	waited := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-o.Signals:
				ct.Signal(context.WithoutCancel(ctx), sig)
			case <-waited:
				return
			}
		}
	}()
	code, err := ct.Wait(context.WithoutCancel(ctx))
	close(waited)
	return code, err
}

// runPortsAndVolumes applies -p, --service-ports and -v to the service:
// docker compose run publishes no port unless asked.
func runPortsAndVolumes(p *types.Project, svc types.ServiceConfig, o RunOptions) (types.ServiceConfig, error) {
	if !o.ServicePorts {
		svc.Ports = nil
	}
	svc.Ports = slices.Clone(svc.Ports)
	for _, spec := range o.Publish {
		ports, err := types.ParsePortConfig(spec)
		if err != nil {
			return svc, fmt.Errorf("%w: --publish %q: %w", errdefs.ErrInvalidArgument, spec, err)
		}
		svc.Ports = append(svc.Ports, ports...)
	}
	svc.Volumes = slices.Clone(svc.Volumes)
	for _, spec := range o.Volumes {
		v, err := format.ParseVolume(spec)
		if err != nil {
			return svc, fmt.Errorf("%w: --volume %q: %w", errdefs.ErrInvalidArgument, spec, err)
		}
		if v.Type == types.VolumeTypeBind {
			if !filepath.IsAbs(v.Source) {
				// As in the compose file: relative to the project.
				v.Source = filepath.Join(p.WorkingDir, v.Source)
			}
			// The short syntax creates a missing host directory.
			v.Bind = &types.ServiceVolumeBind{CreateHostPath: true}
		}
		svc.Volumes = append(svc.Volumes, v)
	}
	return svc, nil
}

// runSpec is the one-off container's spec: the service as `run` changes
// it, named <project>-<service>-run-<random> (or with _), labelled as a
// one-off.
func runSpec(p *types.Project, svc types.ServiceConfig, img *image.Image, environ map[string]string, o RunOptions) (spec.Container, error) {
	if o.Command != nil {
		svc.Command = o.Command
	}
	if o.Entrypoint != nil {
		svc.Entrypoint = o.Entrypoint
		if o.Command == nil && len(o.Entrypoint) > 0 {
			// As docker compose: the service's command was written for
			// its own entrypoint.
			svc.Command = types.ShellCommand{}
		}
	}
	// A one-off container never restarts, whatever the service says;
	// what it says must still be valid, as for up.
	b := &containerBuilder{svc: svc}
	if b.restart(); b.err != nil {
		return spec.Container{}, b.err
	}
	svc.Restart = ""
	if svc.Deploy != nil {
		d := *svc.Deploy
		d.RestartPolicy = nil
		svc.Deploy = &d
	}
	if len(o.Env) > 0 {
		// A bare KEY takes the project's value (the process's, then
		// .env's), and leaves the service's when it has none.
		env := maps.Clone(environ)
		maps.Copy(env, p.Environment)
		svc.Environment = svc.Environment.OverrideBy(envFlags(o.Env, env).RemoveEmpty())
	}
	if o.User != "" {
		svc.User = o.User
	}
	if o.WorkingDir != "" {
		svc.WorkingDir = o.WorkingDir
	}
	// A capability the flags add is no longer dropped, and the other way
	// round, as in docker compose.
	svc.CapAdd = append(withoutCaps(svc.CapAdd, o.CapDrop), o.CapAdd...)
	svc.CapDrop = append(withoutCaps(svc.CapDrop, o.CapAdd), o.CapDrop...)
	svc.Tty = o.TTY
	svc.StdinOpen = o.Interactive
	slug := make([]byte, 6)
	rand.Read(slug)
	name := o.Name
	if name == "" {
		sep := separator(o.Compatibility)
		name = p.Name + sep + svc.Name + sep + "run" + sep + hex.EncodeToString(slug)
	}
	svc.ContainerName = name
	labels := map[string]string{OneoffLabel: "True", "com.docker.compose.slug": hex.EncodeToString(slug)}
	if o.Detach {
		labels[spec.DetachedLabel] = "true"
	}
	for k, v := range o.Labels {
		labels[k] = v
	}
	svc.CustomLabels = labels
	id := make([]byte, 32)
	rand.Read(id)
	return containerSpec(p, svc, 1, hex.EncodeToString(id), img, environ)
}

// withoutCaps is caps without those of drop, however either spells them.
func withoutCaps(caps, drop []string) []string {
	return slices.DeleteFunc(slices.Clone(caps), func(c string) bool {
		return slices.ContainsFunc(drop, func(d string) bool { return capName(d) == capName(c) })
	})
}

// envFlags resolves -e flags as docker compose does: KEY=VALUE as given,
// a bare KEY the value environ gives it (nil when it has none).
func envFlags(flags []string, environ map[string]string) types.MappingWithEquals {
	return types.NewMappingWithEquals(flags).Resolve(func(k string) (string, bool) {
		v, ok := environ[k]
		return v, ok
	})
}

// ExecEnv is exec's -e flags as the process gets them: a bare KEY takes
// the value of the project's environment (project.Environment: berth's,
// then .env's), and is left out when it is unset, as docker compose exec
// does.
func ExecEnv(flags []string, environ map[string]string) []string {
	resolved := envFlags(flags, environ)
	var out []string
	for _, kv := range flags { // in the flags' order
		k, _, _ := strings.Cut(kv, "=")
		if v := resolved[k]; v != nil {
			out = append(out, k+"="+*v)
		}
	}
	return out
}
