package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/internal/flock"
	"github.com/berth-dev/berth/internal/hostpaths"
	"github.com/berth-dev/berth/internal/hugeexe"
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

// paths are berth's places on this host, from the environment.
func (g *globalOptions) paths() hostpaths.Paths { return hostpaths.FromEnv(g.environ) }

// runDir is BERTH_RUN, default /run/berth.
func (g *globalOptions) runDir() string { return g.paths().Run }

func (g *globalOptions) engine() (*engine, error) {
	p := g.paths()
	rt, err := p.ContainerRuntime()
	if err != nil {
		return nil, err
	}
	nm, err := p.NetworkManager()
	if err != nil {
		return nil, err
	}
	vm, err := p.VolumeManager()
	if err != nil {
		return nil, err
	}
	return &engine{containerStore: containerStore{rt: rt, root: g.berthRoot()}, g: g, run: g.runDir(), nm: nm, vm: vm, clients: map[string]*supervisor.Client{}}, nil
}

func (e *engine) Volumes() compose.VolumeManager { return e.vm }

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
func projectRunDir(run, project string) string {
	return hostpaths.Paths{Run: run}.ProjectRun(project)
}

func (e *engine) client(project string) *supervisor.Client {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clients[project]; ok {
		return c
	}
	dir := projectRunDir(e.run, project)
	c := supervisor.NewClient(dir, func(ctx context.Context) error { return e.spawn(ctx, project, dir) })
	e.clients[project] = c
	return c
}

// spawn starts the supervisor of a project: this binary, detached in a
// session of its own (a Ctrl-C at the terminal does not reach it), its
// output appended to a log beside its socket. It runs from the copy of
// the binary in huge pages (internal/hugeexe) when it can, and so do the
// containers' inits it starts.
func (e *engine) spawn(ctx context.Context, project, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(dir, "supervisor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	exe, held, err := e.supervisorExe(ctx, log)
	if err != nil {
		return err
	}
	if held != nil {
		defer held.Close()
	}
	cmd := exec.Command(exe, "supervise", "--project-name", project)
	cmd.Env = e.g.environ
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if held != nil {
		// The supervisor holds its copy's lock as long as it lives.
		cmd.ExtraFiles = []*os.File{held}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() // reaped if it leaves while this command runs
	return nil
}

// supervisorExe is the binary a supervisor runs from: the copy in huge
// pages, with the file that holds its lock, or this binary when no copy
// can be had (BERTH_HUGEPAGES=0, no huge pages for tmpfs, or an error,
// which the supervisor's log tells).
func (e *engine) supervisorExe(ctx context.Context, log io.Writer) (string, *os.File, error) {
	if v, _ := hostpaths.Lookup(e.g.environ, "BERTH_HUGEPAGES"); v != "0" {
		c, err := hugeexe.Ensure(ctx, hostpaths.Paths{Run: e.run}.Exe(), "/proc/self/exe")
		if err == nil {
			return c.Path, c.File, nil
		}
		if ctx.Err() != nil {
			return "", nil, err
		}
		if !errors.Is(err, hugeexe.ErrUnsupported) {
			fmt.Fprintf(log, "%s berth: the supervisor runs from the binary itself: %v\n", time.Now().UTC().Format(time.RFC3339Nano), err)
		}
	}
	exe, err := os.Executable()
	return exe, nil, err
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

func (e *engine) Check(c spec.Container) error { return e.rt.Check(c) }

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

// Pause and Unpause go through the project's supervisor, which emits
// their events.
func (e *engine) Pause(ctx context.Context, id string) error {
	c, err := e.rt.Load(ctx, id)
	if err != nil {
		return err
	}
	return e.client(c.Spec.Labels[compose.ProjectLabel]).Pause(ctx, id)
}

func (e *engine) Unpause(ctx context.Context, id string) error {
	c, err := e.rt.Load(ctx, id)
	if err != nil {
		return err
	}
	return e.client(c.Spec.Labels[compose.ProjectLabel]).Resume(ctx, id)
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

func (e *engine) Root(ctx context.Context, id string, mounts bool) (string, error) {
	c, err := e.rt.Load(ctx, id)
	if err != nil {
		return "", err
	}
	return c.Root(ctx, mounts)
}

func (e *engine) Stats(ctx context.Context, id string) (compose.Stats, error) {
	c, err := e.rt.Load(ctx, id)
	if err != nil {
		return compose.Stats{}, err
	}
	s, err := c.Stats(ctx)
	return compose.Stats(s), err
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
