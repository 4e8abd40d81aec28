package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/signal"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/logs"
	"github.com/berth-dev/berth/runtime/spec"
)

// StartOptions attach the caller to the container's main process. They
// only matter while the caller runs: the log gets everything either way.
type StartOptions struct {
	Stdin          io.Reader // copied to the process when OpenStdin or TTY
	Stdout, Stderr io.Writer // also get the output (attach)
	// ConsoleWidth and ConsoleHeight size the terminal of a TTY
	// container.
	ConsoleWidth, ConsoleHeight uint16
}

// waiter is the exit of a container this process started: only the parent
// can collect the exit status of a process.
type waiter struct {
	done chan struct{}
	exit Exit
	err  error
	// killed says this process sent the container SIGKILL: an adopted
	// container's exit, whose status only its parent could have, is then
	// known all the same (137).
	killed atomic.Bool
}

// killing notes that the container is being sent sig.
func (c *Container) killing(sig syscall.Signal) {
	if sig != unix.SIGKILL {
		return
	}
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	if w := c.rt.waiters[c.ID]; w != nil {
		w.killed.Store(true)
	}
}

// pipeSize is the buffer the kernel keeps for a container's output while
// no berth process reads it: 1 MiB, the default /proc/sys/fs/pipe-max-size.
const pipeSize = 1 << 20

