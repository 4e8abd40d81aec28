package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/signal"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/flock"
	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/network/dns"
	"github.com/berth-dev/berth/network/netspec"
	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/spec"
)

// The labels that tie a container to its project (docker compose's).
const (
	projectLabel = "com.docker.compose.project"
	serviceLabel = "com.docker.compose.service"
	oneoffLabel  = "com.docker.compose.oneoff"
)

// Options configure a supervisor.
type Options struct {
	Runtime *container.Runtime
	// Networks sets up the network namespaces, published ports and
	// firewall rules of bridged containers.
	Networks *network.Manager
	Project  string
	// Dir is the project's runtime directory (0700): the socket and the
	// supervisor's lock.
	Dir string
	// StateFile is where the supervisor keeps State.
	StateFile string
	// Idle is how long the supervisor stays once nothing is left to watch
	// and no one is connected; 0 means half a second.
	Idle time.Duration
	// Reclaim frees storage that nothing uses any more (the volume data
	// a snapshot restore replaced); OpReclaim runs it in the background.
	// nil: OpReclaim fails.
	Reclaim func() error
	// RemoveVolumes removes the anonymous volumes of a `run -d --rm`
	// container it removed (spec.AutoRemoveLabel), those no container
	// mounts; nil leaves them.
	RemoveVolumes func(ctx context.Context, names []string) error
	// Logf reports what goes wrong where no one asked (a restart that
	// failed); nil discards it.
	Logf func(format string, args ...any)
}

// SocketPath is the socket of the supervisor of the project whose
// runtime directory is dir.
func SocketPath(dir string) string { return filepath.Join(dir, "supervisor.sock") }

// maxSocketPath is the room in sockaddr_un for a path and its NUL.
const maxSocketPath = 107

// server is one project's supervisor.
type server struct {
	o  Options
	rt *container.Runtime

	// Serve's: what the DNS servers and health probes live for. Done once
	// Serve returned; the server then restarts and records nothing more
	// (the containers stay; the next supervisor adopts them).
	ctx context.Context

	mu      sync.Mutex
	dns     map[string]struct{} // networks served, by name@gateway
	watches map[string]*watch
	state   State
	// persisted is what the state file holds as this process wrote it
	// last, persistedSync whether that reached the disk.
	persisted     []byte
	persistedSync bool
	conns         int // connections being served
	lastBusy      time.Time
	subs          map[chan Event]struct{}
	// reclaiming: Options.Reclaim runs; reclaimAgain: it was asked for
	// again meanwhile, and runs once more.
	reclaiming, reclaimAgain bool
	removing                 int // auto-removals under way
	// starting holds a token per container start under way: as many at
	// once as the host has CPUs (two at least). A start is CPU work, most
	// of it the container's init process; ten at once on two CPUs cost
	// each half as much again as two at a time (page faults and switches
	// between processes, which virtual machines make dear), and the last
	// of them ran no sooner: up of 10 services 8-10% faster so.
	starting chan struct{}
}

// watch is a container the supervisor owns.
type watch struct {
	c   *container.Container
	ops sync.Mutex // start, stop, remove: one at a time

	// Under server.mu:
	restarter *Restarter
	health    *Health
	running   bool          // a run is watched
	runDone   chan struct{} // closed once the watched run's exit is handled
	timer     *time.Timer   // a restart is pending
	gone      bool          // removed
	proxies   []*network.Proxy
	ports     []network.PortRule
}

