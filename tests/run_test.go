package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/tests/berthbin"
	"github.com/berth-dev/berth/tests/hoststate"
	"github.com/berth-dev/berth/tests/offline"
)

// binDir holds the berth binary the tests run, built at the first test
// that needs it; TestMain removes it when the tests are done.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// berthBinary builds berth once per test binary.
var berthBinary = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(binDir, "berth")
	if err := berthbin.Build(context.Background(), bin); err != nil {
		return "", err
	}
	return bin, nil
})

// cli runs the real berth binary on one project with its own state, as a
// user would (docker/compose's e2e framework does the same).
//
// The tests' services whose process ignores SIGTERM as a container's PID 1
// (busybox's sleep and httpd) run with `init: true` unless a test is about
// that: each stop would otherwise wait its 10 s grace period, as Docker's
// does, and those waits were three quarters of the suite's time.
type cli struct {
	t       *testing.T
	bin     string
	dir     string // the project directory
	root    string // BERTH_ROOT
	runDir  string // BERTH_RUN
	cgroup  string // BERTH_CGROUP_PARENT
	environ []string
	// mountsOf is the process in whose mount namespace berth runs, when
	// not this one's (TestCgroupV2); 0 otherwise.
	mountsOf int
}

func newCLI(t *testing.T, composeYAML string) *cli {
	t.Helper()
	needRoot(t)
	bin, err := berthBinary()
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	run, err := os.MkdirTemp("/run", "berth-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	dir := filepath.Join(state, "project")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(composeYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, bin: bin, dir: dir, root: filepath.Join(state, "root"), runDir: run, cgroup: filepath.Base(run)}
	c.environ = append(os.Environ(), "BERTH_ROOT="+c.root, "BERTH_RUN="+c.runDir, "BERTH_CGROUP_PARENT=/"+c.cgroup)
	t.Cleanup(func() { hoststate.RemoveCgroup(c.cgroup) })
	// The volume store berth mounts at the first volume stays mounted,
	// as on a user's machine; the test's goes with the test (its loop
	// device with it).
	t.Cleanup(func() { unix.Unmount(c.volumeStore(), unix.MNT_DETACH) })
	// So does the tmpfs with its copy of its binary, which the
	// supervisors run from.
	t.Cleanup(func() { unix.Unmount(hoststate.Exe(c.runDir), unix.MNT_DETACH) })
	archive, err := offline.Archive("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if out, code := c.run("", "load", "-i", archive); code != 0 {
		t.Fatalf("berth load: %s", out)
	}
	// Also when the test fails: whatever containers are left go (stopped
	// first), then the project's supervisor, before their cgroup parent
	// and directories.
	t.Cleanup(func() {
		c.run("", "down", "--remove-orphans", "-t", "0")
		c.run("", "rm", "-f", "-s")
		if pids := c.waitSupervisorGone(5 * time.Second); len(pids) > 0 {
			t.Errorf("supervisors left: %v", pids)
			for _, pid := range pids {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
		c.removeNetworksLeft()
	})
	return c
}

// removeNetworksLeft fails the test for every network still recorded in
// its BERTH_ROOT once the project is down (another project of the test
// that was never taken down, say), and removes it: its bridge and
// firewall rules would otherwise stay on the host after the test's root
// is gone.
func (c *cli) removeNetworksLeft() {
	c.t.Helper()
	files, _ := filepath.Glob(filepath.Join(c.root, "networks", "*.json"))
	if len(files) == 0 {
		return
	}
	nm, err := network.New(filepath.Join(c.root, "networks"), filepath.Join(c.runDir, "netns"))
	if err != nil {
		c.t.Errorf("networks left (%v): %v", files, err)
		return
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		c.t.Errorf("network left by the test: %s", name)
		if err := nm.Remove(context.Background(), name); err != nil {
			c.t.Errorf("removing it: %v", err)
		}
	}
}

// supervisors lists the pids of the supervisors of c's projects: berth
// processes running `supervise` with c's BERTH_RUN (not their children
// between fork and exec, which look the same).
func (c *cli) supervisors() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	parent := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if !bytes.Contains(cmdline, []byte("\x00supervise\x00")) {
			continue
		}
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if bytes.Contains(env, []byte("BERTH_RUN="+c.runDir+"\x00")) {
			pids = append(pids, pid)
			stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if i := bytes.LastIndexByte(stat, ')'); i > 0 {
				if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
					parent[pid], _ = strconv.Atoi(f[1])
				}
			}
		}
	}
	return slices.DeleteFunc(pids, func(pid int) bool { return slices.Contains(pids, parent[pid]) })
}