// Start runs the container's main process. Its output goes to the log (and
// to o's writers while this process lives); its exit is recorded by Wait.
func (c *Container) Start(ctx context.Context, o StartOptions) (retErr error) {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := c.status()
	if err != nil {
		return fmt.Errorf("container %s: %w", c.Spec.Name, err)
	}
	if st != libcontainer.Stopped {
		return fmt.Errorf("container %s is %s: %w", c.Spec.Name, st, errdefs.ErrFailedPrecondition)
	}
	c.rt.mu.Lock()
	prev := c.rt.waiters[c.ID]
	c.rt.mu.Unlock()
	if prev != nil {
		// The last run's output may still be on its way to the log.
		select {
		case <-prev.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// libcontainer runs a container once: a restart is a new one, on the
	// same root filesystem, with the same configuration.
	lc, rec, err := c.rt.recreate(c.ID)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.Spec.Name, err)
	}
	c.lc = lc
	if err := checkEtcFiles(c.rt.dir(c.ID), &c.Spec); err != nil {
		return fmt.Errorf("container %s: %w", c.Spec.Name, err)
	}
	if _, err := mountRootfs(c.rt.dir(c.ID), c.rt.lowerLayers(c.Spec.Layers, rec.InitLayer)); err != nil {
		return fmt.Errorf("container %s: %w", c.Spec.Name, err)
	}
	if err := os.MkdirAll(c.rt.runDir(c.ID), 0o700); err != nil {
		return fmt.Errorf("container %s: %w", c.Spec.Name, err)
	}
	rootfs := filepath.Join(c.rt.dir(c.ID), "rootfs")
	for _, m := range c.Spec.Mounts {
		if m.CopyUp {
			if err := copyUp(rootfs, m); err != nil {
				return fmt.Errorf("container %s: filling a new volume: %w", c.Spec.Name, err)
			}
		}
	}
	proc, err := c.process(rootfs, c.Spec.Process.Args, c.Spec.Process.Env, c.Spec.Process.User, c.Spec.Process.GroupAdd, c.Spec.Process.WorkingDir, true)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.Spec.Name, err)
	}
	if c.Spec.Init {
		proc.Args = append([]string{initPath, "--"}, proc.Args...)
	}
	proc.Init = true
	proc.ConsoleWidth, proc.ConsoleHeight = o.ConsoleWidth, o.ConsoleHeight

	var closers []io.Closer
	defer func() {
		for _, cl := range closers {
			cl.Close()
		}
	}()
	var outputs []namedReader
	var console, stdin *os.File
	if c.Spec.Process.TTY {
		parent, child, err := socketPair()
		if err != nil {
			return err
		}
		closers = append(closers, parent, child)
		proc.ConsoleSocket = child
		console = parent
	} else {
		for _, name := range []string{"stdout", "stderr"} {
			f, err := c.fifo(name)
			if err != nil {
				for _, o := range outputs {
					o.r.Close()
				}
				return err
			}
			// This process's copy of the container's end is closed once
			// the container holds its own: when the container is gone,
			// the reader then sees the end of the stream.
			closers = append(closers, f.w)
			outputs = append(outputs, namedReader{name, f.r})
			if name == "stdout" {
				proc.Stdout = f.w
			} else {
				proc.Stderr = f.w
			}
		}
		switch {
		case c.Spec.Process.OpenStdin && o.Stdin != nil:
			// Attached: the process reads the caller's input and sees
			// its end.
			r, w, err := os.Pipe()
			if err != nil {
				return err
			}
			closers = append(closers, r)
			proc.Stdin, stdin = r, w
		case c.Spec.Process.OpenStdin:
			// stdin_open alone: input that stays open, read-write so
			// the process never sees an end.
			in, err := c.fifo("stdin")
			if err != nil {
				return err
			}
			in.r.Close()
			proc.Stdin = in.w
			closers = append(closers, in.w)
		}
	}
	if err := c.lc.Run(proc); err != nil {
		for _, r := range outputs {
			r.r.Close()
		}
		if stdin != nil {
			stdin.Close()
		}
		return fmt.Errorf("starting container %s: %w", c.Spec.Name, err)
	}
	if stdin != nil {
		// Only now: the container holds its own end of the FIFO, and
		// closing this one at the end of the input cannot take it away.
		go func() {
			io.Copy(stdin, o.Stdin)
			stdin.Close()
		}()
	}
	if console != nil {
		// The terminal's master end: the container's output, and its
		// input with stdin_open.
		master, err := recvFile(console)
		if err != nil {
			proc.Signal(unix.SIGKILL)
			proc.Wait()
			return fmt.Errorf("container %s: receiving its terminal: %w", c.Spec.Name, err)
		}
		outputs = append(outputs, namedReader{"stdout", master})
		defer func() {
			if retErr != nil {
				master.Close()
			}
		}()
		if o.Stdin != nil && c.Spec.Process.OpenStdin {
			go io.Copy(master, o.Stdin)
		}
	}
	pid, _ := proc.Pid()
	started := time.Now().UTC()
	var pidStart uint64
	if st, err := c.lc.State(); err == nil {
		pidStart = st.InitProcessStartTime
	}
	// The record as recreate read it: the container's lock, held since,
	// keeps anyone else from changing it.
	rec.Pid, rec.PidStart, rec.StartedAt, rec.Exit = pid, pidStart, started, nil
	if err := c.save(rec, false); err != nil {
		proc.Signal(unix.SIGKILL)
		proc.Wait()
		for _, o := range outputs {
			o.r.Close()
		}
		return err
	}
	c.started = started

	w := &waiter{done: make(chan struct{})}
	c.rt.mu.Lock()
	c.rt.waiters[c.ID] = w
	c.rt.mu.Unlock()
	copied := c.copyOutputs(outputs, o.Stdout, o.Stderr)
	go func() {
		awaitExit(pid)
		ps, err := proc.Wait()
		w.exit, w.err = c.exitOf(ps, err)
		// What the process wrote before it exited is still in the pipes:
		// the copies end when they have read it all.
		if err := <-copied; err != nil && w.err == nil {
			w.err = err
		}
		if err := c.recordExit(started, w.exit); err != nil && w.err == nil {
			w.err = err
		}
		close(w.done)
	}()
	return nil
}

// LastStart is when the last Start through c started the container's
// process, as its record says (State's StartedAt, without reading it
// again); zero before one.
func (c *Container) LastStart() time.Time { return c.started }

// recordExit records the exit of the run started at started, unless
// another process recorded one for it already, or a later run began.
func (c *Container) recordExit(started time.Time, e Exit) error {
	return c.update(true, func(r *record) {
		if r.Exit == nil && r.StartedAt.Equal(started) {
			r.Exit = &e
		}
	})
}

