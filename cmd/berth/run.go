package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mattn/go-shellwords"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/spec"
	"github.com/berth-dev/berth/volume"
)

// exitCode ends berth with a container's exit code, printing nothing.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exitError ends berth with code, printing err: exec of a command that
// cannot start (126, as docker exec).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func (g *globalOptions) environMap() map[string]string {
	m := map[string]string{}
	for _, kv := range g.environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

type runFlags struct {
	o          compose.RunOptions
	entrypoint string
	// entrypointSet: --entrypoint was given, "" too (which clears the
	// entrypoint, keeping the command).
	entrypointSet bool
	noTTY         bool
	detach        bool
	quietPull     bool
	labels        []string
	build         bool
}

func newRunCommand(g *globalOptions, s streams) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] SERVICE [COMMAND] [ARGS...]",
		Short: "Run a one-off command on a service",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.entrypointSet = cmd.Flags().Changed("entrypoint")
			return runRun(cmd.Context(), g, s, &f, cmd.Flags().Changed("interactive"), args)
		},
	}
	cmd.Flags().SetInterspersed(false) // what follows SERVICE is the command's
	fl := cmd.Flags()
	fl.BoolVarP(&f.detach, "detach", "d", false, "Run container in background and print container ID")
	fl.BoolVar(&f.o.Remove, "rm", false, "Automatically remove the container when it exits")
	fl.StringArrayVarP(&f.o.Env, "env", "e", nil, "Set environment variables")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "Add or override a label")
	fl.StringVar(&f.o.Name, "name", "", "Assign a name to the container")
	fl.StringVarP(&f.o.User, "user", "u", "", "Run as specified username or uid")
	fl.StringVarP(&f.o.WorkingDir, "workdir", "w", "", "Working directory inside the container")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "Override the entrypoint of the image")
	fl.BoolVar(&f.o.NoDeps, "no-deps", false, "Don't start linked services")
	fl.BoolVarP(&f.noTTY, "no-TTY", "T", false, "Disable pseudo-TTY allocation (default: auto-detected)")
	fl.BoolVarP(&f.o.Interactive, "interactive", "i", true, "Keep STDIN open even if not attached")
	fl.StringArrayVar(&f.o.CapAdd, "cap-add", nil, "Add Linux capabilities")
	fl.StringArrayVar(&f.o.CapDrop, "cap-drop", nil, "Drop Linux capabilities")
	fl.StringVar(&f.o.PullPolicy, "pull", "policy", "Pull image before running (\"always\"|\"missing\"|\"never\")")
	fl.BoolVar(&f.quietPull, "quiet-pull", false, "Pull without printing progress information")
	fl.StringArrayVar(&f.o.Publish, "publish", nil, "Publish a container's port(s) to the host (-p)")
	fl.StringArrayVarP(&f.o.Volumes, "volume", "v", nil, "Bind mount a volume")
	fl.StringArrayVar(&f.o.Volumes, "volumes", nil, "Bind mount a volume (docker compose's other spelling of --volume)")
	fl.MarkHidden("volumes")
	fl.BoolVarP(&f.o.ServicePorts, "service-ports", "P", false, "Run command with all service's ports enabled and mapped to the host")
	fl.BoolVar(&f.build, "build", false, "Build image before starting container")
	fl.BoolVar(&f.o.UseAliases, "use-aliases", false, "Use the service's network useAliases in the network(s) the container connects to")
	return cmd
}