// Serve runs the supervisor of a project until ctx ends or nothing is left
// to watch: it adopts the project's containers that run (or died while no
// supervisor watched them), then serves the CLI's requests on its socket.
// Containers outlive it. Only one supervisor serves a project: a second one
// waits for the first to go.
func Serve(ctx context.Context, o Options) error {
	if o.Idle <= 0 {
		o.Idle = 500 * time.Millisecond
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	sock := SocketPath(o.Dir)
	if len(sock) > maxSocketPath {
		return fmt.Errorf("the supervisor's socket path %s is longer than %d bytes: use a shorter BERTH_RUN", sock, maxSocketPath)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	if err := os.Chmod(o.Dir, 0o700); err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	// Another supervisor may hold the lock: one that serves (this one is
	// not needed), or one on its way out (this one takes over).
	var unlock func()
	for deadline := time.Now().Add(10 * time.Second); ; {
		var ok bool
		if unlock, ok = flock.TryLock(filepath.Join(o.Dir, "supervisor.lock")); ok {
			break
		}
		if conn, err := net.Dial("unix", sock); err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("supervisor of %s: another one holds the lock and does not answer", o.Project)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
	defer unlock()
	// Containers outlive the supervisor: before the next one can take
	// over (the lock), what this one read of their output is written to
	// their logs, the rest left in their FIFOs for it.
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := o.Runtime.Detach(ctx); err != nil {
			o.Logf("supervisor: %v", err)
		}
	}()
	// Processes whose parent goes away inside the supervisor's tree (an
	// exec whose starter died) come to it, not to the host's init.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("supervisor: becoming a subreaper: %w", err)
	}
	os.Remove(sock)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	l.SetUnlinkOnClose(false)
	defer os.Remove(sock)
	defer l.Close()
	if err := os.Chmod(sock, 0o600); err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}

	st, err := ReadState(o.StateFile)
	if err != nil {
		return err
	}
	ctx, stopDNS := context.WithCancel(ctx)
	defer stopDNS()
	s := &server{o: o, rt: o.Runtime, ctx: ctx, dns: map[string]struct{}{}, watches: map[string]*watch{}, state: st, lastBusy: time.Now(), subs: map[chan Event]struct{}{},
		starting: make(chan struct{}, max(2, runtime.NumCPU()))}
	if err := s.adopt(ctx); err != nil {
		return err
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.AcceptUnix()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			go func() {
				s.serve(ctx, conn)
				s.mu.Lock()
				s.conns--
				s.lastBusy = time.Now()
				s.mu.Unlock()
			}()
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var orphans reaper
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return fmt.Errorf("supervisor: the socket closed")
		case <-tick.C:
		}
		if n%30 == 29 {
			s.ensureRules() // every 3 s
		}
		if n%5 == 4 {
			orphans.reap() // every half second
		}
		s.mu.Lock()
		if s.busy() {
			s.lastBusy = time.Now()
		} else if time.Since(s.lastBusy) >= o.Idle {
			// Under the lock: no connection is accepted from now on
			// that could find it gone.
			l.Close()
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
	}
}

// reaper reaps the children that became the supervisor's because it is
// a subreaper and that no one else waits for:
//
//   - libcontainer's intermediate process (runc:[1:CHILD]), whose parent
//     exits before reaping it, at every start and every exec (a health
//     probe): a supervisor probing every 100 ms would otherwise pile up
//     thousands of zombies and run out of pids. Reaped at once.
//   - libcontainer's init process (runc:[2:INIT]) of a start or an exec
//     that failed before libcontainer took it for its own to wait for (a
//     probe that began as its container was stopping). Such a zombie is
//     in the container's pid namespace, and the namespace's first
//     process cannot finish exiting while one is left: the container
//     would never be seen to stop. One that libcontainer waits for is
//     reaped by it within milliseconds, so only a zombie still there a
//     pass later (half a second) is taken.
//
// Only those: the processes libcontainer and os/exec wait for themselves
// must not be reaped here, or their waits would fail.
//
// It asks the kernel which child is a zombie without reaping it
// (waitid's WNOWAIT) and reaps it if it is an intermediate one, until
// none is left; that costs a system call when there is none, as almost
// always. A zombie of someone else's (a container whose exit its waiter
// has not collected yet) hides those behind it: then every process's
// stat is read instead, as many files as the host has processes (50
// containers: 7 ms).
type reaper struct {
	stale map[int]bool // runc:[2:INIT] zombies found at the last pass
}

