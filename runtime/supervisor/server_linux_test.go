package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime/container"
	_ "github.com/berth-dev/berth/runtime/container/reexec"
	"github.com/berth-dev/berth/runtime/image"
	"github.com/berth-dev/berth/runtime/spec"
	"github.com/berth-dev/berth/tests/hoststate"
	"github.com/berth-dev/berth/tests/offline"
)

// This test binary is also the containers' init (libcontainer re-executes
// it), through the reexec import.

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-supervisor-test-images-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	imageDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var imageDir string

var busybox = sync.OnceValues(func() (*image.Image, error) {
	return offline.Load(context.Background(), imageDir, "busybox")
})

// fixture is a supervisor serving project "p" in the test's directories.
type fixture struct {
	rt     *container.Runtime
	root   string // the runtime's
	dir    string
	state  string
	client *Client
	done   chan error
	cancel context.CancelFunc
	// reclaim is the supervisor's Options.Reclaim (nil: none).
	reclaim func() error
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("these tests need root")
		}
		t.Skip("needs root")
	}
	dir := t.TempDir()
	parent := fmt.Sprintf("/berth-svtest-%d-%d", os.Getpid(), time.Now().UnixNano())
	rt, err := container.New(container.Options{Root: filepath.Join(dir, "c"), Run: filepath.Join(dir, "r"), CgroupParent: parent})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{rt: rt, root: filepath.Join(dir, "c"), dir: filepath.Join(dir, "r", "p"), state: filepath.Join(dir, "p.json")}
	f.client = NewClient(f.dir, func(context.Context) error { return f.serve() })
	t.Cleanup(func() {
		ids, _ := rt.List(context.Background())
		for _, id := range ids {
			f.client.Remove(context.Background(), id, new(time.Duration))
		}
		f.stop(t)
		// Another project's, which the supervisor refuses to touch.
		ids, _ = rt.List(context.Background())
		for _, id := range ids {
			if c, err := rt.Load(context.Background(), id); err == nil {
				c.Delete(context.Background(), true)
			}
		}
		hoststate.RemoveCgroup(parent)
	})
	return f
}