type namedReader struct {
	name string
	r    *os.File
}

// copyOutputs copies the container's output streams into its log and to
// the attached writers, until the streams end, which they do when every
// process of the container is gone, or until Detach. The channel gets the
// first error that lost output, once every stream ended.
func (c *Container) copyOutputs(outputs []namedReader, stdout, stderr io.Writer) <-chan error {
	done := make(chan error, 1)
	ctx, copied := c.rt.copyStarted()
	var lw *logs.Writer
	var openErr error
	if !c.Spec.Log.Disabled {
		var err error
		lw, err = logs.NewWriter(c.rt.dir(c.ID), "container", logs.Options{MaxSize: c.Spec.Log.MaxSize, MaxFiles: c.Spec.Log.MaxFiles})
		if err != nil {
			// The container runs on; what it writes is not kept.
			lw, openErr = nil, fmt.Errorf("container %s: opening its log: %w", c.Spec.Name, err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(outputs), len(outputs)+2)
	for i, out := range outputs {
		attach := stdout
		if out.name == "stderr" {
			attach = stderr
		}
		var r io.Reader = out.r
		if attach != nil {
			r = io.TeeReader(r, ignoreErrors{attach})
		}
		wg.Go(func() {
			defer out.r.Close()
			if lw == nil {
				stop := context.AfterFunc(ctx, func() { out.r.SetReadDeadline(time.Unix(1, 0)) })
				defer stop()
				_, err := io.Copy(io.Discard, r)
				if !errors.Is(err, unix.EIO) && // a terminal's end
					(ctx.Err() == nil || !errors.Is(err, os.ErrDeadlineExceeded)) {
					errs[i] = err
				}
				return
			}
			err := logs.Copy(ctx, r, out.name, lw)
			var dropped *logs.DroppedError
			if ctx.Err() != nil && !errors.As(err, &dropped) {
				err = nil // detached, and what was read is in the log
			} else if ctx.Err() != nil {
				err = dropped
			}
			errs[i] = err
		})
	}
	go func() {
		defer copied()
		wg.Wait()
		if lw != nil {
			if err := lw.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		done <- errors.Join(append(errs, openErr)...)
	}()
	return done
}

// copyStarted counts a copy of a container's output for Detach to wait
// for: the copy runs under ctx and calls done when it ended.
func (rt *Runtime) copyStarted() (ctx context.Context, done func()) {
	rt.copyMu.Lock()
	defer rt.copyMu.Unlock()
	if rt.detached {
		return rt.copying, func() {}
	}
	rt.copies.Add(1)
	return rt.copying, rt.copies.Done
}

// Detach ends this process's copies of its containers' output into their
// logs, as a process does before it exits and leaves its containers
// running: what a copy read is written to the log, what it did not read
// stays in the container's FIFOs for the next process's Reattach. The
// copies of containers started later end at once. Detach returns when
// every copy ended, or with ctx's error when ctx ends first.
func (rt *Runtime) Detach(ctx context.Context) error {
	rt.copyMu.Lock()
	rt.detached = true
	rt.copyMu.Unlock()
	rt.detach()
	ended := make(chan struct{})
	go func() {
		rt.copies.Wait()
		close(ended)
	}()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("detaching from the containers' output: %w", ctx.Err())
	}
}

// ignoreErrors keeps a failing attached terminal from stopping the copy
// into the log.
type ignoreErrors struct{ w io.Writer }

func (i ignoreErrors) Write(p []byte) (int, error) {
	i.w.Write(p)
	return len(p), nil
}

// Reattach takes over a running container that another process started
// (and may have left, even by kill -9): its output, buffered in the FIFOs
// meanwhile, goes on to the log, and Wait reports its exit (as a missed
// one: only the starting process could read the code). A container with a
// terminal lost its output with the process that held the terminal.
func (c *Container) Reattach(ctx context.Context) error {
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	if _, ok := c.rt.waiters[c.ID]; ok {
		return nil // this process watches it already
	}
	var outputs []namedReader
	if !c.Spec.Process.TTY {
		for _, name := range []string{"stdout", "stderr"} {
			p := filepath.Join(c.rt.runDir(c.ID), name)
			f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				for _, o := range outputs {
					o.r.Close()
				}
				return fmt.Errorf("container %s: reattaching its output: %w", c.Spec.Name, err)
			}
			outputs = append(outputs, namedReader{name, f})
		}
	}
	copied := c.copyOutputs(outputs, nil, nil)
	w := &waiter{done: make(chan struct{})}
	c.rt.waiters[c.ID] = w
	go func() {
		defer close(w.done)
		rec, err := c.rt.readRecord(c.ID)
		if err != nil {
			w.err = err
			<-copied
			return
		}
		if rec.Exit == nil && rec.Pid != 0 {
			if err := waitPid(context.Background(), rec.Pid, rec.PidStart); err != nil {
				w.err = err
			}
		}
		<-copied
		if rec.Exit != nil {
			w.exit = *rec.Exit
			return
		}
		w.exit = Exit{Code: 255, Missed: true, FinishedAt: time.Now().UTC(), OOMKilled: c.oomKilled()}
		if w.killed.Load() {
			// Nothing outlives SIGKILL: the code is 137, as a parent
			// would have seen it.
			w.exit.Code, w.exit.Signal, w.exit.Missed = 128+int(unix.SIGKILL), signalName(unix.SIGKILL), false
		}
		if err := c.recordExit(rec.StartedAt, w.exit); err != nil && w.err == nil {
			w.err = err
		}
	}()
	return nil
}

// LogOptions say which lines Logs returns.
type LogOptions = logs.ReadOptions

// Logs calls fn with the container's logged output.
func (c *Container) Logs(ctx context.Context, o LogOptions, fn func(logs.Record) error) error {
	return logs.Read(ctx, c.rt.dir(c.ID), "container", o, fn)
}

type fifoPair struct{ r, w *os.File }

// fifo makes the named pipe for one of the container's standard streams:
// the container gets it read-write (so it never gets SIGPIPE when no berth
// process reads), berth reads it without blocking.
func (c *Container) fifo(name string) (fifoPair, error) {
	p := filepath.Join(c.rt.runDir(c.ID), name)
	if err := unix.Mkfifo(p, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return fifoPair{}, fmt.Errorf("creating %s: %w", p, err)
	}
	w, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return fifoPair{}, err
	}
	unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, pipeSize)
	r, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		w.Close()
		return fifoPair{}, err
	}
	return fifoPair{r: r, w: w}, nil
}