func (r *reaper) reap() {
	for {
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil {
			r.stale = nil
			return // ECHILD: no children at all
		}
		pid := siginfoPid(&info)
		if pid <= 0 {
			r.stale = nil
			return // none has exited
		}
		if zombieOf(pid, os.Getpid()) != intermediate {
			r.scan()
			return
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err != nil || got != pid {
			return
		}
	}
}

// scan reaps every intermediate zombie of this process's, and the init
// zombies found at the last scan too, through /proc.
func (r *reaper) scan() {
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	stale := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		switch zombieOf(pid, self) {
		case intermediate:
		case initProcess:
			if !r.stale[pid] {
				stale[pid] = true
				continue
			}
		default:
			continue
		}
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
	r.stale = stale
}

// siginfoPid is si_pid of a SIGCHLD siginfo: the first field of the
// union that follows signo, errno, code and the padding to 8 bytes.
func siginfoPid(info *unix.Siginfo) int {
	return int(*(*int32)(unsafe.Add(unsafe.Pointer(info), 16)))
}

// The zombies a reaper takes.
const (
	otherProcess = iota
	intermediate // runc:[1:CHILD]
	initProcess  // runc:[2:INIT]
)

// zombieOf tells whether pid is a zombie child of parent's that a reaper
// takes, and which.
func zombieOf(pid, parent int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return otherProcess
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return otherProcess
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 2 || f[0] != "Z" || f[1] != strconv.Itoa(parent) {
		return otherProcess
	}
	switch string(b[open+1 : end]) {
	case "runc:[1:CHILD]":
		return intermediate
	case "runc:[2:INIT]":
		return initProcess
	}
	return otherProcess
}

// reclaim runs Options.Reclaim in the background, once more after the
// current run when one is under way.
func (s *server) reclaim() Response {
	if s.o.Reclaim == nil {
		return errResponse(fmt.Errorf("%w: this supervisor reclaims nothing", errdefs.ErrNotImplemented))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reclaiming {
		s.reclaimAgain = true
		return Response{}
	}
	s.reclaiming = true
	go func() {
		for {
			if err := s.o.Reclaim(); err != nil {
				s.o.Logf("reclaiming storage: %v", err)
			}
			s.mu.Lock()
			if !s.reclaimAgain {
				s.reclaiming = false
				s.lastBusy = time.Now()
				s.mu.Unlock()
				return
			}
			s.reclaimAgain = false
			s.mu.Unlock()
		}
	}()
	return Response{}
}

// busy reports whether anything needs the supervisor. s.mu is held.
func (s *server) busy() bool {
	if s.conns > 0 || s.reclaiming || s.removing > 0 {
		return true
	}
	for _, w := range s.watches {
		if w.running || w.timer != nil {
			return true
		}
	}
	return false
}

// adopt takes over the project's containers: the running ones are watched
// again (their output goes on to the log); the ones that died while no
// supervisor watched get their exit recorded as missed (255) and their
// restart policy applied; a restart that was pending is made.
func (s *server) adopt(ctx context.Context) error {
	ids, err := s.rt.List(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		c, err := s.rt.Load(ctx, id)
		if err != nil || c.Spec.Labels[projectLabel] != s.o.Project ||
			c.Spec.Labels[oneoffLabel] == "True" && c.Spec.Labels[spec.DetachedLabel] != "true" {
			continue
		}
		st, err := c.State(ctx)
		if err != nil {
			continue
		}
		w := s.newWatch(c)
		s.watches[id] = w
		switch {
		case st.Status == "running" || st.Status == "paused" || st.Status == "exited" && st.Exit == nil:
			if err := c.Reattach(ctx); err != nil {
				s.o.Logf("adopting %s: %v", c.Spec.Name, err)
				continue
			}
			w.running = true
			if st.Status != "exited" {
				s.mu.Unlock()
				if err := s.publish(w, true); err != nil {
					s.o.Logf("adopting %s's ports: %v", c.Spec.Name, err)
				}
				s.mu.Lock()
			}
			w.runDone = make(chan struct{})
			go s.watchRun(w, st.StartedAt, w.runDone)
		case s.state.Containers[id].Restarting && !w.restarter.IsStopped():
			s.scheduleRestart(w, 0)
		case st.Status == "exited" && autoRemoved(c):
			// It exited while no supervisor watched it.
			s.removeWhenDone(w)
		}
	}
	for id := range s.state.Containers {
		if _, ok := s.watches[id]; !ok {
			delete(s.state.Containers, id) // removed meanwhile
		}
	}
	return s.persist(true)
}

// newWatch makes the watch of c from what the state says of it. s.mu is
// held.
func (s *server) newWatch(c *container.Container) *watch {
	cs := s.state.Containers[c.ID]
	w := &watch{c: c, restarter: RestoreRestarter(c.Spec.Restart, cs.RestartCount, cs.RestartDelay, cs.Stopped)}
	if cs.Health != nil && c.Spec.Healthcheck != nil {
		w.health = NewHealth(*c.Spec.Healthcheck, time.Time{})
		w.health.Status, w.health.FailingStreak, w.health.Log = cs.Health.Status, cs.Health.FailingStreak, cs.Health.Log
	}
	return w
}

// watchOf is the watch of container id, made when the supervisor does not
// own it yet. The container must be one of the project's.
func (s *server) watchOf(ctx context.Context, id string) (*watch, error) {
	s.mu.Lock()
	w, ok := s.watches[id]
	s.mu.Unlock()
	if ok {
		return w, nil
	}
	c, err := s.rt.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Spec.Labels[projectLabel] != s.o.Project {
		return nil, fmt.Errorf("container %s is not one of project %s's: %w", c.Spec.Name, s.o.Project, errdefs.ErrNotFound)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.watches[id]; ok {
		return w, nil
	}
	w = s.newWatch(c)
	s.watches[id] = w
	return w, nil
}

// persist writes the state of every watched container; sync when what
// changed must outlive a crash of the host (a stop by the user), not only
// one of the supervisor. s.mu is held.
//
// A container in its first state (started, never restarted, stopped by
// no one, no health check) has no entry: a missing one reads as that.
// What is already on file is not written again: a start of such a
// container then writes nothing, where it rewrote the whole file (a new
// inode, which ext4 without a journal makes dear soon after deletions).
func (s *server) persist(sync bool) error {
	next := State{Containers: map[string]ContainerState{}}
	for id, w := range s.watches {
		if w.gone {
			continue
		}
		cs := ContainerState{
			RestartCount: w.restarter.Count(),
			RestartDelay: w.restarter.Delay(),
			Restarting:   w.timer != nil,
			Stopped:      w.restarter.IsStopped(),
		}
		if w.health != nil {
			cs.Health = &HealthState{Status: w.health.Status, FailingStreak: w.health.FailingStreak, Log: w.health.Log}
		}
		if cs != (ContainerState{}) {
			next.Containers[id] = cs
		}
	}
	s.state = next
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if bytes.Equal(b, s.persisted) && (s.persistedSync || !sync) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(s.o.StateFile), 0o700); err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	if sync {
		err = atomicfile.WriteBytes(s.o.StateFile, 0o600, b)
	} else {
		err = atomicfile.WriteBytesNoSync(s.o.StateFile, 0o600, b)
	}
	if err != nil {
		s.persisted = nil
		return err
	}
	s.persisted, s.persistedSync = b, sync
	return nil
}

// start starts w's container and watches the run. w.ops is held.
func (s *server) start(ctx context.Context, w *watch, explicit bool) error {
	s.mu.Lock()
	if w.gone {
		s.mu.Unlock()
		return fmt.Errorf("container %s was removed: %w", w.c.Spec.Name, errdefs.ErrNotFound)
	}
	if explicit {
		w.restarter.Started()
		if w.timer != nil {
			w.timer.Stop()
			w.timer = nil
		}
	}
	running := w.running
	s.mu.Unlock()
	if running {
		return nil // docker start of a running container: nothing to do
	}
	if err := s.connect(ctx, w); err != nil {
		return err
	}
	select {
	case s.starting <- struct{}{}:
	case <-ctx.Done():
		s.unpublish(w)
		return ctx.Err()
	}
	// A container never started is one the CLI made (its create event,
	// which docker compose's events show before the first start: the CLI
	// makes containers without the supervisor).
	if w.c.LastStart().IsZero() {
		s.emit(w, "create", nil)
	}
	// Once under way, the start is made whole: a hang-up stops only one
	// that has not begun.
	err := w.c.Start(context.WithoutCancel(ctx), container.StartOptions{})
	<-s.starting
	if err != nil {
		s.unpublish(w)
		return err
	}
	started := w.c.LastStart()
	s.mu.Lock()
	w.running = true
	if hc := w.c.Spec.Healthcheck; hc != nil && probeArgs(hc.Test) != nil {
		w.health = NewHealth(*hc, started)
	}
	// Not synced: a crash of the host that loses it also ends the run
	// and loses the container's record of the start (not synced either),
	// so the two agree that it never started.
	err = s.persist(false)
	w.runDone = make(chan struct{})
	done := w.runDone
	s.mu.Unlock()
	s.emit(w, "start", nil)
	go s.watchRun(w, started, done)
	return err
}

// watchRun watches one run of w's container: its health checks while it
// runs, then its exit, and the restart its policy asks for. done is
// closed once the exit is handled.
func (s *server) watchRun(w *watch, started time.Time, done chan struct{}) {
	defer close(done)
	pctx, stopProbes := context.WithCancel(s.ctx)
	if hc := w.c.Spec.Healthcheck; hc != nil && probeArgs(hc.Test) != nil {
		s.mu.Lock()
		if w.health == nil {
			w.health = NewHealth(*hc, started)
		} else if w.health.started.IsZero() {
			w.health.started = started // adopted
		}
		s.mu.Unlock()
		go s.probe(pctx, w)
	}
	exit, err := w.c.Wait(context.Background())
	stopProbes()
	if s.ctx.Err() != nil {
		// This supervisor has left (Serve returned): the exit and the
		// restart are the next one's, which adopts the container and
		// records an exit it missed.
		return
	}
	s.unpublish(w)
	if err != nil {
		s.o.Logf("waiting for %s: %v", w.c.Spec.Name, err)
	}
	attrs := map[string]string{"exitCode": fmt.Sprint(exit.Code)}
	if exit.OOMKilled {
		s.emit(w, "oom", nil)
	}
	s.emit(w, "die", attrs)

	s.mu.Lock()
	defer s.mu.Unlock()
	w.running = false
	ran := exit.FinishedAt.Sub(started)
	if exit.FinishedAt.IsZero() {
		ran = time.Since(started)
	}
	if w.gone {
		return
	}
	if again, delay := w.restarter.Exited(exit.Code, ran); again {
		s.scheduleRestart(w, delay)
	} else if autoRemoved(w.c) {
		s.removeWhenDone(w)
	}
	if err := s.persist(false); err != nil {
		s.o.Logf("%v", err)
	}
}

// scheduleRestart starts w's container again after delay. s.mu is held.
func (s *server) scheduleRestart(w *watch, delay time.Duration) {
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		w.ops.Lock()
		defer w.ops.Unlock()
		s.mu.Lock()
		if w.timer != t || w.gone || s.ctx.Err() != nil {
			s.mu.Unlock()
			return // a stop or a start came first, or the supervisor left
		}
		s.mu.Unlock()
		s.emit(w, "restart", nil)
		err := s.start(context.Background(), w, false)
		s.mu.Lock()
		w.timer = nil
		if err != nil {
			// Not an exit: a start that fails (a port taken, a missing
			// binary) is not retried, or it would loop.
			s.o.Logf("restarting %s: %v", w.c.Spec.Name, err)
		}
		s.persist(false)
		s.mu.Unlock()
	})
	w.timer = t
}