// serve starts the supervisor in this process, as a spawn would.
func (f *fixture) serve() error {
	if f.done != nil {
		select {
		case <-f.done:
		default:
			return nil // still serving
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.done = make(chan error, 1)
	go func() {
		f.done <- Serve(ctx, Options{Runtime: f.rt, Project: "p", Dir: f.dir, StateFile: f.state, Idle: 200 * time.Millisecond, Reclaim: f.reclaim})
	}()
	return nil
}

func (f *fixture) stop(t *testing.T) {
	if f.done == nil {
		return
	}
	f.cancel()
	if err := <-f.done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	f.done = nil
}

// waitGone waits up to 5 s for the supervisor the fixture started to
// leave on its own (what says that it left), and checks how Serve ended.
func (f *fixture) waitGone(t *testing.T, what string) {
	t.Helper()
	eventually(t, 5*time.Second, what, func() bool {
		select {
		case err := <-f.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
			f.done = nil
			return true
		default:
			return false
		}
	})
}

// create makes a container of project p's service s running the shell
// script sh.
func (f *fixture) create(t *testing.T, name, sh string, change func(*spec.Container)) *container.Container {
	t.Helper()
	img, err := busybox()
	if err != nil {
		t.Fatal(err)
	}
	c := spec.Container{
		ID: name, Name: name, Hostname: name, Image: "busybox", ImageID: img.ID(), Layers: img.Layers,
		Labels:  map[string]string{projectLabel: "p", serviceLabel: name},
		Process: spec.Process{Args: []string{"sh", "-c", sh}, Env: []string{"PATH=/bin"}},
	}
	if change != nil {
		change(&c)
	}
	ct, err := f.rt.Create(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func (f *fixture) containerState(t *testing.T, id string) ContainerState {
	t.Helper()
	st, err := ReadState(f.state)
	if err != nil {
		t.Fatal(err)
	}
	return st.Containers[id]
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRestartOnFailureBackOff(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ct := f.create(t, "crash", "cut -d' ' -f1 /proc/uptime >> /tmp/starts; exit 3", func(c *spec.Container) {
		c.Restart = spec.Restart{Policy: "on-failure", MaxRetries: 3}
	})
	events := make(chan Event, 64)
	ectx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	go f.client.Events(ectx, func(e Event) error { events <- e; return nil })
	// The subscription first: the container dies at once.
	eventually(t, 5*time.Second, "the events subscription", func() bool {
		_, err := os.Stat(SocketPath(f.dir))
		return err == nil
	})
	time.Sleep(200 * time.Millisecond)
	if err := f.client.Start(ctx, ct.ID); err != nil {
		t.Fatal(err)
	}

	eventually(t, 10*time.Second, "three restarts then stopped", func() bool {
		cs := f.containerState(t, ct.ID)
		st, _ := ct.State(ctx)
		return cs.RestartCount == 3 && !cs.Restarting && st.Status == "exited"
	})
	// The last death's event may come a moment after the state says so.
	var actions []string
	for dies, timeout := 0, time.After(5*time.Second); dies < 4; {
		select {
		case e := <-events:
			actions = append(actions, e.Action)
			if e.Action == "die" {
				dies++
			}
		case <-timeout:
			dies = 4
		}
	}
	stopEvents()
	if got, want := strings.Join(actions, " "), "create start die restart start die restart start die restart start die"; got != want {
		t.Errorf("events %q, want %q: the container's creation seen once, a restart and a start after each of the first three deaths", got, want)
	}
	// The back-off doubles: 100, 200 and 400 ms between the runs.
	out := readRootfsFile(t, f, ct.ID, "/tmp/starts")
	var times []float64
	for _, l := range strings.Fields(out) {
		var v float64
		fmt.Sscan(l, &v)
		times = append(times, v)
	}
	if len(times) != 4 {
		t.Fatalf("%d runs, want 4 (1 + 3 restarts): %q", len(times), out)
	}
	for i, want := range []float64{0.1, 0.2, 0.4} {
		gap := times[i+1] - times[i]
		// uptime has 10 ms steps; a loaded machine (CI runs packages in
		// parallel) starts containers late, never early.
		if gap < want-0.01 || gap > want+2 {
			t.Errorf("restart %d after %.3fs, want %.1fs (Docker's back-off)", i+1, gap, want)
		}
	}
	st, _ := ct.State(ctx)
	if st.Exit == nil || st.Exit.Code != 3 {
		t.Errorf("exit %+v, want code 3", st.Exit)
	}
	// Nothing left to watch: the supervisor goes.
	select {
	case err := <-f.done:
		f.done = nil
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the supervisor stayed with nothing to watch")
	}
	if _, err := os.Stat(SocketPath(f.dir)); !os.IsNotExist(err) {
		t.Errorf("the socket stayed: %v", err)
	}
}

func readRootfsFile(t *testing.T, f *fixture, id, p string) string {
	t.Helper()
	// The upper dir of the container's overlay holds what it wrote.
	b, err := os.ReadFile(filepath.Join(f.root, id, "upper", p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStopSuspendsAlways(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ct := f.create(t, "web", "trap 'exit 0' TERM; echo >> /tmp/trapped; while :; do sleep 0.1; done", func(c *spec.Container) {
		c.Restart = spec.Restart{Policy: "always"}
	})
	if err := f.client.Start(ctx, ct.ID); err != nil {
		t.Fatal(err)
	}
	trapped := filepath.Join(f.root, ct.ID, "upper", "tmp", "trapped")
	runs := func(n int) func() bool {
		return func() bool { b, _ := os.ReadFile(trapped); return len(b) == n }
	}
	eventually(t, 5*time.Second, "the first run set its trap", runs(1))
	// Started, never restarted nor stopped: nothing to remember.
	if st, err := ReadState(f.state); err != nil || len(st.Containers) != 0 {
		t.Errorf("state after the first start: %+v, %v; want no entry", st, err)
	}
	// A crash is restarted...
	if err := ct.Signal(ctx, 9); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "restarted after SIGKILL", func() bool {
		st, _ := ct.State(ctx)
		return f.containerState(t, ct.ID).RestartCount == 1 && st.Status == "running"
	})
	// ...a stop is not. (Once the shell is ready for the stop signal: a
	// PID 1 without a handler does not get it.)
	eventually(t, 5*time.Second, "the second run set its trap", runs(2))
	code, err := f.client.Stop(ctx, ct.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Errorf("stop: exit code %d, want 0 (the trap)", code)
	}
	time.Sleep(500 * time.Millisecond)
	if st, _ := ct.State(ctx); st.Status != "exited" {
		t.Fatalf("status %s after stop, want exited", st.Status)
	}
	if cs := f.containerState(t, ct.ID); !cs.Stopped {
		t.Errorf("state %+v: stop not recorded", cs)
	}
	// An explicit start brings the policy back.
	if err := f.client.Start(ctx, ct.ID); err != nil {
		t.Fatal(err)
	}
	if cs := f.containerState(t, ct.ID); cs.Stopped || cs.RestartCount != 0 {
		t.Errorf("state %+v after start", cs)
	}
	if err := ct.Signal(ctx, 9); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "restarted after the new start", func() bool {
		st, _ := ct.State(ctx)
		return f.containerState(t, ct.ID).RestartCount == 1 && st.Status == "running"
	})
}

func TestHealthCheck(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ct := f.create(t, "db", "sleep 0.6; touch /tmp/ready; sleep 1; rm /tmp/ready; sleep 1000", func(c *spec.Container) {
		c.Healthcheck = &spec.Healthcheck{Test: []string{"CMD-SHELL", "echo probing; test -e /tmp/ready"}, Interval: 150 * time.Millisecond, Retries: 2}
	})
	if err := f.client.Start(ctx, ct.ID); err != nil {
		t.Fatal(err)
	}
	health := func() string {
		if h := f.containerState(t, ct.ID).Health; h != nil {
			return h.Status
		}
		return ""
	}
	if h := health(); h != Starting {
		t.Errorf("health %q at start, want starting", h)
	}
	eventually(t, 5*time.Second, "healthy", func() bool { return health() == Healthy })
	eventually(t, 5*time.Second, "unhealthy", func() bool { return health() == Unhealthy })
	h := f.containerState(t, ct.ID).Health
	if h.FailingStreak < 2 || len(h.Log) == 0 || !strings.Contains(h.Log[len(h.Log)-1].Output, "probing") {
		t.Errorf("health %+v", h)
	}
	// Unhealthy does not restart it.
	if st, _ := ct.State(ctx); st.Status != "running" {
		t.Errorf("status %s, want running", st.Status)
	}
}

func TestProbeTimeout(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ct := f.create(t, "slow", "sleep 1000", func(c *spec.Container) {
		c.Healthcheck = &spec.Healthcheck{Test: []string{"CMD", "sleep", "10"}, Interval: 100 * time.Millisecond, Timeout: 200 * time.Millisecond, Retries: 1}
	})
	if err := f.client.Start(ctx, ct.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "unhealthy by timeout", func() bool {
		h := f.containerState(t, ct.ID).Health
		return h != nil && h.Status == Unhealthy
	})
	r := f.containerState(t, ct.ID).Health.Log[0]
	if r.ExitCode != -1 || !strings.Contains(r.Output, "exceeded timeout") || r.End.Sub(r.Start) > 2*time.Second {
		t.Errorf("probe result %+v", r)
	}
}

func TestAdoptAfterSupervisorGoes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ct := f.create(t, "svc", "while :; do echo tick; sleep 0.1; done", func(c *spec.Container) {
		c.Restart = spec.Restart{Policy: "always"}
	})
	if err := f.client.Start(ctx, ct.ID); err != nil {
		t.Fatal(err)
	}
	// The supervisor goes (as with kill -9, its containers stay); a new
	// one adopts the container: it is not started twice, and its death
	// is seen and restarts it.
	f.stop(t)
	st, _ := ct.State(ctx)
	if st.Status != "running" {
		t.Fatalf("status %s once the supervisor went, want running", st.Status)
	}
	pid := st.Pid
	if _, err := f.client.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := ct.State(ctx); st.Pid != pid {
		t.Fatalf("pid %d after adoption, want %d: started twice", st.Pid, pid)
	}
	if err := ct.Signal(ctx, 9); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "restarted", func() bool {
		st, _ := ct.State(ctx)
		return st.Status == "running" && st.Pid != pid
	})
}

// TestLeftSupervisorActsNoMore: once Serve has returned, the exit of a
// container it watched neither restarts it nor rewrites the state file:
// that is the next supervisor's, which adopts it (a supervisor that left
// in-process must not act beside its successor).
func TestLeftSupervisorActsNoMore(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ct := f.create(t, "svc", "sleep 1000", func(c *spec.Container) {
		c.Restart = spec.Restart{Policy: "always"}
	})
	if err := f.client.Start(ctx, ct.ID); err != nil {
		t.Fatal(err)
	}
	f.stop(t)
	before, err := os.Stat(f.state)
	if err != nil {
		t.Fatal(err)
	}
	if err := ct.Signal(ctx, 9); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "killed", func() bool {
		st, _ := ct.State(ctx)
		return st.Status == "exited"
	})
	time.Sleep(500 * time.Millisecond) // past the first back-off, 100 ms
	if st, _ := ct.State(ctx); st.Status != "exited" {
		t.Errorf("status %s: the supervisor that left restarted it", st.Status)
	}
	if after, err := os.Stat(f.state); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the state file changed after the supervisor left: %v", err)
	}
}

func TestPeerAndProtocol(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.client.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(SocketPath(f.dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(f.dir); di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", di.Mode().Perm())
	}
	if err := f.client.Start(ctx, "nosuch"); err == nil {
		t.Error("start of a container that does not exist succeeded")
	}
	other := f.create(t, "other", "true", func(c *spec.Container) { c.Labels[projectLabel] = "q" })
	if err := f.client.Start(ctx, other.ID); err == nil || !strings.Contains(err.Error(), "not one of project p") {
		t.Errorf("start of another project's container: %v", err)
	}
	if _, err := f.client.call(ctx, Request{Op: "format-disk"}); err == nil {
		t.Error("an unknown operation succeeded")
	}
}

// TestReclaim: reclaim answers at once and runs Options.Reclaim in the
// background, once more when asked again meanwhile (not once per ask);
// the supervisor does not leave while it runs, even with nothing to watch.
func TestReclaim(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.client.Reclaim(ctx); err == nil {
		t.Fatal("reclaim without Options.Reclaim succeeded")
	}
	f.stop(t)

	started, release := make(chan struct{}, 10), make(chan struct{})
	var runs atomic.Int32
	f.reclaim = func() error {
		runs.Add(1)
		started <- struct{}{}
		<-release
		return nil
	}
	begin := time.Now()
	if err := f.client.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	<-started
	for range 3 {
		if err := f.client.Reclaim(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("reclaim waited for the work: %v", d)
	}
	// Longer than Idle: still serving.
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-f.done:
		t.Fatalf("the supervisor left while reclaiming: %v", err)
	default:
	}
	release <- struct{}{}
	<-started // the asks made meanwhile: one more run
	release <- struct{}{}
	f.waitGone(t, "the supervisor leaves once done")
	if n := runs.Load(); n != 2 {
		t.Errorf("Reclaim ran %d times, want 2", n)
	}
}

// TestHold: Hold starts the supervisor without waiting for it, and the
// supervisor, with nothing to watch, stays while the hold lasts (longer
// than Idle) and leaves once it is released.
func TestHold(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	begin := time.Now()
	release := f.client.Hold(ctx)
	if d := time.Since(begin); d > time.Second {
		t.Errorf("Hold waited %v", d)
	}
	probe := NewClient(f.dir, nil) // starts none
	eventually(t, 5*time.Second, "a supervisor serves", func() bool {
		_, err := probe.Ping(ctx)
		return err == nil
	})
	time.Sleep(500 * time.Millisecond) // longer than Idle
	if _, err := probe.Ping(ctx); err != nil {
		t.Fatalf("the supervisor left while held: %v", err)
	}
	release()
	f.waitGone(t, "the supervisor leaves once released")
	// Released before the supervisor listened: nothing waits, nothing
	// stays.
	f.client.Hold(ctx)()
	if f.done != nil {
		f.waitGone(t, "the supervisor leaves")
	}
}