// waitSupervisorGone waits up to d for c's supervisors to leave (they do
// once nothing is left to watch) and returns those still there.
func (c *cli) waitSupervisorGone(d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		pids := c.supervisors()
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cmdTimeout bounds each berth command a test runs. One that hangs fails
// its own test, with its goroutines' stacks (SIGQUIT makes the Go runtime
// print them), instead of the whole package at go test's timeout.
const cmdTimeout = 3 * time.Minute

// command prepares berth with args in the project directory and its
// environment, ended by SIGQUIT after cmdTimeout (ctx is then done);
// stop releases its timer. Its Wait gives up 10 s after berth exits if
// something berth started still holds berth's output (exec.ErrWaitDelay):
// a process that inherited the test's pipe is a leak the test must see.
func (c *cli) command(args ...string) (cmd *exec.Cmd, ctx context.Context, stop context.CancelFunc) {
	ctx, stop = context.WithTimeout(context.Background(), cmdTimeout)
	cmd = exec.CommandContext(ctx, c.bin, args...)
	cmd.Dir, cmd.Env = c.dir, c.environ
	cmd.Cancel = func() error { return cmd.Process.Signal(unix.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	return cmd, ctx, stop
}

// run runs berth with args in the project directory, stdin from input,
// and returns its combined output and exit code.
func (c *cli) run(input string, args ...string) (string, int) {
	c.t.Helper()
	cmd, ctx, stop := c.command(args...)
	defer stop()
	cmd.Stdin = strings.NewReader(input)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	// Shown with -v or when the test fails: where a slow run's time went.
	if d := time.Since(t0); d > 5*time.Second {
		c.t.Logf("berth %v took %v", args, d.Round(time.Millisecond))
	}
	if ctx.Err() != nil {
		c.t.Fatalf("berth %v: no end after %v:\n%s", args, cmdTimeout, out.String())
	}
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			c.t.Fatalf("berth %v: %v\n%s", args, err, out.String())
		}
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

func (c *cli) containers() []string {
	entries, _ := os.ReadDir(filepath.Join(c.root, "containers"))
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") { // .init: the shared init layers
			names = append(names, e.Name())
		}
	}
	return names
}

// TestRun: `berth run` runs a service's one-off container with the
// service's options, attached, returns its exit code, and --rm leaves
// nothing behind.
func TestRun(t *testing.T) {
	c := newCLI(t, `
services:
  app:
    image: busybox
    init: true
    working_dir: /work
    user: "1000:1000"
    group_add: ["27"]
    environment:
      GREETING: hello
      FROM_HOST:
    read_only: true
    tmpfs: ["/scratch:size=1m,mode=1777"]
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    mem_limit: 64m
    pids_limit: 50
    ulimits:
      nofile: {soft: 1000, hard: 2000}
    hostname: apphost
    extra_hosts: ["db.local:10.1.2.3"]
    stop_signal: SIGINT
  other:
    image: busybox
    depends_on: [app]
`)
	c.environ = append(c.environ, "FROM_HOST=from-berth")
	before := c.hostState()
	script := `echo "$GREETING $FROM_HOST"; pwd; id; hostname; grep db.local /etc/hosts; ` +
		`touch /x 2>/dev/null || echo read-only; touch /scratch/y && echo tmpfs-ok; ulimit -n; ` +
		`cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; ` +
		`grep CapBnd /proc/self/status; tr '\0' ' ' < /proc/1/cmdline; echo; exit 7`
	out, code := c.run("", "run", "--rm", "app", "sh", "-c", script)
	if code != 7 {
		t.Fatalf("exit code %d, want 7:\n%s", code, out)
	}
	for _, want := range []string{
		`(?m)^hello from-berth$`, `(?m)^/work$`, `uid=1000(\(app\))? gid=1000(\(app\))? groups=.*\b27\b`, `(?m)^apphost$`,
		`10\.1\.2\.3\s+db\.local`, `(?m)^read-only$`, `(?m)^tmpfs-ok$`, `(?m)^1000$`, `(?m)^67108864$`,
		`(?m)^50$`, `CapBnd:\s+0000000000000400`, `/sbin/docker-init -- sh -c`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output does not match %q:\n%s", want, out)
		}
	}

	// Piped input reaches the command, which sees its end.
	out, code = c.run("line one\nline two\n", "run", "--rm", "-T", "app", "wc", "-l")
	if code != 0 || strings.TrimSpace(out) != "2" {
		t.Errorf("piped stdin: %d %q", code, out)
	}

	// Errors say what is wrong and create nothing.
	out, code = c.run("", "run", "nosuch")
	if code == 0 || !strings.Contains(out, "no such service: nosuch") {
		t.Errorf("unknown service: %d %q", code, out)
	}
	if out, code = c.run("", "run", "--rm", "--no-deps", "other", "true"); code != 0 || strings.Contains(out, "project-app-1") {
		t.Errorf("--no-deps: %d %q", code, out)
	}
	// Without --no-deps, what the service depends on comes up first.
	out, code = c.run("", "run", "--rm", "other", "true")
	if code != 0 || !strings.Contains(out, "Container project-app-1  Started") {
		t.Errorf("service with dependencies: %d %q", code, out)
	}
	c.must("down")

	// A reader that goes away does not kill berth: the container runs to
	// its end and --rm still removes it.
	ctx, stop := context.WithTimeout(context.Background(), cmdTimeout)
	defer stop()
	pipe := exec.CommandContext(ctx, "sh", "-c", c.bin+` run --rm -T app sh -c 'yes | head -c 3000000' | head -c 10 >/dev/null; echo "${PIPESTATUS:-ok}"`)
	pipe.Dir, pipe.Env = c.dir, c.environ
	if out, err := pipe.CombinedOutput(); err != nil {
		t.Errorf("berth run | head: %v: %s", err, out)
	}

	if left := c.containers(); len(left) != 0 {
		t.Errorf("containers left after --rm: %v", left)
	}
	if after := c.hostState(); after != before {
		t.Errorf("mounts changed:\n%s\n---\n%s", before, after)
	}
}

