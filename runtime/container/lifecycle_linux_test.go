package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/tests/hoststate"
)

// TestInitReapsZombies: with init: true, PID 1 is the init (this binary,
// runtime/container/pid1), and an orphan that exits does not stay a
// zombie; without it, PID 1 (here sleep, which reaps nothing) leaves it
// one. The container cannot change the init's binary, which is this one.
func TestInitReapsZombies(t *testing.T) {
	rt := newRuntime(t)
	for _, init := range []bool{true, false} {
		// The subshell's child outlives it: orphaned, it is reparented to
		// PID 1, which must reap it when it exits.
		c := busyboxSpec(t, "sh", "-c", "(sleep 0.1 &); exec sleep 30")
		c.Init = init
		ct := create(t, rt, c)
		if err := ct.Start(t.Context(), StartOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		var out bytes.Buffer
		_, err := ct.Exec(t.Context(), ExecOptions{Args: []string{"sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; ps -o stat | grep -c ^Z"}, Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if init && !strings.HasPrefix(lines[0], initPath+" -- sh -c") {
			t.Errorf("PID 1 is %q, want the init", lines[0])
		}
		if want := map[bool]string{true: "0", false: "1"}[init]; lines[len(lines)-1] != want {
			t.Errorf("init %v: %s zombies, want %s:\n%s", init, lines[len(lines)-1], want, out.String())
		}
		if init {
			out.Reset()
			code, err := ct.Exec(t.Context(), ExecOptions{Args: []string{"sh", "-c", "for f in " + initPath + " /proc/1/exe; do (: >> $f) && echo wrote $f; done; grep '/docker-init ' /proc/mounts"}, Stdout: &out, Stderr: &out})
			if err != nil || code != 0 || strings.Contains(out.String(), "wrote") || !strings.Contains(out.String(), " ro,") {
				t.Errorf("writing the init's binary from the container: code %d, err %v:\n%s", code, err, out.String())
			}
		}
	}
}

// TestInitMovedBinary: a container whose init binary is gone (berth
// moved, or the tini an earlier berth used removed) starts with this one.
func TestInitMovedBinary(t *testing.T) {
	rt := newRuntime(t)
	c := busyboxSpec(t, "sleep", "30")
	c.Init = true
	ct := create(t, rt, c)
	rec, err := rt.readRecord(ct.ID)
	if err != nil {
		t.Fatal(err)
	}
	var cfg configs.Config
	if err := json.Unmarshal(rec.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, m := range cfg.Mounts {
		if m.Destination == initPath {
			m.Source = filepath.Join(t.TempDir(), "gone", "tini-static")
			moved++
		}
	}
	if moved != 1 {
		t.Fatalf("%d mounts at %s, want 1", moved, initPath)
	}
	if rec.Config, err = json.Marshal(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := ct.save(rec, false); err != nil {
		t.Fatal(err)
	}
	if err := ct.Start(t.Context(), StartOptions{}); err != nil {
		t.Fatalf("start with the init's binary gone: %v", err)
	}
	var out bytes.Buffer
	if _, err := ct.Exec(t.Context(), ExecOptions{Args: []string{"sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"}, Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if want := initPath + " -- sleep 30"; strings.TrimSpace(out.String()) != want {
		t.Errorf("PID 1 is %q, want %q", out.String(), want)
	}
}

func TestExec(t *testing.T) {
	rt := newRuntime(t)
	c := busyboxSpec(t, "sleep", "60")
	c.Process.Env = append(c.Process.Env, "FROM_SPEC=1")
	ct := create(t, rt, c)
	ctx := t.Context()
	if err := ct.Start(ctx, StartOptions{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := ct.Exec(ctx, ExecOptions{
		Args: []string{"sh", "-c", "echo $FROM_SPEC $EXTRA; cat; exit 7"}, Env: []string{"EXTRA=2"},
		Stdin: strings.NewReader("from stdin\n"), Stdout: &out, Stderr: &out,
	})
	if err != nil || code != 7 {
		t.Fatalf("exec: code %d, err %v", code, err)
	}
	if out.String() != "1 2\nfrom stdin\n" {
		t.Errorf("exec output %q", out.String())
	}

	out.Reset()
	code, err = ct.Exec(ctx, ExecOptions{Args: []string{"sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo tty"}, TTY: true, Stdout: &out})
	if err != nil || code != 0 {
		t.Fatalf("exec with tty: code %d, err %v", code, err)
	}
	if strings.TrimSpace(out.String()) != "tty" {
		t.Errorf("exec with tty output %q", out.String())
	}

	// A working directory that is not there fails, as docker exec -w
	// does, and is not made.
	if code, err := ct.Exec(ctx, ExecOptions{Args: []string{"pwd"}, WorkingDir: "/nonexistent"}); err == nil || !strings.Contains(err.Error(), "/nonexistent") || code != ExecStartFailed {
		t.Errorf("exec in a missing working directory: %d %v", code, err)
	}
	// A command that cannot start: Docker's 126, and why.
	for _, args := range [][]string{{"no-such-command"}, {"/etc/passwd"}} {
		if code, err := ct.Exec(ctx, ExecOptions{Args: args}); err == nil || !strings.Contains(err.Error(), args[0]) || code != ExecStartFailed {
			t.Errorf("exec %s: %d %v", args[0], code, err)
		}
	}
	if code, err := ct.Exec(ctx, ExecOptions{Args: []string{"true"}, User: "no-such-user"}); err == nil || !strings.Contains(err.Error(), "no-such-user") || code != ExecStartFailed {
		t.Errorf("exec -u no-such-user: %d %v", code, err)
	}
	if _, err := os.Stat(filepath.Join(rt.dir(c.ID), "rootfs", "nonexistent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("exec made its missing working directory: %v", err)
	}

	st, err := ct.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids < 1 || st.MemoryBytes == 0 || st.CPUNanos == 0 {
		t.Errorf("stats %+v", st)
	}

	if err := ct.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := ct.State(ctx); s.Status != "paused" {
		t.Errorf("state %q after pause", s.Status)
	}
	if err := ct.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := ct.State(ctx); s.Status != "running" {
		t.Errorf("state %q after resume", s.Status)
	}
	zero := time.Duration(0)
	e, err := ct.Stop(ctx, &zero)
	if err != nil || e.Code != 137 {
		t.Fatalf("stop -t 0: %+v, %v", e, err)
	}
	if s, _ := ct.State(ctx); s.Status != "exited" || s.Exit == nil || s.Exit.Code != 137 {
		t.Errorf("state after stop %+v", s)
	}
}

// TestOOMKilled: the exit records that the kernel killed the process for
// memory.
func TestOOMKilled(t *testing.T) {
	rt := newRuntime(t)
	c := busyboxSpec(t, "sh", "-c", "tail /dev/zero")
	// Room for libcontainer's init, which is this test binary (over 20 MB
	// when built with -race), before it execs tail.
	c.Resources.Memory = 64 << 20
	c.Resources.MemorySwap = 64 << 20
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ct := create(t, rt, c)
	if err := ct.Start(ctx, StartOptions{}); err != nil {
		t.Fatal(err)
	}
	e, err := ct.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !e.OOMKilled || e.Code != 137 {
		t.Errorf("exit %+v, want OOM-killed with 137", e)
	}
}

// TestRestart: a container that exited starts again, on the same root
// filesystem (what it wrote is still there), and its log goes on.
func TestRestart(t *testing.T) {
	rt := newRuntime(t)
	c := busyboxSpec(t, "sh", "-c", "echo run >> /counter; wc -l < /counter")
	ct := create(t, rt, c)
	for i := 1; i <= 2; i++ {
		if err := ct.Start(t.Context(), StartOptions{}); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if e, err := ct.Wait(t.Context()); err != nil || e.Code != 0 {
			t.Fatalf("run %d: %+v, %v", i, e, err)
		}
	}
	var lines []string
	for _, r := range records(t, ct) {
		lines = append(lines, strings.TrimSpace(string(r.Line)))
	}
	if strings.Join(lines, ",") != "1,2" {
		t.Errorf("output of the two runs %q, want 1 then 2", lines)
	}
}

// TestNoLeaks: after Delete, nothing of the container is left on the host:
// mounts, cgroups, state.
func TestNoLeaks(t *testing.T) {
	rt := newRuntime(t)
	before := hostState(t, rt)
	c := busyboxSpec(t, "sleep", "60")
	ct, err := rt.Create(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := ct.Start(t.Context(), StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if during := hostState(t, rt); during == before {
		t.Fatalf("the check sees nothing of a running container:\n%s", during)
	}
	if err := ct.Delete(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	if after := hostState(t, rt); after != before {
		t.Errorf("host changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if entries, _ := os.ReadDir(rt.root); len(entries) != 1 || entries[0].Name() != ".names" {
		t.Errorf("state left: %v", entries)
	}
	if names, _ := os.ReadDir(rt.namesDir()); len(names) != 0 {
		t.Errorf("names left: %v", names)
	}
}

// hostState lists what rt's containers put on the host: mounts under its
// state directories and cgroups under its cgroup parent.
func hostState(t *testing.T, rt *Runtime) string {
	t.Helper()
	s, err := hoststate.Of(rt.cgroupParent, rt.root, rt.run)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStartAfterReboot: a reboot unmounts the root filesystem and empties
// /run; a created container still starts, with what it wrote before.
func TestStartAfterReboot(t *testing.T) {
	rt := newRuntime(t)
	c := busyboxSpec(t, "sh", "-c", "cat /kept 2>/dev/null; echo kept > /kept")
	ct := create(t, rt, c)
	if err := ct.Start(t.Context(), StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	// What a reboot does to it.
	if err := unix.Unmount(filepath.Join(rt.dir(ct.ID), "rootfs"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(rt.run); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(rt.dir(ct.ID), "hosts"), 0); err != nil {
		t.Fatal(err)
	}
	rt2, err := New(Options{Root: rt.root, Run: rt.run, CgroupParent: rt.cgroupParent})
	if err != nil {
		t.Fatal(err)
	}
	ct2, err := rt2.Load(t.Context(), ct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := ct2.Start(t.Context(), StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if e, err := ct2.Wait(t.Context()); err != nil || e.Code != 0 {
		t.Fatalf("%+v %v", e, err)
	}
	recs := records(t, ct2)
	if got := string(recs[len(recs)-1].Line); got != "kept\n" {
		t.Errorf("the second run read %q, want what the first wrote", got)
	}
	if b, _ := os.ReadFile(filepath.Join(rt.dir(ct.ID), "hosts")); len(b) == 0 {
		t.Error("/etc/hosts was not written again")
	}
}

// TestEdgeCases: what the reviewer found, each once.
func TestEdgeCases(t *testing.T) {
	rt := newRuntime(t)
	ctx := t.Context()

	t.Run("an impossible configuration fails create, not start, and leaves nothing", func(t *testing.T) {
		c := busyboxSpec(t, "true")
		c.NetworkMode = "host"
		c.Sysctls = map[string]string{"net.core.somaxconn": "1024"} // the host's, not the container's
		if _, err := rt.Create(ctx, c); err == nil || !strings.Contains(err.Error(), "sysctl") {
			t.Fatalf("create: %v, want a sysctl error", err)
		}
		if _, err := os.Stat(rt.dir(c.ID)); !os.IsNotExist(err) {
			t.Errorf("state left: %v", err)
		}
	})

	t.Run("never started: wait and stop return at once, delete leaves nothing", func(t *testing.T) {
		c := busyboxSpec(t, "true")
		ct, err := rt.Create(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if e, err := ct.Wait(ctx); err != nil || e != (Exit{}) {
			t.Errorf("wait: %+v %v", e, err)
		}
		if _, err := ct.Stop(ctx, nil); err != nil {
			t.Errorf("stop: %v", err)
		}
		if err := ct.Signal(ctx, unix.SIGTERM); err == nil {
			t.Error("signal of a container that never ran succeeded")
		}
		if err := ct.Delete(ctx, false); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{rt.dir(c.ID), rt.runDir(c.ID), filepath.Join(rt.lcRoot(), c.ID)} {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				t.Errorf("%s left: %v", d, err)
			}
		}
	})

	t.Run("a pid given to another process since is not waited for", func(t *testing.T) {
		c := busyboxSpec(t, "true")
		ct := create(t, rt, c)
		// As if the container had run as this very process (alive), which
		// the kernel started at another time.
		started := time.Now()
		if err := ct.update(true, func(r *record) { r.Pid, r.PidStart, r.StartedAt = os.Getpid(), 1, started }); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		e, err := ct.Wait(wctx)
		if err != nil || !e.Missed || e.Code != 255 {
			t.Errorf("wait: %+v %v, want a missed exit at once", e, err)
		}
	})
}

// TestWaitingTakesNoThread: a running container costs its waiter no
// thread (a supervisor watches every container of its project for as long
// as they run): twenty more running containers, not twenty more threads.
func TestWaitingTakesNoThread(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	start := func() {
		ct := create(t, rt, busyboxSpec(t, "sleep", "60"))
		if err := ct.Start(ctx, StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	threads := func() int {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		_, v, _ := strings.Cut(string(b), "\nThreads:")
		n, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(v, "\n", 2)[0]))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	start() // the threads starting a container needs
	before := threads()
	for range 20 {
		start()
	}
	if after := threads(); after-before >= 10 {
		t.Errorf("20 running containers took %d threads (%d, then %d)", after-before, before, after)
	}
}

// TestIsStatic: berth's init must run inside containers, without the
// host's dynamic loader (findInit).
func TestIsStatic(t *testing.T) {
	initBin, err := testInit()
	if err != nil {
		t.Fatal(err)
	}
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{initBin: true, sh: false} {
		if got, err := isStatic(path); err != nil || got != want {
			t.Errorf("isStatic(%s) = %v, %v; want %v", path, got, err, want)
		}
	}
	if _, err := isStatic(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("isStatic of a missing file: no error")
	}
}

func TestNetDev(t *testing.T) {
	const dev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:    3250      30    0    0    0     0          0         0     1250      12    0    0    0     0       0          0
  eth1:      50       1    0    0    0     0          0         0       25       1    0    0    0     0       0          0
`
	if rx, tx := netDev([]byte(dev)); rx != 3300 || tx != 1275 {
		t.Errorf("got rx %d tx %d, want 3300 and 1275 (loopback left out)", rx, tx)
	}
	if rx, tx := netDev([]byte("garbage\nlo: 1 2\n")); rx != 0 || tx != 0 {
		t.Errorf("garbage: rx %d tx %d", rx, tx)
	}
}

// TestExecEnvironment: an exec's variables replace the container's of the
// same name; a terminal brings TERM=xterm unless the container sets TERM.
func TestExecEnvironment(t *testing.T) {
	container := []string{"PATH=/bin", "A=container"}
	tests := []struct {
		own  []string
		tty  bool
		want []string
	}{
		{nil, false, []string{"PATH=/bin", "A=container"}},
		{[]string{"A=exec", "B=1"}, false, []string{"PATH=/bin", "A=exec", "B=1"}},
		{nil, true, []string{"PATH=/bin", "A=container", "TERM=xterm"}},
		{[]string{"TERM=vt100"}, true, []string{"PATH=/bin", "A=container", "TERM=vt100"}},
	}
	for _, tt := range tests {
		if got := execEnv(container, tt.own, tt.tty); !slices.Equal(got, tt.want) {
			t.Errorf("execEnv(%q, %v) = %q, want %q", tt.own, tt.tty, got, tt.want)
		}
	}
	withTerm := []string{"TERM=screen"}
	if got := execEnv(withTerm, nil, true); !slices.Equal(got, withTerm) {
		t.Errorf("a container's TERM: %q", got)
	}
}
