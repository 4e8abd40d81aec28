package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/internal/flock"
	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/logs"
	"github.com/berth-dev/berth/runtime/spec"
	"github.com/berth-dev/berth/runtime/supervisor"
	"github.com/berth-dev/berth/volume"
)

// engine gives the compose verbs the runtime and the projects'
// supervisors: containers are created and read here, started, stopped
// and removed by the supervisor of their project, which owns them.
type engine struct {
	containerStore
	g   *globalOptions
	run string // BERTH_RUN
	nm  *network.Manager
	vm  *volume.Manager

	mu      sync.Mutex
	clients map[string]*supervisor.Client
}

// runDir is BERTH_RUN, default /run/berth.
func (g *globalOptions) runDir() string {
	if run, ok := g.getenv("BERTH_RUN"); ok && run != "" {
		return run
	}
	return "/run/berth"
}

func (g *globalOptions) engine() (*engine, error) {
	rt, err := g.containerRuntime()
	if err != nil {
		return nil, err
	}
	nm, err := g.networkManager()
	if err != nil {
		return nil, err
	}
	vm, err := g.volumeManager()
	if err != nil {
		return nil, err
	}
	return &engine{containerStore: containerStore{rt: rt, root: g.berthRoot()}, g: g, run: g.runDir(), nm: nm, vm: vm, clients: map[string]*supervisor.Client{}}, nil
}

// volumeManager keeps named volumes under BERTH_ROOT/volumes.
func (g *globalOptions) volumeManager() (*volume.Manager, error) {
	return volume.New(filepath.Join(g.berthRoot(), "volumes"))
}

func (e *engine) Volumes() compose.VolumeManager { return e.vm }

// networkManager keeps networks under BERTH_ROOT/networks and the
// containers' network namespaces under BERTH_RUN/netns.
func (g *globalOptions) networkManager() (*network.Manager, error) {
	return network.New(filepath.Join(g.berthRoot(), "networks"), filepath.Join(g.runDir(), "netns"))
}

func (e *engine) Networks() compose.NetworkManager { return e.nm }

// createContainer creates a container, its network namespace first (the
// runtime checks it exists): what run and up share.
func createContainer(ctx context.Context, rt *container.Runtime, nm *network.Manager, c spec.Container) (*container.Container, error) {
	if c.NetworkMode == "bridge" {
		if err := nm.Attach(ctx, c.ID, network.AttachmentsOf(&c)); err != nil {
			return nil, fmt.Errorf("container %s: %w", c.Name, err)
		}
	}
	ct, err := rt.Create(ctx, c)
	if err != nil && c.NetworkMode == "bridge" {
		nm.Detach(context.WithoutCancel(ctx), c.ID, network.AttachmentsOf(&c))
	}
	return ct, err
}

// projectRunDir holds a project's lock and its supervisor's socket.
func projectRunDir(run, project string) string { return filepath.Join(run, "projects", project) }

// supervisorState is where a project's supervisor keeps what it knows.
func supervisorState(root, project string) string {
	return filepath.Join(root, "projects", project, "supervisor.json")
}

func (e *engine) client(project string) *supervisor.Client {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clients[project]; ok {
		return c
	}
	dir := projectRunDir(e.run, project)
	c := supervisor.NewClient(dir, func() error { return e.spawn(project, dir) })
	e.clients[project] = c
	return c
}