// connect readies a bridged container's network before it starts: its
// namespace and interfaces (made again after a reboot), the firewall
// rules and proxies of its published ports. A host port another program
// took fails the start, and the restart policy does not retry it.
func (s *server) connect(ctx context.Context, w *watch) error {
	nm := s.o.Networks
	if nm == nil || w.c.Spec.NetworkMode != "bridge" {
		return nil
	}
	if err := nm.Attach(ctx, w.c.ID, network.AttachmentsOf(&w.c.Spec)); err != nil {
		return fmt.Errorf("container %s: %w", w.c.Spec.Name, err)
	}
	return s.publish(w, false)
}

// publish opens the proxies of w's published ports and adds their
// firewall rules, and serves the DNS of its networks. At a start
// (adopting false) a port that cannot be had fails it all; when adopting
// a container another supervisor started (its proxies went with that
// one, its rules stayed), whatever can be had is taken, and the rest
// reported.
func (s *server) publish(w *watch, adopting bool) error {
	nm := s.o.Networks
	if nm == nil || w.c.Spec.NetworkMode != "bridge" {
		return nil
	}
	rules, err := nm.PortRules(&w.c.Spec)
	if err != nil {
		return err
	}
	var proxies []*network.Proxy
	var errs []error
	for _, r := range rules {
		px, err := network.ListenProxy(r)
		if err != nil {
			if holder := netspec.PortHolder(r.Protocol, r.HostPort); holder != "" {
				err = fmt.Errorf("%w (held by %s)", err, holder)
			}
			errs = append(errs, fmt.Errorf("container %s: %w", w.c.Spec.Name, err))
			if !adopting {
				break
			}
			continue
		}
		proxies = append(proxies, px)
	}
	if len(errs) == 0 || adopting {
		if err := nm.Publish(rules); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 && !adopting {
		for _, p := range proxies {
			p.Close()
		}
		return errors.Join(errs...)
	}
	s.mu.Lock()
	w.proxies, w.ports = proxies, rules
	s.mu.Unlock()
	s.serveDNS(w)
	return errors.Join(errs...)
}

// unpublish releases a stopped container's published ports.
func (s *server) unpublish(w *watch) {
	s.mu.Lock()
	proxies, ports := w.proxies, w.ports
	w.proxies, w.ports = nil, nil
	s.mu.Unlock()
	for _, p := range proxies {
		p.Close()
	}
	if len(ports) > 0 && s.o.Networks != nil {
		if err := s.o.Networks.Unpublish(w.c.ID); err != nil {
			s.o.Logf("%v", err)
		}
	}
}

// probe runs w's health check until ctx ends (the run ended).
func (s *server) probe(ctx context.Context, w *watch) {
	args := probeArgs(w.c.Spec.Healthcheck.Test)
	for {
		s.mu.Lock()
		next, timeout := w.health.Next(time.Now()), w.health.Timeout()
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
		r := s.runProbe(ctx, w, args, timeout)
		if ctx.Err() != nil {
			return // the container stopped under the probe
		}
		s.mu.Lock()
		changed := w.health.Record(r)
		status := w.health.Status
		if err := s.persist(false); err != nil {
			s.o.Logf("%v", err)
		}
		s.mu.Unlock()
		if changed {
			s.emit(w, "health_status: "+status, map[string]string{"healthStatus": status})
		}
	}
}

// runProbe runs one probe, killed past its timeout.
func (s *server) runProbe(ctx context.Context, w *watch, args []string, timeout time.Duration) ProbeResult {
	r := ProbeResult{Start: time.Now()}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &capped{max: maxProbeOutput}
	code, err := w.c.Exec(pctx, container.ExecOptions{Args: args, Stdout: out, Stderr: out})
	r.End = time.Now()
	switch {
	case errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		r.ExitCode, r.Output = -1, fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
	case err != nil:
		r.ExitCode, r.Output = -1, err.Error()
	default:
		r.ExitCode, r.Output = code, out.String()
	}
	return r
}

// probeArgs is the command of a health check's test; nil for NONE.
func probeArgs(test []string) []string {
	if len(test) == 0 {
		return nil
	}
	switch test[0] {
	case "CMD":
		return test[1:]
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", strings.Join(test[1:], " ")}
	}
	return nil
}

// capped keeps the first max bytes written to it.
type capped struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.b)
}

