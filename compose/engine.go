package compose

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/berth-dev/berth/runtime/logs"
	"github.com/berth-dev/berth/runtime/spec"
)

// Engine is what the lifecycle verbs (up, down, start, stop, ...) need of
// the runtime and of the project's supervisor. Containers are named by
// project and id: the project says which supervisor owns them.
type Engine interface {
	ContainerStore
	// Lock serialises the commands that change a project: two `up` of
	// one project never interleave. It waits until ctx ends.
	Lock(ctx context.Context, project string) (unlock func(), err error)
	Create(ctx context.Context, c spec.Container) error
	// Check reports what Create would refuse in c's configuration,
	// making nothing.
	Check(c spec.Container) error
	// Start starts a created or exited container; the project's
	// supervisor then owns it (restart policy, health check, log).
	Start(ctx context.Context, project, id string) error
	// Stop stops a container: its stop signal, then SIGKILL after
	// timeout (its stop_grace_period when nil). Its restart policy
	// stays off until it is started again.
	Stop(ctx context.Context, project, id string, timeout *time.Duration) error
	// Kill sends a container a signal (SIGKILL when empty).
	Kill(ctx context.Context, project, id, signal string) error
	// Delete stops a container (as Stop) and removes it.
	Delete(ctx context.Context, project, id string, timeout *time.Duration) error
	Pause(ctx context.Context, id string) error
	Unpause(ctx context.Context, id string) error
	// Logs calls fn with a container's logged lines.
	Logs(ctx context.Context, id string, o logs.ReadOptions, fn func(logs.Record) error) error
	// Exec runs a process in a running container and returns its exit
	// code. When the process cannot start, the code is 126 (Docker's)
	// with the error, which then says why.
	Exec(ctx context.Context, id string, o ExecOptions) (int, error)
	// Top lists a container's processes: a header, then one row each.
	Top(ctx context.Context, id string) ([][]string, error)
	// Stats reads a container's resource use.
	Stats(ctx context.Context, id string) (Stats, error)
	// Root is the directory a container's files are seen at from the
	// host: with mounts, its process's root while it runs; else, and
	// otherwise, its root filesystem.
	Root(ctx context.Context, id string, mounts bool) (string, error)
	// Networks creates networks and gives containers their addresses.
	Networks() NetworkManager
	// Volumes creates and removes named volumes.
	Volumes() VolumeManager
	// Watch makes sure the project's supervisor runs: a new one adopts
	// the containers the last one left (after a crash, a kill -9).
	Watch(ctx context.Context, project string) error
	// Hold starts the project's supervisor in the background if none
	// runs, and keeps it until release is called: up calls it before
	// it makes the containers it will start.
	Hold(ctx context.Context, project string) (release func())
	// Reclaim frees the volume data that a restore replaced or a removal
	// put aside, in the background when it can.
	Reclaim(ctx context.Context, project string) error
}

// needsSupervisor reports whether any of a project's containers needs its
// supervisor: one runs, waits to restart, or died with no one to see it
// (no exit recorded).
func needsSupervisor(cs []ContainerStatus) bool {
	for _, c := range cs {
		if c.OneOff() && c.Labels[spec.DetachedLabel] != "true" {
			continue // an attached run: its berth watches it
		}
		if c.Running() || c.Restarting || c.Status == "exited" && c.FinishedAt.IsZero() {
			return true
		}
	}
	return false
}

// watched lists a project's containers after making sure its supervisor
// watches them, when they need one: what it adopts (a death it missed, a
// restart) shows in the list.
func watched(ctx context.Context, eng Engine, project string) ([]ContainerStatus, error) {
	cs, err := projectList(ctx, eng, project)
	if err != nil || !needsSupervisor(cs) {
		return cs, err
	}
	if err := eng.Watch(ctx, project); err != nil {
		return nil, err
	}
	return projectList(ctx, eng, project)
}

// ExecOptions describe a process `exec` runs in a container.
type ExecOptions struct {
	Args       []string
	Env        []string
	User       string
	WorkingDir string
	TTY        bool
	Privileged bool
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	// Detach starts the process and returns at once (exec -d).
	Detach bool
	// ConsoleWidth and ConsoleHeight size a TTY; Resize carries the new
	// sizes of the user's terminal.
	ConsoleWidth, ConsoleHeight uint16
	Resize                      <-chan [2]uint16
}

// Stats is a container's resource use.
type Stats struct {
	CPUNanos              uint64
	MemoryBytes           uint64
	MemoryLimit           uint64
	Pids                  uint64
	NetRx, NetTx          uint64
	BlockRead, BlockWrite uint64
}

// Number is the container's replica number (its container-number label).
func (c ContainerStatus) Number() int {
	n, _ := strconv.Atoi(c.Labels[ContainerNumberLabel])
	return n
}

// DisplayName is the name docker compose shows a container by in its
// output (log prefixes, "Attaching to", exits): <service>-<number>
// without the project, unless container_name named it otherwise.
func (c ContainerStatus) DisplayName() string {
	p, svc, n := c.Project(), c.Service(), c.Labels[ContainerNumberLabel]
	for _, sep := range []string{"-", "_"} {
		if p != "" && c.Name == p+sep+svc+sep+n {
			return c.Name[len(p)+1:]
		}
	}
	return c.Name
}

// Project is the container's project (its project label).
func (c ContainerStatus) Project() string { return c.Labels[ProjectLabel] }

// OneOff reports whether `run` made the container.
func (c ContainerStatus) OneOff() bool { return c.Labels[OneoffLabel] == "True" }

// Done reports whether the container stopped for good: exited, its exit
// recorded (a process that just died has none for a moment), and not
// about to be restarted by its policy.
func (c ContainerStatus) Done() bool {
	return c.Status == "exited" && !c.Restarting && !c.FinishedAt.IsZero()
}

// Running reports whether the container's process is there (running or
// paused).
func (c ContainerStatus) Running() bool { return c.Status == "running" || c.Status == "paused" }