// hostState lists what c's containers put on the host: mounts under its
// state and runtime directories, cgroups under its cgroup parent.
func (c *cli) hostState() string {
	c.t.Helper()
	s, err := hoststate.InNamespaceOf(c.mountsOf, c.cgroup, c.root, c.runDir)
	if err != nil {
		c.t.Fatal(err)
	}
	// The volume store is berth's state, like its image store, not
	// something a container left.
	lines := strings.Split(s, "\n")
	lines = slices.DeleteFunc(lines, func(l string) bool {
		f := strings.Fields(l)
		return len(f) > 4 && f[4] == c.volumeStore()
	})
	return strings.Join(lines, "\n")
}

// volumeStore is where berth keeps c's volumes.
func (c *cli) volumeStore() string { return filepath.Join(c.root, "volumes") }

// TestRunTerminal: on a terminal, berth run gives the container one of its
// own (a pseudo-terminal of the container's /dev/pts), sized like berth's,
// and puts the user's terminal back as it was.
func TestRunTerminal(t *testing.T) {
	c := newCLI(t, "services:\n  app:\n    image: busybox\n")
	master, slave := openPTY(t)
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cmd, _, stop := c.command("run", "--rm", "app", "sh", "-c", "tty; stty size; exit 4")
	defer stop()
	startOn(t, cmd, slave)
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(&out, master) // ends with EIO when every end of the slave is closed
		close(done)
	}()
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 4 {
		t.Errorf("exit code %d (%v), want 4", code, err)
	}
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Error("the terminal was not restored")
	}
	slave.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the terminal did not close")
	}
	got := out.String()
	for _, want := range []string{"/dev/pts/", "33 101"} {
		if !strings.Contains(got, want) {
			t.Errorf("output %q lacks %q", got, want)
		}
	}
}