// stop stops w's container as the user asked: its restart policy stays
// off until it is started again.
func (s *server) stop(ctx context.Context, w *watch, timeout *time.Duration) (container.Exit, error) {
	if err := s.stoppedByUser(w); err != nil {
		return container.Exit{}, err
	}
	w.ops.Lock()
	defer w.ops.Unlock()
	st, err := w.c.State(ctx)
	if err != nil {
		return container.Exit{}, err
	}
	if st.Status != "running" && st.Status != "paused" {
		if st.Exit != nil {
			return *st.Exit, nil
		}
		return container.Exit{}, nil
	}
	s.emit(w, "kill", nil)
	e, err := w.c.Stop(ctx, timeout)
	if err != nil {
		return e, err
	}
	// The run's watcher handles the exit too (port rules, state): a start
	// right after the stop must find it done, or it would take the
	// container for still running and do nothing.
	s.mu.Lock()
	done := w.runDone
	s.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return e, ctx.Err()
		}
	}
	s.emit(w, "stop", nil)
	return e, nil
}

// stoppedByUser records a stop or kill by the user: no restart until the
// next start, a pending one cancelled; synced, as it must outlive a crash.
func (s *server) stoppedByUser(w *watch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.restarter.Stopped()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	return s.persist(true)
}

// kill signals w's container as the user asked.
func (s *server) kill(ctx context.Context, w *watch, sigName string) error {
	sig := unix.SIGKILL
	if sigName != "" {
		parsed, err := signal.ParseSignal(sigName)
		if err != nil {
			return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
		}
		sig = parsed
	}
	if err := s.stoppedByUser(w); err != nil {
		return err
	}
	if err := w.c.Signal(ctx, sig); err != nil {
		return err
	}
	s.emit(w, "kill", map[string]string{"signal": fmt.Sprint(int(sig))})
	return nil
}

