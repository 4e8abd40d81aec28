// Package entry makes the binary that imports it a project's supervisor
// when berth starts it as `<binary> supervise --project-name NAME`: import
// it, blank, from main.
//
// The work happens at import, as runtime/container/reexec's does for
// container inits: Go initialises packages in dependency order, then by
// import path, and this package needs only the runtime, the network and
// volume managers and the supervisor, none of which loads compose files.
// The supervisor therefore runs before the packages of the compose loader
// and the command line are initialised — compiling JSON schemas takes
// 20-25 ms of CPU at every `up` and keeps ~2 MiB in the heap of a process
// that lives as long as its project, under a memory goal of its own.
package entry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/hostpaths"
	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/supervisor"
	"github.com/berth-dev/berth/volume"
)

func init() {
	if len(os.Args) > 1 && os.Args[1] == "supervise" {
		os.Exit(Main(os.Args[2:], os.Environ(), os.Stderr))
	}
}

// Main runs the supervisor of the project args name until it has nothing
// left to watch, and returns the process's exit code. Its errors go to
// stderr (the CLI points it at the supervisor's log).
func Main(args, environ []string, stderr io.Writer) int {
	project, err := projectName(args)
	if err != nil {
		fmt.Fprintf(stderr, "berth supervise: %v\n", err)
		return 2
	}
	// The command that started this supervisor hands it a file to hold
	// until it exits (the lock on the copy of the binary it runs from,
	// internal/hugeexe): the processes it starts must not inherit it.
	inheritNone()
	// The supervisor lives for days, its memory a goal of its own: it
	// collects when its heap has grown by half, not doubled (28 MiB
	// resident instead of 31 with 50 containers; its CPU did not change
	// measurably). GOGC, when set, wins.
	if _, set := hostpaths.Lookup(environ, "GOGC"); !set {
		debug.SetGCPercent(50)
	}
	// One P: the supervisor's Go code is short bursts between system
	// calls (a start is mostly the container's init process, another
	// process), and with more Ps its goroutines wake and park threads
	// all the time, which virtual machines make dear: up -d of 50
	// services took 3.6% less time and CPU so, of 10 services 5%
	// (bench/README.md, session 7). GOMAXPROCS, when set, wins.
	if _, set := hostpaths.Lookup(environ, "GOMAXPROCS"); !set {
		runtime.GOMAXPROCS(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, project, environ, stderr); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// inheritNone marks the files this process inherited (beyond its
// standard ones) close-on-exec.
func inheritNone() {
	if unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	// Linux before 5.11.
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, e := range fds {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// projectName reads the command line the CLI starts a supervisor with.
func projectName(args []string) (string, error) {
	var name string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--project-name" || a == "-p":
			if i+1 == len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			name = args[i]
		case strings.HasPrefix(a, "--project-name="):
			name = strings.TrimPrefix(a, "--project-name=")
		default:
			return "", fmt.Errorf("unknown argument %q: the usage is supervise --project-name NAME", a)
		}
	}
	if name == "" {
		return "", errors.New("supervise needs --project-name")
	}
	return name, nil
}

func serve(ctx context.Context, project string, environ []string, stderr io.Writer) error {
	p := hostpaths.FromEnv(environ)
	rt, err := p.ContainerRuntime()
	if err != nil {
		return err
	}
	nm, err := p.NetworkManager()
	if err != nil {
		return err
	}
	vm, err := p.VolumeManager()
	if err != nil {
		return err
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
	}
	// libcontainer gives the init processes it starts (containers,
	// health probes) this process's GOMAXPROCS, and they set it to 1
	// first thing, stopping the world to do it: started with 1 they need
	// not. This process read its own at start.
	os.Setenv("GOMAXPROCS", "1")
	return supervisor.Serve(ctx, supervisor.Options{
		Runtime: rt, Networks: nm, Project: project, Dir: p.ProjectRun(project),
		StateFile: p.SupervisorState(project), Reclaim: vm.FreeTrash, Logf: logf,
		RemoveVolumes: func(ctx context.Context, names []string) error { return removeAnonymous(ctx, rt, vm, names) },
	})
}

// removeAnonymous removes the anonymous volumes among names that no
// container mounts.
func removeAnonymous(ctx context.Context, rt *container.Runtime, vm *volume.Manager, names []string) error {
	ids, err := rt.List(ctx)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, id := range ids {
		c, err := rt.Load(ctx, id)
		if err != nil {
			continue // removed meanwhile
		}
		for _, m := range c.Spec.Mounts {
			used[m.Volume] = true
		}
	}
	var errs []error
	for _, name := range names {
		v, err := vm.Get(name)
		if err != nil || v.Labels[volume.AnonymousLabel] != "true" || used[name] {
			continue
		}
		if err := vm.Remove(name); err != nil {
			errs = append(errs, fmt.Errorf("removing volume %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