// exitOf turns a process state into Docker's exit figures.
func (c *Container) exitOf(ps *os.ProcessState, err error) (Exit, error) {
	e := Exit{FinishedAt: time.Now().UTC(), Code: 255}
	if ps == nil {
		return e, err
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Exited():
			e.Code = ws.ExitStatus()
		case ws.Signaled():
			e.Code = 128 + int(ws.Signal())
			e.Signal = signalName(ws.Signal())
		}
	}
	e.OOMKilled = c.oomKilled()
	return e, nil
}

func signalName(s syscall.Signal) string {
	for name, sig := range signal.SignalMap {
		if sig == s {
			return "SIG" + name
		}
	}
	return strconv.Itoa(int(s))
}

// oomKilled reads the cgroup's OOM kill counter.
func (c *Container) oomKilled() bool {
	lc := c.lcNow()
	if lc == nil {
		return false
	}
	st, err := lc.State()
	if err != nil {
		return false
	}
	// A v1 memory controller when there is one: a hybrid host also lists
	// its (controller-less) v2 hierarchy under "".
	if p, ok := st.CgroupPaths["memory"]; ok {
		return counter(filepath.Join(p, "memory.oom_control"), "oom_kill") > 0
	}
	if p, ok := st.CgroupPaths[""]; ok {
		return counter(filepath.Join(p, "memory.events"), "oom_kill") > 0
	}
	return false
}