// remove stops and deletes w's container.
func (s *server) remove(ctx context.Context, w *watch, timeout *time.Duration) error {
	if _, err := s.stop(ctx, w, timeout); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	w.ops.Lock()
	defer w.ops.Unlock()
	if err := w.c.Delete(ctx, true); err != nil {
		return err
	}
	if nm := s.o.Networks; nm != nil && w.c.Spec.NetworkMode == "bridge" {
		if err := nm.Detach(ctx, w.c.ID, network.AttachmentsOf(&w.c.Spec)); err != nil {
			s.o.Logf("removing %s's network namespace: %v", w.c.Spec.Name, err)
		}
		if err := nm.Release(ctx, w.c.ID); err != nil {
			s.o.Logf("releasing %s's addresses: %v", w.c.Spec.Name, err)
		}
	}
	s.mu.Lock()
	w.gone = true
	delete(s.watches, w.c.ID)
	// Not synced: a container removed needs nothing remembered, and a
	// crash that loses this write leaves an entry the next supervisor
	// drops (no such container).
	err := s.persist(false)
	s.mu.Unlock()
	s.emit(w, "destroy", nil)
	return err
}

// autoRemoved reports whether c is to be removed once its run ends
// (run -d --rm).
func autoRemoved(c *container.Container) bool {
	_, ok := c.Spec.Labels[spec.AutoRemoveLabel]
	return ok
}