// TestRunTerminalInit: with init: true on a terminal, the command (not the
// init) is the terminal's foreground process group, so Ctrl-C interrupts
// it; the init then exits with its status, 130.
func TestRunTerminalInit(t *testing.T) {
	c := newCLI(t, "services:\n  app:\n    image: busybox\n    init: true\n")
	master, slave := openPTY(t)
	cmd, _, stop := c.command("run", "--rm", "app", "sh", "-c", `set -- $(cat /proc/$$/stat); echo sh pgrp=$5 tpgid=$8 $(set -- $(cat /proc/1/stat); echo init pgrp=$5); echo ready; sleep 30`)
	defer stop()
	startOn(t, cmd, slave)
	// The reader owns out until done; the test reads it after.
	var out bytes.Buffer
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 4096)
		signalled := false
		for {
			n, err := master.Read(b)
			out.Write(b[:n])
			if !signalled && strings.Contains(out.String(), "ready") {
				signalled = true
				close(ready)
			}
			if err != nil { // EIO when every end of the slave is closed
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		slave.Close()
		<-done
		t.Fatalf("the command did not start:\n%s", out.String())
	}
	start := time.Now()
	if _, err := master.Write([]byte{3}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code %d (%v), want 130", code, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Ctrl-C took %v to stop the command", d)
	}
	slave.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the terminal did not close")
	}
	// The terminal's foreground group (tpgid) is the command's, not the
	// init's.
	m := regexp.MustCompile(`sh pgrp=(\d+) tpgid=(\d+) init pgrp=(\d+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no process groups in the output:\n%s", out.String())
	}
	if m[1] != m[2] || m[3] == m[2] {
		t.Errorf("the command's group %s, the init's %s, the terminal's foreground %s: want the command's", m[1], m[3], m[2])
	}
}

// openPTY opens a pseudo-terminal pair, closed at the end of the test.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// startOn starts cmd with f as its standard input and outputs.
func startOn(t *testing.T, cmd *exec.Cmd, f *os.File) {
	t.Helper()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

// TestPsRm: one-off containers kept (no --rm) are listed by ps -a, with
// their exit, and removed by rm, which asks first unless -f.
func TestPsRm(t *testing.T) {
	c := newCLI(t, "services:\n  app:\n    image: busybox\n    init: true\n  other:\n    image: busybox\n")
	before := c.hostState()
	if _, code := c.run("", "run", "-T", "app", "sh", "-c", "exit 3"); code != 3 {
		t.Fatalf("run: exit %d", code)
	}
	if _, code := c.run("", "run", "-T", "other", "true"); code != 0 {
		t.Fatalf("run: exit %d", code)
	}
	out, code := c.run("", "ps")
	if code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("ps lists stopped containers:\n%s", out)
	}
	out, _ = c.run("", "ps", "-a")
	if !regexp.MustCompile(`project-app-run-[0-9a-f]+\s+busybox\s+.*app\s+.*Exited \(3\)`).MatchString(out) ||
		!regexp.MustCompile(`project-other-run-[0-9a-f]+\s+busybox\s+.*other\s+.*Exited \(0\)`).MatchString(out) {
		t.Errorf("ps -a:\n%s", out)
	}
	out, _ = c.run("", "ps", "-a", "--format", "json", "app")
	if !strings.Contains(out, `"Service":"app"`) || !strings.Contains(out, `"ExitCode":3`) || strings.Contains(out, `"Service":"other"`) {
		t.Errorf("ps -a --format json app:\n%s", out)
	}
	if out, _ := c.run("n\n", "rm", "app"); !strings.Contains(out, "Are you sure?") || len(c.containers()) != 2 {
		t.Errorf("rm answered no removed something (%d left):\n%s", len(c.containers()), out)
	}
	out, code = c.run("", "rm", "-f")
	if code != 0 || strings.Count(out, "Removed") != 2 || !strings.Contains(out, "Going to remove project-") {
		t.Errorf("rm -f: %d\n%s", code, out)
	}
	// run -d: in the background, owned by the project's supervisor.
	out, code = c.run("", "run", "-d", "app", "sleep", "1000")
	if code != 0 || !regexp.MustCompile(`^project-app-run-[0-9a-f]+\n$`).MatchString(out) {
		t.Errorf("run -d: %d %q", code, out)
	}
	if e := c.ps()[strings.TrimSpace(out)]; e.State != "running" {
		t.Errorf("run -d container: %+v", e)
	}
	// -i, the default, keeps its stdin open: cat waits.
	out = c.must("run", "-d", "app", "cat")
	time.Sleep(500 * time.Millisecond)
	if e := c.ps()[strings.TrimSpace(out)]; e.State != "running" {
		t.Errorf("run -d app cat: %+v", e)
	}
	// -s stops it first, as docker compose says.
	if out, code := c.run("", "rm", "-f", "-s"); code != 0 ||
		!regexp.MustCompile(`(?s)Container project-app-run-[0-9a-f]+  Stopping.*Stopped.*Going to remove.*Removing.*Removed`).MatchString(out) {
		t.Errorf("rm -f -s: %d\n%s", code, out)
	}
	if out, code := c.run("", "rm", "-f"); code != 0 || !strings.Contains(out, "No stopped containers") {
		t.Errorf("rm -f with nothing to remove: %d\n%s", code, out)
	}
	if left := c.containers(); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
	if after := c.hostState(); after != before {
		t.Errorf("host changed:\n%s\n---\n%s", before, after)
	}
}

// TestRunDetachedRm: run -d --rm hands the container to the supervisor,
// which removes it and its anonymous volume once it exits, though the
// service says restart: always (a one-off container never restarts);
// also one that cannot start, and one that exited while no supervisor
// ran.
func TestRunDetachedRm(t *testing.T) {
	c := newCLI(t, `
services:
  app:
    image: busybox
    restart: always
    volumes: ["/data"]
`)
	before := c.hostState()
	gone := func(name string) func() bool {
		return func() bool { _, ok := c.ps("-a")[name]; return !ok && len(c.volumes("volume", "ls")) == 0 }
	}
	out := c.must("run", "-d", "--rm", "app", "sh", "-c", "echo x > /data/x; sleep 0.5")
	name := strings.TrimSpace(out)
	if !regexp.MustCompile(`^project-app-run-[0-9a-f]+$`).MatchString(name) {
		t.Fatalf("run -d --rm printed %q", out)
	}
	if len(c.volumes("volume", "ls")) != 1 {
		t.Errorf("no anonymous volume while it runs")
	}
	eventually(t, 10*time.Second, "the container and its volume removed after its exit", gone(name))

	// One that cannot start goes too.
	if _, code := c.run("", "run", "-d", "--rm", "--name", "nostart", "app", "/no/such/command"); code == 0 {
		t.Errorf("run -d --rm of a missing command succeeded")
	}
	eventually(t, 10*time.Second, "the container that could not start removed", gone("nostart"))

	// One that exits while no supervisor runs: the next one removes it.
	c.must("run", "-d", "--rm", "--name", "orphan", "app", "sleep", "1000")
	c.killSupervisor()
	syscall.Kill(containerPid(t, c, "orphan"), syscall.SIGKILL)
	time.Sleep(300 * time.Millisecond)
	c.must("ps", "-a") // the next command brings a supervisor
	eventually(t, 10*time.Second, "the orphan removed by the next supervisor", gone("orphan"))

	c.must("down")
	c.checkClean(before)
}

// TestHostNamespaces: uts and ipc host put a container in the host's
// namespaces (and the host's /dev/shm), ipc none gives it no /dev/shm,
// and the security options that loosen what berth applies are honoured.
// A hostname with uts host is refused before anything is made.
func TestHostNamespaces(t *testing.T) {
	c := newCLI(t, `
services:
  shared:
    image: busybox
    command: ["sleep", "1000"]
    init: true
    uts: host
    ipc: host
    cgroup: host
    security_opt: ["seccomp:unconfined", "systempaths=unconfined", "writable-cgroups=true"]
  isolated:
    image: busybox
    command: ["sleep", "1000"]
    init: true
    ipc: none
`)
	before := c.hostState()
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, kind := range []string{"uts", "ipc", "cgroup"} {
		l, err := os.Readlink("/proc/self/ns/" + kind)
		if err != nil {
			t.Fatal(err)
		}
		ns = append(ns, l)
	}
	shm, err := os.CreateTemp("/dev/shm", "berth-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	shm.Close()
	t.Cleanup(func() { os.Remove(shm.Name()) })

	c.must("up", "-d", "--wait")
	out := c.must("exec", "-T", "shared", "sh", "-c",
		`hostname; readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc; readlink /proc/self/ns/cgroup; ls /dev/shm; `+
			`echo timer_list $(wc -c < /proc/timer_list); grep -E ' /sys/fs/cgroup[ /]' /proc/mounts | grep -cv ' ro,'; `+
			`echo cgroup paths $(grep -c ':/$' /proc/self/cgroup)`)
	for _, want := range []string{
		`(?m)^` + regexp.QuoteMeta(hostname) + `$`, regexp.QuoteMeta(ns[0]), regexp.QuoteMeta(ns[1]), regexp.QuoteMeta(ns[2]), `(?m)^cgroup paths 0$`,
		`(?m)^` + regexp.QuoteMeta(filepath.Base(shm.Name())) + `$`, `(?m)^timer_list [1-9][0-9]*$`, `(?m)^[1-9][0-9]*$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("shared: output does not match %q:\n%s", want, out)
		}
	}
	out = c.must("exec", "-T", "isolated", "sh", "-c", `hostname; readlink /proc/self/ns/ipc; readlink /proc/self/ns/cgroup; grep -c ' /dev/shm ' /proc/mounts; wc -c < /proc/timer_list; grep -vc ':/$' /proc/self/cgroup; true`)
	if strings.Contains(out, ns[1]) || strings.Contains(out, ns[2]) || strings.Contains(out, hostname+"\n") || !regexp.MustCompile(`(?m)^0\n0\n0$`).MatchString(out) {
		t.Errorf("isolated: want a hostname, IPC and cgroup namespaces of its own, no /dev/shm, /proc/timer_list masked and its cgroup as /:\n%s", out)
	}
	c.must("down")
	c.checkClean(before)

	c.writeCompose(`
services:
  shared:
    image: busybox
    uts: host
    hostname: web
`)
	out, code := c.run("", "up", "-d")
	if code == 0 || !strings.Contains(out, `service "shared": hostname: "web" conflicts with uts: host`) {
		t.Errorf("uts host with a hostname: exit %d\n%s", code, out)
	}
	c.checkClean(before)
}