func counter(file, key string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// Wait waits for the main process to exit and returns how. For a container
// another process started, the exit code is not the kernel's to give:
// Wait then reports 255 with Missed set, as Docker does for exits it did
// not see.
func (c *Container) Wait(ctx context.Context) (Exit, error) {
	c.rt.mu.Lock()
	w := c.rt.waiters[c.ID]
	c.rt.mu.Unlock()
	if w != nil {
		select {
		case <-w.done:
			return w.exit, w.err
		case <-ctx.Done():
			return Exit{}, ctx.Err()
		}
	}
	rec, err := c.rt.readRecord(c.ID)
	if err != nil {
		return Exit{}, err
	}
	if rec.Exit != nil {
		return *rec.Exit, nil
	}
	if rec.StartedAt.IsZero() {
		return Exit{}, nil // never started: nothing to wait for
	}
	if rec.Pid != 0 {
		if err := waitPid(ctx, rec.Pid, rec.PidStart); err != nil {
			return Exit{}, err
		}
	}
	e := Exit{Code: 255, Missed: true, FinishedAt: time.Now().UTC(), OOMKilled: c.oomKilled()}
	if err := c.recordExit(rec.StartedAt, e); err != nil {
		return e, err
	}
	if rec, err = c.rt.readRecord(c.ID); err == nil && rec.Exit != nil {
		e = *rec.Exit // the one recorded, maybe by the process that saw it
	}
	return e, nil
}

// waitPid waits for a process that is not this one's child, through a
// pidfd. startTime (from /proc/<pid>/stat; 0 if unknown) tells the
// container's process from another that was given the same pid since.
func waitPid(ctx context.Context, pid int, startTime uint64) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("watching process %d: %w", pid, err)
	}
	defer unix.Close(fd)
	// Checked once the pidfd pins the process: if it is another one, the
	// container's is gone.
	if startTime != 0 && procStartTime(pid) != startTime {
		return nil
	}
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		if n > 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// procStartTime is field 22 of /proc/<pid>/stat, the process's start time
// in clock ticks since boot; 0 when it cannot be read.
func procStartTime(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields are
	// counted after its closing parenthesis (field 2).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0
	}
	n, _ := strconv.ParseUint(fields[19], 10, 64)
	return n
}

// Signal sends sig to the container's main process.
func (c *Container) Signal(ctx context.Context, sig syscall.Signal) error {
	lc, err := c.running()
	if err != nil {
		return err
	}
	c.killing(sig)
	if err := lc.Signal(sig); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return fmt.Errorf("container %s is not running: %w", c.Spec.Name, errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("signalling container %s: %w", c.Spec.Name, err)
	}
	return nil
}

// Stop asks the main process to stop with the stop signal, and kills it
// when it is still there after the grace period (timeout, when not nil,
// overrides the container's). The stop goes on when ctx ends: a stop half
// done helps no one.
func (c *Container) Stop(ctx context.Context, timeout *time.Duration) (Exit, error) {
	lc := c.lcNow()
	if lc == nil {
		return c.Wait(ctx) // never started, or gone with a reboot
	}
	st, err := lc.Status()
	if err != nil {
		return Exit{}, err
	}
	if st == libcontainer.Stopped {
		return c.Wait(ctx)
	}
	if st == libcontainer.Paused {
		if err := lc.Resume(); err != nil {
			return Exit{}, err
		}
	}
	grace := 10 * time.Second
	if c.Spec.StopGracePeriod != nil {
		grace = *c.Spec.StopGracePeriod
	}
	if timeout != nil {
		grace = *timeout
	}
	sig := unix.SIGTERM
	if c.Spec.StopSignal != "" {
		s, err := signal.ParseSignal(c.Spec.StopSignal)
		if err != nil {
			return Exit{}, fmt.Errorf("%w: stop_signal %q: %w", errdefs.ErrInvalidArgument, c.Spec.StopSignal, err)
		}
		sig = s
	}
	bg := context.WithoutCancel(ctx)
	if grace > 0 {
		c.killing(sig)
		if err := lc.Signal(sig); err == nil {
			wctx, cancel := context.WithTimeout(bg, grace)
			e, err := c.Wait(wctx)
			cancel()
			if err == nil {
				return e, nil
			}
		}
	}
	c.killing(unix.SIGKILL)
	if err := lc.Signal(unix.SIGKILL); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
		return Exit{}, fmt.Errorf("killing container %s: %w", c.Spec.Name, err)
	}
	return c.Wait(bg)
}