// removeWhenDone removes w's container, which `run -d --rm` made, and the
// anonymous volumes of its own that nothing else mounts, in the
// background once the exit is handled (its watcher may be the caller).
// s.mu is held.
func (s *server) removeWhenDone(w *watch) {
	s.removing++
	done := w.runDone
	go func() {
		defer func() {
			s.mu.Lock()
			s.removing--
			s.lastBusy = time.Now()
			s.mu.Unlock()
		}()
		if done != nil {
			<-done
		}
		ctx := context.WithoutCancel(s.ctx)
		if err := s.remove(ctx, w, nil); err != nil {
			if !errdefs.IsNotFound(err) {
				s.o.Logf("removing %s (--rm): %v", w.c.Spec.Name, err)
			}
			return
		}
		vols := w.c.Spec.Labels[spec.AutoRemoveLabel]
		if vols == "" || s.o.RemoveVolumes == nil {
			return
		}
		if err := s.o.RemoveVolumes(ctx, strings.Split(vols, ",")); err != nil {
			s.o.Logf("removing %s's anonymous volumes (--rm): %v", w.c.Spec.Name, err)
		}
	}()
}

// emit sends an event to every subscriber; a slow one misses events
// rather than slowing the supervisor.
func (s *server) emit(w *watch, action string, attrs map[string]string) {
	e := Event{Time: time.Now().UTC(), Type: "container", Action: action, ID: w.c.ID, Service: w.c.Spec.Labels[serviceLabel],
		Attributes: map[string]string{"name": w.c.Spec.Name, "image": w.c.Spec.Image}}
	for k, v := range attrs {
		e.Attributes[k] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

// serve answers one connection.
func (s *server) serve(ctx context.Context, conn *net.UnixConn) {
	defer conn.Close()
	if err := checkPeer(conn); err != nil {
		writeMessage(conn, Response{Error: err.Error(), Kind: "permission-denied"})
		return
	}
	r := bufio.NewReader(conn)
	var req Request
	if err := readMessage(r, &req); err != nil {
		writeMessage(conn, Response{Error: err.Error(), Kind: "invalid-argument"})
		return
	}
	switch req.Op {
	case OpEvents:
		s.streamEvents(ctx, conn, r)
		return
	case OpHold:
		// Counted as a connection (busy) until the CLI hangs up or the
		// supervisor stops.
		if writeMessage(conn, Response{Pid: os.Getpid()}) == nil {
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			io.Copy(io.Discard, r)
			stop()
		}
		return
	}
	if req.Op == OpStart {
		// A CLI that gives up (its up failed elsewhere, or was
		// interrupted) hangs up: a start still waiting for its turn is
		// then not made, as docker compose starts nothing once its
		// create phase failed.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			io.Copy(io.Discard, r)
			cancel()
		}()
	}
	resp := s.handle(ctx, req)
	writeMessage(conn, resp)
}

// handle carries out one request.
func (s *server) handle(ctx context.Context, req Request) Response {
	switch req.Op {
	case OpPing:
		return Response{Pid: os.Getpid()}
	case OpReclaim:
		return s.reclaim()
	}
	switch req.Op {
	case OpStart, OpStop, OpKill, OpRemove, OpPause, OpResume:
	default:
		return errResponse(fmt.Errorf("%w: unknown operation %q", errdefs.ErrInvalidArgument, req.Op))
	}
	w, err := s.watchOf(ctx, req.ID)
	if err != nil {
		return errResponse(err)
	}
	switch req.Op {
	case OpStart:
		w.ops.Lock()
		err = s.start(ctx, w, true)
		w.ops.Unlock()
		if err != nil && autoRemoved(w.c) {
			// As Docker's AutoRemove: a container that cannot start goes
			// too.
			s.mu.Lock()
			s.removeWhenDone(w)
			s.mu.Unlock()
		}
	case OpStop:
		var e container.Exit
		e, err = s.stop(ctx, w, req.Timeout.Std())
		if err == nil {
			return Response{ExitCode: e.Code}
		}
	case OpKill:
		err = s.kill(ctx, w, req.Signal)
	case OpPause, OpResume:
		// Here rather than in the CLI, for the events.
		w.ops.Lock()
		if req.Op == OpPause {
			err = w.c.Pause(ctx)
		} else {
			err = w.c.Resume(ctx)
		}
		w.ops.Unlock()
		if err == nil {
			s.emit(w, req.Op, nil)
		}
	case OpRemove:
		err = s.remove(ctx, w, req.Timeout.Std())
	}
	if err != nil {
		return errResponse(err)
	}
	return Response{}
}

func errResponse(err error) Response {
	r := Response{Error: err.Error()}
	switch {
	case errdefs.IsNotFound(err):
		r.Kind = "not-found"
	case errdefs.IsFailedPrecondition(err):
		r.Kind = "failed-precondition"
	case errdefs.IsInvalidArgument(err):
		r.Kind = "invalid-argument"
	}
	return r
}

// streamEvents sends the project's events to conn until the peer hangs
// up or the supervisor ends.
func (s *server) streamEvents(ctx context.Context, conn *net.UnixConn, r *bufio.Reader) {
	ch := make(chan Event, 256)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}()
	if err := writeMessage(conn, Response{Pid: os.Getpid()}); err != nil {
		return
	}
	gone := make(chan struct{})
	go func() {
		r.ReadByte() // returns when the peer hangs up
		close(gone)
	}()
	for {
		select {
		case e := <-ch:
			if writeMessage(conn, e) != nil {
				return
			}
		case <-gone:
			return
		case <-ctx.Done():
			return
		}
	}
}