// spawn starts the supervisor of a project: this binary, detached in a
// session of its own (a Ctrl-C at the terminal does not reach it), its
// output appended to a log beside its socket.
func (e *engine) spawn(project, dir string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(dir, "supervisor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(exe, "supervise", "--project-name", project)
	cmd.Env = e.g.environ
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() // reaped if it leaves while this command runs
	return nil
}

func (e *engine) Lock(ctx context.Context, project string) (func(), error) {
	dir := projectRunDir(e.run, project)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return flock.Lock(ctx, filepath.Join(dir, "lock"))
}

func (e *engine) Create(ctx context.Context, c spec.Container) error {
	_, err := createContainer(ctx, e.rt, e.nm, c)
	return err
}

func (e *engine) Start(ctx context.Context, project, id string) error {
	return e.client(project).Start(ctx, id)
}

func (e *engine) Stop(ctx context.Context, project, id string, timeout *time.Duration) error {
	_, err := e.client(project).Stop(ctx, id, timeout)
	return err
}

func (e *engine) Kill(ctx context.Context, project, id, signal string) error {
	return e.client(project).Kill(ctx, id, signal)
}

func (e *engine) Delete(ctx context.Context, project, id string, timeout *time.Duration) error {
	return e.client(project).Remove(ctx, id, timeout)
}

// Remove is `rm`'s: through the container's supervisor.
func (e *engine) Remove(ctx context.Context, id string, stop bool) error {
	c, err := e.rt.Load(ctx, id)
	if err != nil {
		return err
	}
	return e.Delete(ctx, c.Spec.Labels[compose.ProjectLabel], id, nil)
}

func (e *engine) Pause(ctx context.Context, id string) error {
	c, err := e.rt.Load(ctx, id)
	if err != nil {
		return err
	}
	return c.Pause(ctx)
}

func (e *engine) Unpause(ctx context.Context, id string) error {
	c, err := e.rt.Load(ctx, id)
	if err != nil {
		return err
	}
	return c.Resume(ctx)
}

func (e *engine) Logs(ctx context.Context, id string, o logs.ReadOptions, fn func(logs.Record) error) error {
	c, err := e.rt.Load(ctx, id)
	if err != nil {
		return err
	}
	return c.Logs(ctx, o, fn)
}

func (e *engine) Exec(ctx context.Context, id string, o compose.ExecOptions) (int, error) {
	c, err := e.rt.Load(ctx, id)
	if err != nil {
		return -1, err
	}
	return c.Exec(ctx, container.ExecOptions{
		Args: o.Args, Env: o.Env, User: o.User, WorkingDir: o.WorkingDir, TTY: o.TTY, Privileged: o.Privileged,
		Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Detach: o.Detach,
		ConsoleWidth: o.ConsoleWidth, ConsoleHeight: o.ConsoleHeight, Resize: o.Resize,
	})
}

func (e *engine) Top(ctx context.Context, id string) ([][]string, error) {
	c, err := e.rt.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.Top(ctx)
}

func (e *engine) Stats(ctx context.Context, id string) (compose.Stats, error) {
	c, err := e.rt.Load(ctx, id)
	if err != nil {
		return compose.Stats{}, err
	}
	s, err := c.Stats(ctx)
	return compose.Stats(s), err
}

// newSuperviseCommand is the hidden command the CLI starts a project's
// supervisor with.
func newSuperviseCommand(g *globalOptions, s streams) *cobra.Command {
	return &cobra.Command{
		Use:    "supervise",
		Short:  "Run a project's supervisor (started by berth itself)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.name == "" {
				return fmt.Errorf("supervise needs --project-name")
			}
			rt, err := g.containerRuntime()
			if err != nil {
				return err
			}
			nm, err := g.networkManager()
			if err != nil {
				return err
			}
			logf := func(format string, args ...any) {
				fmt.Fprintf(s.err, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
			}
			vm, err := g.volumeManager()
			if err != nil {
				return err
			}
			// libcontainer gives the init processes it starts (containers,
			// health probes) this process's GOMAXPROCS, and they set it
			// to 1 first thing, stopping the world to do it: started
			// with 1 they need not. This process read its own at start.
			os.Setenv("GOMAXPROCS", "1")
			return supervisor.Serve(cmd.Context(), supervisor.Options{
				Runtime: rt, Networks: nm, Project: g.name, Dir: projectRunDir(g.runDir(), g.name),
				StateFile: supervisorState(g.berthRoot(), g.name), Reclaim: vm.FreeTrash, Logf: logf,
			})
		},
	}
}

func (e *engine) Watch(ctx context.Context, project string) error {
	_, err := e.client(project).Ping(ctx)
	return err
}

func (e *engine) Hold(ctx context.Context, project string) func() {
	return e.client(project).Hold(ctx)
}

// Reclaim frees the volume data nothing uses any more: in the project's
// supervisor, in the background, when one runs (none is started for
// it); here otherwise.
func (e *engine) Reclaim(ctx context.Context, project string) error {
	if err := supervisor.NewClient(projectRunDir(e.run, project), nil).Reclaim(ctx); err == nil {
		return nil
	}
	return e.vm.FreeTrash()
}