// Delete removes a stopped container (force: a running one is killed
// first): cgroup, mounts, state, logs.
func (c *Container) Delete(ctx context.Context, force bool) error {
	st, err := c.status()
	if err != nil {
		return err
	}
	if st != libcontainer.Stopped {
		if !force {
			return fmt.Errorf("container %s is %s: %w", c.Spec.Name, st, errdefs.ErrFailedPrecondition)
		}
		zero := time.Duration(0)
		if _, err := c.Stop(ctx, &zero); err != nil {
			return err
		}
	}
	c.rt.mu.Lock()
	w := c.rt.waiters[c.ID]
	delete(c.rt.waiters, c.ID)
	c.rt.mu.Unlock()
	if w != nil {
		// Its output goes on to the log until the streams end.
		<-w.done
	}
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := c.rt.cleanup(c.ID, c.Spec.Name); err != nil {
		return fmt.Errorf("removing container %s: %w", c.Spec.Name, err)
	}
	return nil
}

// State is what a container is doing.
type State struct {
	Status    string // created, running, paused, exited
	Pid       int
	Created   time.Time
	StartedAt time.Time
	Exit      *Exit
}

// State reports the container's status and last exit.
func (c *Container) State(ctx context.Context) (State, error) {
	rec, err := c.rt.readRecord(c.ID)
	if err != nil {
		return State{}, err
	}
	st, err := c.status()
	if err != nil {
		return State{}, err
	}
	s := State{Pid: rec.Pid, Created: rec.Created, StartedAt: rec.StartedAt, Exit: rec.Exit}
	switch {
	case st == libcontainer.Running:
		s.Status = "running"
	case st == libcontainer.Paused:
		s.Status = "paused"
	case rec.StartedAt.IsZero():
		s.Status = "created"
	default:
		s.Status = "exited"
	}
	return s, nil
}

// Pause freezes every process of the container; Resume thaws them.
func (c *Container) Pause(ctx context.Context) error {
	lc, err := c.running()
	if err != nil {
		return err
	}
	return lc.Pause()
}

func (c *Container) Resume(ctx context.Context) error {
	lc, err := c.running()
	if err != nil {
		return err
	}
	return lc.Resume()
}

// Stats are a container's resource use, from its cgroup and its network
// namespace.
type Stats struct {
	CPUNanos    uint64 // CPU time used, all CPUs
	MemoryBytes uint64 // memory in use
	MemoryLimit uint64
	Pids        uint64
	// NetRx and NetTx are the bytes received and sent on the container's
	// interfaces but loopback (docker stats's NET I/O); BlockRead and
	// BlockWrite the bytes read from and written to block devices
	// (BLOCK I/O).
	NetRx, NetTx          uint64
	BlockRead, BlockWrite uint64
}

// Stats reads the container's cgroup.
func (c *Container) Stats(ctx context.Context) (Stats, error) {
	lc, err := c.running()
	if err != nil {
		return Stats{}, err
	}
	s, err := lc.Stats()
	if err != nil {
		return Stats{}, fmt.Errorf("container %s: %w", c.Spec.Name, err)
	}
	cg := s.CgroupStats
	if cg == nil {
		return Stats{}, nil
	}
	st := Stats{
		CPUNanos:    cg.CpuStats.CpuUsage.TotalUsage,
		MemoryBytes: cg.MemoryStats.Usage.Usage,
		MemoryLimit: cg.MemoryStats.Usage.Limit,
		Pids:        cg.PidsStats.Current,
	}
	// Docker sums the entries of every device by their operation.
	for _, e := range cg.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			st.BlockRead += e.Value
		case "write":
			st.BlockWrite += e.Value
		}
	}
	// The network namespace's counters, read through its init process;
	// a container that shares the host's has none of its own.
	if c.Spec.NetworkMode != "host" {
		if state, err := lc.State(); err == nil {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", state.InitProcessPid)); err == nil {
				st.NetRx, st.NetTx = netDev(b)
			}
		}
	}
	return st, nil
}