func runRun(ctx context.Context, g *globalOptions, s streams, f *runFlags, interactiveSet bool, args []string) error {
	if f.build {
		return fmt.Errorf("run --build: berth does not build images; load them with `berth load -i FILE`")
	}
	if len(f.o.Publish) > 0 && f.o.ServicePorts {
		return fmt.Errorf("--service-ports and --publish are incompatible")
	}
	switch f.o.PullPolicy {
	case "policy":
		f.o.PullPolicy = ""
	case "always", "missing", "never":
	default:
		return fmt.Errorf("invalid --pull %q: use always, missing or never", f.o.PullPolicy)
	}
	f.o.Service = args[0]
	if len(args) > 1 {
		f.o.Command = args[1:]
	}
	if f.entrypointSet {
		ep, err := shellwords.Parse(f.entrypoint)
		if err != nil {
			return fmt.Errorf("--entrypoint %q: %w", f.entrypoint, err)
		}
		f.o.Entrypoint = append([]string{}, ep...)
	}
	f.o.Labels = map[string]string{}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		f.o.Labels[k] = v
	}

	// docker compose gives the container a terminal when berth has one,
	// unless -T.
	in, inIsFile := s.in.(*os.File)
	out, outIsFile := s.out.(*os.File)
	f.o.TTY = !f.noTTY && inIsFile && outIsFile && isTerminal(in) && isTerminal(out)
	if !interactiveSet && !f.o.TTY && inIsFile && !isTerminal(in) {
		// Piped input is the command's: `echo x | berth run -T svc cat`.
		f.o.Interactive = true
	}
	f.o.Attach = compose.Attach{Stdout: s.out, Stderr: s.err}
	if f.o.Interactive {
		f.o.Attach.Stdin = s.in
	}
	if f.o.TTY {
		if w, h, err := term.GetSize(int(out.Fd())); err == nil {
			f.o.Attach.ConsoleWidth, f.o.Attach.ConsoleHeight = uint16(w), uint16(h)
		}
		f.o.BeforeStart = func() func() {
			state, err := term.MakeRaw(int(in.Fd()))
			if err != nil {
				return func() {}
			}
			return func() { term.Restore(int(in.Fd()), state) }
		}
	} else {
		// Without a terminal, Ctrl-C and SIGTERM go to the container once
		// it runs, as docker's signal proxy does; before, they stop berth.
		forward := make(chan syscall.Signal, 4)
		f.o.Signals = forward
		f.o.BeforeStart = func() func() {
			sigs := make(chan os.Signal, 4)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			stop := make(chan struct{})
			go func() {
				for {
					select {
					case sig := <-sigs:
						forward <- sig.(syscall.Signal)
					case <-stop:
						return
					}
				}
			}()
			return func() {
				signal.Stop(sigs)
				close(stop)
			}
		}
	}
	// A reader that goes away (berth run ... | head -1) must not kill
	// berth: the container runs on, and --rm must still remove it.
	signal.Ignore(syscall.SIGPIPE)
	f.o.Warn = func(err error) { io.WriteString(s.err, warningLine(err.Error())) }

	images, err := g.imageStore()
	if err != nil {
		return err
	}
	rt, err := g.paths().ContainerRuntime()
	if err != nil {
		return err
	}
	var pullOut io.Writer = s.err
	if f.quietPull {
		pullOut = io.Discard
	}
	r := newPullRenderer(pullOut, g.progressMode(s.err, f.quietPull))
	f.o.PullEvents = r.event
	if !f.o.NoDeps {
		// Dependencies first, as docker compose run does: up -d --wait
		// of what the service depends on, once the one-off container's
		// configuration is checked.
		deps, err := compose.DependenciesOf(ctx, g.projectOptions(), f.o.Service)
		if err != nil {
			return err
		}
		if len(deps) > 0 {
			f.o.Dependencies = func(ctx context.Context) error {
				eng, err := g.engine()
				if err != nil {
					return err
				}
				pr := g.newProgress(s.err, f.quietPull)
				lo := g.projectOptions()
				lo.Services = deps
				o := compose.UpRunOptions{UpOptions: compose.UpOptions{Services: deps, Compatibility: g.compatibility}, Wait: true, Progress: pr.event, Warn: pr.warn, PullEvents: f.o.PullEvents}
				_, err = compose.Up(ctx, lo, g.environMap(), images, eng, o)
				return err
			}
		}
	}
	nm, err := g.paths().NetworkManager()
	if err != nil {
		return err
	}
	vm, err := g.paths().VolumeManager()
	if err != nil {
		return err
	}
	eng, err := g.engine()
	if err != nil {
		return err
	}
	if f.detach {
		// -i (the default) keeps the container's stdin open, with no
		// one writing: `run -d svc cat` runs on, as in docker compose.
		f.o.Detach, f.o.TTY = true, false
		f.o.BeforeStart, f.o.Signals = nil, nil
		f.o.Started = func(name string) { fmt.Fprintln(s.out, name) }
	}
	f.o.Compatibility = g.compatibility
	code, err := compose.Run(ctx, g.projectOptions(), g.environMap(), images, runtime{rt, nm, vm, eng}, f.o)
	r.close()
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

// runtime and runContainer give compose the container runtime it drives.
type runtime struct {
	rt  *container.Runtime
	nm  *network.Manager
	vm  *volume.Manager
	eng *engine
}

func (r runtime) StartDetached(ctx context.Context, project, id string) error {
	return r.eng.Start(ctx, project, id)
}

func (r runtime) List(ctx context.Context) ([]compose.ContainerStatus, error) {
	return r.eng.List(ctx)
}

func (r runtime) Check(c spec.Container) error { return r.rt.Check(c) }

func (r runtime) Networks() compose.NetworkManager { return r.nm }
func (r runtime) Volumes() compose.VolumeManager   { return r.vm }

func (r runtime) Create(ctx context.Context, c spec.Container) (compose.Container, error) {
	ct, err := createContainer(ctx, r.rt, r.nm, c)
	if err != nil {
		return nil, err
	}
	return &runContainer{c: ct, nm: r.nm}, nil
}

// runContainer is an attached one-off container: berth watches it
// itself, and holds its published ports (run -p, --service-ports) while
// it runs.
type runContainer struct {
	c         *container.Container
	nm        *network.Manager
	unpublish func() error
}

func (c *runContainer) Start(ctx context.Context, a compose.Attach) error {
	if c.c.Spec.NetworkMode == "bridge" {
		release, err := c.nm.PublishPorts(&c.c.Spec)
		if err != nil {
			return err
		}
		c.unpublish = release
	}
	err := c.c.Start(ctx, container.StartOptions{
		Stdin: a.Stdin, Stdout: a.Stdout, Stderr: a.Stderr,
		ConsoleWidth: a.ConsoleWidth, ConsoleHeight: a.ConsoleHeight,
	})
	if err != nil {
		c.release()
	}
	return err
}

// release gives back the container's published ports, once.
func (c *runContainer) release() error {
	if c.unpublish == nil {
		return nil
	}
	err := c.unpublish()
	c.unpublish = nil
	return err
}

func (c *runContainer) Wait(ctx context.Context) (int, error) {
	e, err := c.c.Wait(ctx)
	if rerr := c.release(); err == nil && rerr != nil {
		err = rerr
	}
	return e.Code, err
}

func (c *runContainer) Signal(ctx context.Context, sig syscall.Signal) error {
	return c.c.Signal(ctx, sig)
}

func (c *runContainer) Remove(ctx context.Context) error {
	c.release()
	if err := c.c.Delete(ctx, true); err != nil {
		return err
	}
	if c.c.Spec.NetworkMode != "bridge" {
		return nil
	}
	return errors.Join(c.nm.Detach(ctx, c.c.ID, network.AttachmentsOf(&c.c.Spec)), c.nm.Release(ctx, c.c.ID))
}