// checkPeer lets in root and the supervisor's own user only.
func checkPeer(conn *net.UnixConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("uid %d may not talk to the supervisor: %w", cred.Uid, syscall.EPERM)
	}
	return nil
}

// ensureRules puts back the firewall rules of the running containers'
// networks and ports, should something have flushed the tables.
func (s *server) ensureRules() {
	nm := s.o.Networks
	if nm == nil {
		return
	}
	s.mu.Lock()
	nets := map[string]bool{}
	var ports []network.PortRule
	for _, w := range s.watches {
		if !w.running {
			continue
		}
		for _, a := range w.c.Spec.Networks {
			nets[a.Network] = true
		}
		ports = append(ports, w.ports...)
	}
	s.mu.Unlock()
	if len(nets) == 0 {
		return
	}
	var ns []*network.Network
	for name := range nets {
		if n, err := nm.Get(name); err == nil {
			ns = append(ns, n)
		}
	}
	if err := nm.EnsureRules(ns, ports); err != nil {
		s.o.Logf("restoring firewall rules: %v", err)
	}
}

// serveDNS makes sure the embedded DNS answers on the gateways of the
// networks of w's container, for as long as the supervisor runs: the
// names of every container on the network (read from the network's
// state at each query, so a scale or a restart shows at once), the
// host's resolvers for the rest unless the network is internal. Several
// supervisors may serve one network (another project's containers joined
// it): they share the port and give the same answers.
func (s *server) serveDNS(w *watch) {
	nm := s.o.Networks
	if nm == nil {
		return
	}
	for _, a := range w.c.Spec.Networks {
		key := a.Network + "@" + a.Gateway.String()
		s.mu.Lock()
		_, serving := s.dns[key]
		if !serving {
			s.dns[key] = struct{}{}
		}
		s.mu.Unlock()
		if serving {
			continue
		}
		name := a.Network
		resolv, _ := os.ReadFile("/etc/resolv.conf")
		srv, err := dns.Listen(s.ctx, dns.Config{
			Addr: a.Gateway, Internal: a.Internal, Upstreams: dns.Upstreams(resolv), Logf: s.o.Logf,
			// The names of every network the asking container is on
			// (found by its address on this one), this network's first.
			// and the names its external_links give it.
			LookupFrom: func(client netip.Addr, q string) ([]netip.Addr, bool) {
				n, err := nm.Get(name)
				if err != nil {
					return nil, false
				}
				if ips := n.Lookup(q); len(ips) > 0 {
					return ips, true
				}
				for id, ep := range n.Endpoints {
					if ep.IP != client {
						continue
					}
					names := []string{q}
					if target, ok := ep.Links[q]; ok {
						names = append(names, target)
					}
					all, _ := nm.List()
					for _, other := range all {
						if _, on := other.Endpoints[id]; !on {
							continue
						}
						for _, q := range names {
							if ips := other.Lookup(q); len(ips) > 0 {
								return ips, true
							}
						}
					}
				}
				return nil, false
			},
			// The asking container's dns: servers, when it has any: a
			// loopback one is on the container's own loopback.
			UpstreamsFrom: func(client netip.Addr) []dns.Upstream {
				n, err := nm.Get(name)
				if err != nil {
					return nil
				}
				for id, ep := range n.Endpoints {
					if ep.IP != client || len(ep.DNS) == 0 {
						continue
					}
					var ups []dns.Upstream
					// Docker's embedded DNS uses the first three.
					for _, a := range ep.DNS[:min(len(ep.DNS), 3)] {
						u := dns.Upstream{Addr: netip.AddrPortFrom(a, 53)}
						if a.Unmap().IsLoopback() {
							u.Dial = network.DialIn(nm.NetNSPath(id))
						}
						ups = append(ups, u)
					}
					return ups
				}
				return nil
			},
		})
		if err != nil {
			s.o.Logf("DNS for network %s on %s: %v", name, a.Gateway, err)
			s.mu.Lock()
			delete(s.dns, key)
			s.mu.Unlock()
			continue
		}
		go srv.Serve(s.ctx)
	}
}