// netDev sums the bytes received and sent of a /proc/net/dev's interfaces
// but loopback.
func netDev(b []byte) (rx, tx uint64) {
	for line := range strings.SplitSeq(string(b), "\n") {
		name, counters, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		// receive: bytes packets errs drop fifo frame compressed
		// multicast; transmit: bytes ...
		f := strings.Fields(counters)
		if len(f) < 9 {
			continue
		}
		r, err1 := strconv.ParseUint(f[0], 10, 64)
		t, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 == nil && err2 == nil {
			rx += r
			tx += t
		}
	}
	return rx, tx
}

// ExecOptions describe a process run inside a running container.
type ExecOptions struct {
	Args       []string
	Env        []string // added to the container's
	User       string   // the container's when empty
	WorkingDir string   // the container's when empty
	TTY        bool
	// Privileged gives the process every capability berth may pass on
	// (exec --privileged).
	Privileged bool
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	// Detach returns once the process started (exec -d): its output is
	// dropped, its exit not waited for.
	Detach bool
	// ConsoleWidth and ConsoleHeight size a TTY; Resize, when not nil,
	// carries the new sizes of the user's terminal.
	ConsoleWidth, ConsoleHeight uint16
	Resize                      <-chan [2]uint16
}

// ExecStartFailed is the code Exec returns, with the error, when the
// process could not be started (a command not found or not executable,
// a working directory missing): Docker's (daemon/exec.go).
const ExecStartFailed = 126

// execEnv is an exec's environment as Docker's daemon makes it: the
// container's, TERM=xterm with a terminal when the container sets no TERM,
// then the exec's own variables, each replacing the container's of that
// name (a process's getenv would find the first of two).
func execEnv(container, own []string, tty bool) []string {
	env := slices.Clone(container)
	key := func(kv string) string { k, _, _ := strings.Cut(kv, "="); return k }
	set := func(kv string) {
		if i := slices.IndexFunc(env, func(e string) bool { return key(e) == key(kv) }); i >= 0 {
			env[i] = kv
			return
		}
		env = append(env, kv)
	}
	if tty && !slices.ContainsFunc(env, func(e string) bool { return key(e) == "TERM" }) {
		env = append(env, "TERM=xterm")
	}
	for _, kv := range own {
		set(kv)
	}
	return env
}

// Exec runs a process in the running container and returns its exit code,
// or ExecStartFailed and why when the process could not start.
func (c *Container) Exec(ctx context.Context, o ExecOptions) (int, error) {
	user, wd := o.User, o.WorkingDir
	if user == "" {
		user = c.Spec.Process.User
	}
	if wd == "" {
		wd = c.Spec.Process.WorkingDir
	}
	env := execEnv(c.Spec.Process.Env, o.Env, o.TTY)
	rootfs := filepath.Join(c.rt.dir(c.ID), "rootfs")
	proc, err := c.process(rootfs, o.Args, env, user, c.Spec.Process.GroupAdd, wd, false)
	if err != nil {
		// A user the image does not have: the process cannot start.
		return ExecStartFailed, fmt.Errorf("exec in %s: %w", c.Spec.Name, err)
	}
	if o.Privileged {
		caps, err := capabilities(&spec.Container{Privileged: true})
		if err != nil {
			return -1, fmt.Errorf("exec in %s: %w", c.Spec.Name, err)
		}
		proc.Capabilities = &configs.Capabilities{Bounding: caps, Effective: caps, Permitted: caps}
	}
	var console *os.File
	if o.TTY && !o.Detach {
		proc.ConsoleWidth, proc.ConsoleHeight = o.ConsoleWidth, o.ConsoleHeight
		parent, child, err := socketPair()
		if err != nil {
			return -1, err
		}
		defer parent.Close()
		defer child.Close()
		proc.ConsoleSocket, console = child, parent
	} else if !o.Detach {
		proc.Stdin, proc.Stdout, proc.Stderr = o.Stdin, o.Stdout, o.Stderr
	}
	lc, err := c.running()
	if err != nil {
		return -1, err
	}
	if err := lc.Run(proc); err != nil {
		return ExecStartFailed, fmt.Errorf("exec in %s: %w", c.Spec.Name, err)
	}
	if o.Detach {
		// Reaped by this process while it lives, else by the host's
		// init (or a subreaper).
		go proc.Wait()
		return 0, nil
	}
	var copies sync.WaitGroup
	if console != nil {
		master, err := recvFile(console)
		if err != nil {
			proc.Signal(unix.SIGKILL)
			proc.Wait()
			return -1, err
		}
		defer master.Close()
		if o.Stdin != nil {
			go io.Copy(master, o.Stdin)
		}
		if o.Resize != nil {
			done := make(chan struct{})
			defer close(done)
			go func() {
				for {
					select {
					case sz := <-o.Resize:
						unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: sz[0], Row: sz[1]})
					case <-done:
						return
					}
				}
			}()
		}
		copies.Add(1)
		go func() {
			defer copies.Done()
			if o.Stdout != nil {
				io.Copy(o.Stdout, master) // ends with EIO when the process exits
			}
		}()
	}
	stop := context.AfterFunc(ctx, func() { proc.Signal(unix.SIGKILL) })
	defer stop()
	ps, err := proc.Wait()
	if console != nil {
		copies.Wait()
	}
	if ps == nil {
		return -1, err
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ps.ExitCode(), nil
}

// socketPair makes the socket libcontainer sends a terminal's master end
// through.
func socketPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "console-parent"), os.NewFile(uintptr(fds[1]), "console-child"), nil
}

// recvFile receives the file descriptor libcontainer sends over the
// console socket.
func recvFile(sock *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receiving the terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receiving the terminal: unexpected control message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("receiving the terminal: unexpected rights")
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

// lcNow is libcontainer's view of the container as it is now (another
// process may have started or stopped it since this one loaded it), or nil
// when libcontainer holds no state for it: never started, or the host
// rebooted. It changes nothing.
func (c *Container) lcNow() *libcontainer.Container {
	lc, err := libcontainer.Load(c.rt.lcRoot(), c.ID)
	if err != nil {
		return nil
	}
	return lc
}

// status is libcontainer's status, Stopped when it holds no state.
func (c *Container) status() (libcontainer.Status, error) {
	lc := c.lcNow()
	if lc == nil {
		return libcontainer.Stopped, nil
	}
	return lc.Status()
}

// running is libcontainer's container when its process runs (or is
// paused).
func (c *Container) running() (*libcontainer.Container, error) {
	lc := c.lcNow()
	if lc != nil {
		if st, err := lc.Status(); err == nil && st != libcontainer.Stopped {
			return lc, nil
		}
	}
	return nil, fmt.Errorf("container %s is not running: %w", c.Spec.Name, errdefs.ErrFailedPrecondition)
}

// lock serialises the changes of one container (start, delete) between
// berth processes.
func (c *Container) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(c.rt.dir(c.ID), "lock"), os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.Spec.Name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("container %s: locking: %w", c.Spec.Name, err)
	}
	return func() { f.Close() }, nil
}

// awaitExit returns once the process pid, a child of this one, has exited,
// without reaping it; Wait then reaps it at once. Wait alone blocks a
// thread in waitid for as long as the container runs: a supervisor with 50
// containers had 50 such threads, each with its stacks (~2 MiB of its
// resident memory). A pidfd parks the goroutine in Go's poller instead.
// Where pidfds are missing (Linux before 5.3), Wait blocks as before.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	// A pidfd is readable once its process has exited.
	rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		return n > 0 || err != nil && !errors.Is(err, unix.EINTR)
	})
}
