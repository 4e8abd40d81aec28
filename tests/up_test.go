package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
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

	"github.com/berth-dev/berth/network/netspec"
	"github.com/berth-dev/berth/tests/hoststate"
)

// psEntry is what the tests read of `ps --format json`.
type psEntry struct {
	ID, Name, Service, State, Status, Health string
	ExitCode                                 int
}

// ps runs `ps -a --format json` and returns the containers by name.
func (c *cli) ps(args ...string) map[string]psEntry {
	c.t.Helper()
	out, code := c.run("", append([]string{"ps", "-a", "--no-trunc", "--format", "json"}, args...)...)
	if code != 0 {
		c.t.Fatalf("ps: %d\n%s", code, out)
	}
	m := map[string]psEntry{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e psEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			c.t.Fatalf("ps line %q: %v", sc.Text(), err)
		}
		m[e.Name] = e
	}
	return m
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// compose is the project file as last written.
func (c *cli) compose() string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "compose.yaml"))
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

func (c *cli) writeCompose(yaml string) {
	c.t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// must runs berth and fails the test on a non-zero exit.
func (c *cli) must(args ...string) string {
	c.t.Helper()
	out, code := c.run("", args...)
	if code != 0 {
		c.t.Fatalf("berth %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// stdout runs berth, fails the test on a non-zero exit, and returns its
// standard output alone: what a script reads, without the warnings that
// go to standard error.
func (c *cli) stdout(args ...string) string {
	c.t.Helper()
	cmd, _, stop := c.command(args...)
	defer stop()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("berth %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// checkClean checks that nothing of c's is left on the host: containers,
// mounts, cgroups, the supervisor and its socket.
func (c *cli) checkClean(before string) {
	c.t.Helper()
	if left := c.containers(); len(left) != 0 {
		c.t.Errorf("containers left: %v", left)
	}
	if pids := c.waitSupervisorGone(5 * time.Second); len(pids) > 0 {
		c.t.Errorf("supervisor still running: %v", pids)
	}
	if socks, _ := filepath.Glob(filepath.Join(c.runDir, "projects", "*", "supervisor.sock")); len(socks) > 0 {
		c.t.Errorf("sockets left: %v", socks)
	}
	if after := c.hostState(); after != before {
		c.t.Errorf("host changed:\n%s\n---\n%s", before, after)
	}
}

const demoProject = `
name: demo
services:
  db:
    image: busybox
    init: true
    command: ["sh", "-c", "echo db starting; sleep 1; touch /tmp/ready; echo db ready; trap 'echo db bye; exit 0' TERM; while :; do sleep 0.1; done"]
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ready"]
      interval: 200ms
      retries: 30
  migrate:
    image: busybox
    command: ["sh", "-c", "echo migrating; sleep 0.2; echo migrated"]
    depends_on:
      db:
        condition: service_healthy
  web:
    image: busybox
    init: true
    command: ["sh", "-c", "echo web up; while :; do sleep 0.1; done"]
    restart: always
    depends_on:
      migrate:
        condition: service_completed_successfully
`

// TestUpDown: up -d brings a project up in dependency order, health-gated
// and after a one-shot job; the commands around it behave as docker
// compose's; down leaves nothing.
func TestUpDown(t *testing.T) {
	c := newCLI(t, demoProject)
	before := c.hostState()
	start := time.Now()
	out := c.must("up", "-d")
	took := time.Since(start)
	// The order: db healthy before migrate starts, migrate done before web.
	order := []string{"Container demo-db-1  Started", "Container demo-db-1  Healthy", "Container demo-migrate-1  Started",
		"Container demo-migrate-1  Exited", "Container demo-web-1  Started"}
	last := -1
	for _, o := range order {
		i := strings.Index(out, o)
		if i < last {
			t.Errorf("%q is not after the previous step:\n%s", o, out)
		}
		last = i
	}
	if took < time.Second {
		t.Errorf("up -d took %v: it did not wait for db's health check (1 s)", took)
	}
	ps := c.ps()
	if db := ps["demo-db-1"]; db.State != "running" || db.Health != "healthy" || !strings.HasSuffix(db.Status, "(healthy)") {
		t.Errorf("db: %+v", db)
	}
	if m := ps["demo-migrate-1"]; m.State != "exited" || m.ExitCode != 0 {
		t.Errorf("migrate: %+v", m)
	}
	if w := ps["demo-web-1"]; w.State != "running" {
		t.Errorf("web: %+v", w)
	}
	if out := c.must("ps"); strings.Contains(out, "migrate") || !strings.Contains(out, "demo-web-1") {
		t.Errorf("ps without -a lists stopped containers or misses running ones:\n%s", out)
	}
	if out := c.must("ps", "--services"); out != "db\nweb\n" {
		t.Errorf("ps --services: %q", out)
	}
	if out := c.must("ps", "--status", "exited", "-q"); strings.TrimSpace(out) != ps["demo-migrate-1"].ID {
		t.Errorf("ps --status exited -q: %q", out)
	}
	if out := c.must("ps", "--filter", "status=running", "--format", "json"); strings.Count(out, "\n") != 2 {
		t.Errorf("ps --filter status=running: %q", out)
	}

	// Unchanged: nothing is recreated.
	out = c.must("up", "-d")
	if strings.Contains(out, "Recreate") || strings.Contains(out, "Creating") || !strings.Contains(out, "Container demo-web-1  Running") {
		t.Errorf("up -d on an unchanged project:\n%s", out)
	}
	if got := c.ps()["demo-db-1"].ID; got != ps["demo-db-1"].ID {
		t.Error("db changed")
	}

	// logs, with and without prefixes, tail, one service.
	out = c.must("logs", "--no-color", "db")
	if !regexp.MustCompile(`(?m)^db-1\s+\| db starting$`).MatchString(out) || !strings.Contains(out, "db ready") || strings.Contains(out, "web up") {
		t.Errorf("logs db:\n%s", out)
	}
	if out := c.must("logs", "--no-log-prefix", "--tail=-1", "db"); !strings.HasSuffix(out, "db ready\n") {
		t.Errorf("logs --tail=-1 (all): %q", out)
	}
	if out := c.must("logs", "--no-log-prefix", "--tail", "1", "db"); out != "db ready\n" {
		t.Errorf("logs --no-log-prefix --tail 1 db: %q", out)
	}
	if out := c.must("logs", "-t", "--no-log-prefix", "--tail", "1", "web"); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+ web up\n$`).MatchString(out) {
		t.Errorf("logs -t: %q", out)
	}
	// logs -f ends when the container stops for good.
	follow, _, stop := c.command("logs", "-f", "--no-log-prefix", "migrate")
	defer stop()
	if b, err := follow.Output(); err != nil || !strings.Contains(string(b), "migrated") {
		t.Errorf("logs -f migrate: %v %q", err, b)
	}

	// exec: the command's output and exit code, -e, -w, -u, --index.
	if out, code := c.run("", "exec", "-T", "db", "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("exec: %d %q", code, out)
	}
	if out := c.must("exec", "-T", "-e", "X=1", "-w", "/tmp", "-u", "65534", "--index", "1", "db", "sh", "-c", "echo $X in $(pwd) as $(id -u)"); out != "1 in /tmp as 65534\n" {
		t.Errorf("exec with flags: %q", out)
	}
	// -e KEY alone: berth's environment's value, or nothing when unset.
	if out := c.must("exec", "-T", "-e", "BERTH_CGROUP_PARENT", "-e", "BERTH_TEST_UNSET", "db", "sh", "-c", "echo $BERTH_CGROUP_PARENT ${BERTH_TEST_UNSET-unset}"); out != "/"+c.cgroup+" unset\n" {
		t.Errorf("exec -e KEY: %q", out)
	}
	// A command that cannot start: docker exec's 126, and why.
	if out, code := c.run("", "exec", "-T", "db", "no-such-command"); code != 126 || !strings.Contains(out, `exec: "no-such-command": executable file not found`) {
		t.Errorf("exec of a missing command: %d %q", code, out)
	}
	if out, code := c.run("", "exec", "-T", "migrate", "true"); code == 0 || !strings.Contains(out, "not running") {
		t.Errorf("exec in a stopped service: %d %q", code, out)
	}
	if out := c.must("exec", "-T", "db", "sh", "-c", "echo piped; cat"); out != "piped\n" {
		t.Errorf("exec with empty stdin: %q", out)
	}
	if out, _ := c.run("hello\n", "exec", "-T", "db", "cat"); out != "hello\n" {
		t.Errorf("exec stdin: %q", out)
	}
	if out := c.must("top", "db"); !strings.Contains(out, "demo-db-1") || !strings.Contains(out, "PID") || !strings.Contains(out, "sleep") || !regexp.MustCompile(`(?m)^root +[0-9]+ +[0-9]+ `).MatchString(out) {
		t.Errorf("top:\n%s", out)
	}
	if out := c.must("ls", "--format", "json"); !strings.Contains(out, `"Name":"demo"`) || !strings.Contains(out, "running(2)") {
		t.Errorf("ls: %s", out)
	}
	if out := c.must("ls", "-q", "--filter", "name=^de"); out != "demo\n" {
		t.Errorf("ls --filter name=^de: %q", out)
	}
	if out := c.must("ls", "-q", "--filter", "name=nosuch"); out != "" {
		t.Errorf("ls --filter name=nosuch: %q", out)
	}
	if out := c.must("stats", "--no-stream"); !strings.Contains(out, "demo-db-1") || !regexp.MustCompile(`MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS`).MatchString(out) {
		t.Errorf("stats:\n%s", out)
	}
	// NET I/O counts the container's interfaces: a DNS query is some.
	c.run("", "exec", "-T", "db", "nslookup", "db")
	var st struct{ Name, NetIO, BlockIO string }
	if out := c.must("stats", "--no-stream", "--format", "json", "db"); json.Unmarshal([]byte(out), &st) != nil || st.Name != "demo-db-1" || st.NetIO == "0B / 0B" || !strings.Contains(st.BlockIO, " / ") {
		t.Errorf("stats --format json: %+v from %s", st, out)
	}

	// stop stops (db last, after its dependant), with its stop signal;
	// restart: always does not bring a stopped container back.
	out = c.must("stop")
	if strings.Index(out, "demo-db-1  Stopping") < strings.Index(out, "demo-web-1  Stopped") {
		t.Errorf("stop order:\n%s", out)
	}
	time.Sleep(500 * time.Millisecond)
	for name, e := range c.ps() {
		if e.State != "exited" {
			t.Errorf("%s after stop: %+v", name, e)
		}
	}
	if !strings.Contains(c.must("logs", "db"), "db bye") {
		t.Error("db did not get its stop signal")
	}
	c.must("start", "db")
	if e := c.ps()["demo-db-1"]; e.State != "running" {
		t.Errorf("start db: %+v", e)
	}
	c.must("restart", "web")
	if e := c.ps()["demo-web-1"]; e.State != "running" {
		t.Errorf("restart web: %+v", e)
	}
	// events --json sees what follows: pause, unpause, kill, die.
	evCmd, _, evStop := c.command("events", "--json", "web")
	defer evStop()
	var evOut syncBuffer
	evCmd.Stdout, evCmd.Stderr = &evOut, &evOut
	if err := evCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if evCmd.ProcessState == nil {
			evCmd.Process.Kill()
			evCmd.Wait()
		}
	}()
	// Subscribed once a pause and unpause come through; what follows is
	// read after them.
	eventually(t, 10*time.Second, "events subscribed", func() bool {
		c.must("pause", "web")
		c.must("unpause", "web")
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(evOut.String(), `"action":"unpause"`)
	})
	// The probes' last line, once all of them are in.
	time.Sleep(500 * time.Millisecond)
	probed := strings.LastIndex(evOut.String(), `"action":"unpause"`)
	probed += strings.Index(evOut.String()[probed:], "\n") + 1
	c.must("pause", "web")
	if e := c.ps()["demo-web-1"]; e.State != "paused" {
		t.Errorf("pause: %+v", e)
	}
	if out, code := c.run("", "exec", "-T", "web", "true"); code == 0 || !strings.Contains(out, "container demo-web-1 is paused: unpause it (berth unpause web) before exec") {
		t.Errorf("exec in a paused container: exit %d\n%s", code, out)
	}
	c.must("unpause", "web")
	c.must("kill", "-s", "SIGKILL", "web")
	eventually(t, 5*time.Second, "web killed", func() bool { return c.ps()["demo-web-1"].State == "exited" })
	eventually(t, 5*time.Second, "the die event", func() bool { return strings.Contains(evOut.String(), `"action":"die"`) })
	evCmd.Process.Signal(os.Interrupt)
	evCmd.Wait()
	var actions []string
	for _, l := range strings.Split(strings.TrimSpace(evOut.String()[probed:]), "\n") {
		var e struct {
			Type, Action, ID, Service string
			Attributes                map[string]string
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Type != "container" || e.Service != "web" || e.Attributes["name"] != "demo-web-1" || len(e.ID) != 64 {
			t.Errorf("event %q: %v", l, err)
			continue
		}
		actions = append(actions, e.Action+" "+e.Attributes["signal"]+e.Attributes["exitCode"])
	}
	if want := []string{"pause ", "unpause ", "kill 9", "die 137"}; !slices.Equal(actions, want) {
		t.Errorf("events %q, want %q:\n%s", actions, want, evOut.String())
	}
	if e := c.ps()["demo-web-1"]; e.ExitCode != 137 {
		t.Errorf("kill: %+v", e)
	}

	// A changed service is recreated, the others kept.
	c.writeCompose(strings.Replace(demoProject, "echo web up", "echo web v2", 1))
	out = c.must("up", "-d", "--no-deps", "web")
	if !strings.Contains(out, "Container demo-web-1  Recreate") || strings.Contains(out, "demo-db-1") {
		t.Errorf("up after a change:\n%s", out)
	}
	eventually(t, 5*time.Second, "web v2 logs", func() bool { return strings.Contains(c.must("logs", "web"), "web v2") })
	if strings.Contains(c.must("logs", "web"), "web up") {
		t.Error("the recreated container kept the old log")
	}

	out = c.must("down")
	for _, want := range []string{"Container demo-web-1  Removed", "Container demo-db-1  Removed", "Container demo-migrate-1  Removed"} {
		if !strings.Contains(out, want) {
			t.Errorf("down lacks %q:\n%s", want, out)
		}
	}
	c.checkClean(before)
}

// TestUpDependencyFails: up stops with docker compose's message when a
// dependency becomes unhealthy or a job fails, and does not start what
// depends on it.
func TestUpDependencyFails(t *testing.T) {
	c := newCLI(t, `
name: fails
services:
  sick:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    healthcheck:
      test: ["CMD", "false"]
      interval: 100ms
      retries: 2
  app:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    depends_on:
      sick:
        condition: service_healthy
  job:
    image: busybox
    init: true
    command: ["sh", "-c", "exit 3"]
  after:
    image: busybox
    init: true
    command: ["true"]
    depends_on:
      job:
        condition: service_completed_successfully
`)
	before := c.hostState()
	out, code := c.run("", "up", "-d", "app")
	if code == 0 || !strings.Contains(out, "dependency failed to start: container fails-sick-1 is unhealthy") {
		t.Errorf("unhealthy dependency: %d\n%s", code, out)
	}
	if _, ok := c.ps()["fails-app-1"]; ok {
		t.Error("app was created")
	}
	out, code = c.run("", "up", "-d", "after")
	if code == 0 || !strings.Contains(out, `service "job" didn't complete successfully: exit 3`) {
		t.Errorf("failed job: %d\n%s", code, out)
	}
	if _, ok := c.ps()["fails-after-1"]; ok {
		t.Error("after was created")
	}
	// up --wait says why: the state, the last probe's output, the last
	// log lines.
	c.writeCompose(`
name: fails
services:
  sick:
    image: busybox
    init: true
    command: ["sh", "-c", "echo starting up; echo still trying; sleep 1000"]
    healthcheck:
      test: ["CMD-SHELL", "echo no database here; exit 1"]
      interval: 100ms
      retries: 2
`)
	out, code = c.run("", "up", "-d", "--wait", "--wait-timeout", "20")
	for _, want := range []string{"container fails-sick-1 is unhealthy", "last health check output:\n  no database here", "last log lines:\n  starting up\n  still trying"} {
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("up --wait on an unhealthy service lacks %q: %d\n%s", want, code, out)
		}
	}
	c.must("down", "--remove-orphans")
	c.checkClean(before)
}

// TestUpAttached: without -d, up prints every container's output with its
// prefix; Ctrl-C stops the project gracefully, its last lines shown, and
// berth exits 130.
func TestUpAttached(t *testing.T) {
	c := newCLI(t, demoProject)
	before := c.hostState()
	// The test changes the file's project: the others go by their names
	// also when the test fails midway (newCLI's cleanup takes the file's).
	t.Cleanup(func() {
		for _, name := range []string{"demo", "abort", "attachdeps"} {
			c.run("", "-p", name, "down", "-t", "0")
		}
	})
	cmd, out := c.background("up", "--no-color")
	eventually(t, 20*time.Second, "web's output", func() bool { return strings.Contains(out.String(), "web up") })
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code %d (%v), want 130", code, err)
	}
	got := out.String()
	for _, want := range []string{"Attaching to db-1, migrate-1, web-1", "db-1      | db ready",
		"migrate-1 exited with code 0", "Gracefully stopping...", "db-1      | db bye", "Container demo-db-1  Stopped"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for name, e := range c.ps() {
		if e.State != "exited" {
			t.Errorf("%s after Ctrl-C: %+v", name, e)
		}
	}
	// --abort-on-container-exit: the first exit stops the rest; its code
	// is up's, or --exit-code-from's service's.
	c.writeCompose(`
name: abort
services:
  a:
    image: busybox
    command: ["sh", "-c", "sleep 0.5; exit 4"]
  b:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
`)
	if out, code := c.run("", "up", "--abort-on-container-exit"); code != 4 || !strings.Contains(out, "Aborting on container exit...") {
		t.Errorf("--abort-on-container-exit: %d\n%s", code, out)
	}
	if out, code := c.run("", "up", "--exit-code-from", "b"); code != 0 {
		t.Errorf("--exit-code-from b: %d\n%s", code, out)
	}
	c.must("down", "-t", "0")
	// The first exit gives the code, not those of the containers the
	// abort stops: the CI pattern of a test service beside a server that
	// dies of SIGKILL (137).
	c.writeCompose(`
name: abort
services:
  server:
    image: busybox
    command: ["sleep", "1000"]
    stop_grace_period: 200ms
  tests:
    image: busybox
    command: ["sh", "-c", "sleep 0.5; echo tests passed"]
    depends_on: [server]
`)
	if out, code := c.run("", "up", "--abort-on-container-exit"); code != 0 || !strings.Contains(out, "server-1 exited with code 137") {
		t.Errorf("--abort-on-container-exit, tests passing: %d\n%s", code, out)
	}
	c.must("down", "-t", "0")
	c.writeCompose(strings.Replace(c.compose(), "echo tests passed", "echo tests failed; exit 3", 1))
	if out, code := c.run("", "up", "--abort-on-container-failure"); code != 3 || !strings.Contains(out, "server-1 exited with code 137") {
		t.Errorf("--abort-on-container-failure, tests failing: %d\n%s", code, out)
	}
	c.must("down", "-t", "0")
	if out, code := c.run("", "up", "--exit-code-from", "nosuch"); code != 1 || !strings.Contains(out, "no such service: nosuch") || len(c.ps()) != 0 {
		t.Errorf("--exit-code-from nosuch: %d (%d containers)\n%s", code, len(c.ps()), out)
	}
	// up SERVICE --attach-dependencies shows the dependencies' output
	// too, and ends when the service's containers do; the dependencies
	// run on. Another up shows only what its own run writes.
	c.writeCompose(`
name: attachdeps
services:
  foo:
    image: busybox
    command: ["sh", "-c", "echo foo run $$(cat /proc/sys/kernel/random/uuid)"]
    depends_on: [bar]
  bar:
    image: busybox
    init: true
    command: ["sh", "-c", "echo bar up; exec sleep 1000"]
    scale: 2
`)
	attached, code := c.run("", "up", "--no-color", "--attach-dependencies", "foo")
	if code != 0 || !strings.Contains(attached, "Attaching to bar-1, bar-2, foo-1") || strings.Count(attached, "| bar up") != 2 || !strings.Contains(attached, "foo-1 exited with code 0") {
		t.Errorf("up --attach-dependencies foo: %d\n%s", code, attached)
	}
	if ps := c.ps(); ps["attachdeps-bar-1"].State != "running" || ps["attachdeps-bar-2"].State != "running" {
		t.Errorf("after up --attach-dependencies foo: %v", ps)
	}
	attached, code = c.run("", "up", "--no-color", "foo")
	if code != 0 || strings.Count(attached, "foo run") != 1 || strings.Contains(attached, "bar up") {
		t.Errorf("up foo again shows more than its run: %d\n%s", code, attached)
	}
	// The exit line comes after the container's last line, however much
	// it wrote just before.
	c.writeCompose(c.compose() + `  many:
    image: busybox
    command: ["seq", "1", "50000"]
`)
	attached, code = c.run("", "up", "--no-color", "--abort-on-container-exit", "many")
	if last, exit := strings.LastIndex(attached, "| 50000\n"), strings.Index(attached, "many-1 exited with code 0"); code != 0 || last < 0 || exit < last {
		t.Errorf("up of a container writing 50000 lines: %d; its last line at %d, its exit at %d", code, last, exit)
	}
	// A container's stderr goes to up's stderr, as docker compose has it;
	// logs writes both to stdout.
	c.writeCompose(c.compose() + `  streams:
    image: busybox
    command: ["sh", "-c", "echo to stdout; echo to stderr >&2"]
`)
	if out := c.stdout("up", "--no-color", "streams"); !strings.Contains(out, "streams-1 | to stdout") || strings.Contains(out, "to stderr") {
		t.Errorf("up's stdout:\n%s", out)
	}
	if out := c.stdout("logs", "--no-color", "streams"); !strings.Contains(out, "to stdout") || !strings.Contains(out, "to stderr") {
		t.Errorf("logs' stdout:\n%s", out)
	}
	c.must("down", "-t", "0")
	c.writeCompose(demoProject)
	c.must("down")
	c.checkClean(before)
}

// background starts berth with args, its output in a buffer, and kills it
// when the test ends: a command still running then (an up, a logs -f)
// would hold the project against the cleanup.
func (c *cli) background(args ...string) (*exec.Cmd, *syncBuffer) {
	c.t.Helper()
	cmd, _, stop := c.command(args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		stop()
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		cmd.Process.Kill()
		stop()
	})
	return cmd, out
}

// killSupervisor kills the project's supervisor (the only one) with
// SIGKILL and waits until it is gone.
func (c *cli) killSupervisor() {
	c.t.Helper()
	pids := c.supervisors()
	if len(pids) != 1 {
		c.t.Fatalf("supervisors: %v", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	c.waitSupervisorGone(5 * time.Second)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSupervisorKilled: kill -9 of the supervisor leaves the containers
// running; the next command's supervisor adopts them without starting
// them twice, records the exit it missed as 255, restarts what restart:
// always asks for, and keeps health-checking.
func TestSupervisorKilled(t *testing.T) {
	c := newCLI(t, `
name: adopt
services:
  steady:
    image: busybox
    command: ["sh", "-c", "touch /tmp/ok; while :; do sleep 0.1; done"]
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ok"]
      interval: 200ms
  flaky:
    image: busybox
    command: ["sh", "-c", "while :; do sleep 0.1; done"]
    restart: always
  once:
    image: busybox
    command: ["sh", "-c", "while :; do sleep 0.1; done"]
`)
	before := c.hostState()
	c.must("up", "-d", "--wait")
	ps := c.ps()
	if ps["adopt-steady-1"].Health != "healthy" {
		t.Fatalf("steady: %+v", ps["adopt-steady-1"])
	}
	pids := c.supervisors()
	if len(pids) != 1 {
		for _, p := range pids {
			cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
			st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
			t.Logf("%d: %q %s", p, cl, st)
		}
		t.Fatalf("supervisors: %v", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	c.waitSupervisorGone(5 * time.Second)
	steadyPid := containerPid(t, c, "adopt-steady-1")
	// While no supervisor watches: flaky and once die.
	syscall.Kill(containerPid(t, c, "adopt-flaky-1"), syscall.SIGKILL)
	syscall.Kill(containerPid(t, c, "adopt-once-1"), syscall.SIGKILL)
	time.Sleep(300 * time.Millisecond)

	c.must("ps") // the next command brings a supervisor
	eventually(t, 5*time.Second, "flaky restarted, once recorded as 255", func() bool {
		ps := c.ps()
		return ps["adopt-flaky-1"].State == "running" && ps["adopt-once-1"].State == "exited" && ps["adopt-once-1"].ExitCode == 255
	})
	if got := containerPid(t, c, "adopt-steady-1"); got != steadyPid {
		t.Errorf("steady's process changed (%d -> %d): started twice", steadyPid, got)
	}
	if h := c.ps()["adopt-steady-1"].Health; h != "healthy" {
		t.Errorf("steady's health after adoption: %q", h)
	}
	// An adopted container is not the new supervisor's child, so its exit
	// status is not the kernel's to tell; but one that berth killed died
	// of SIGKILL: 137, not 255.
	c.must("kill", "steady")
	eventually(t, 5*time.Second, "steady killed", func() bool { return c.ps()["adopt-steady-1"].State == "exited" })
	if e := c.ps()["adopt-steady-1"]; e.ExitCode != 137 {
		t.Errorf("adopted steady killed: %+v", e)
	}
	c.must("down", "-t", "0")
	c.checkClean(before)
}

// TestSupervisorKilledAttached: kill -9 of the supervisor under an
// attached up, then a container with a restart policy exits while none
// runs: Ctrl-C still stops everything and ends up (the exited container
// was not seen running, and the next supervisor's restart policy started
// it again), and nothing restarts afterwards.
func TestSupervisorKilledAttached(t *testing.T) {
	c := newCLI(t, `
name: killattached
services:
  ticker:
    image: busybox
    init: true
    command: ["sh", "-c", "while :; do echo tick; sleep 0.2; done"]
  crasher:
    image: busybox
    command: ["sh", "-c", "echo crasher up; sleep 1; exit 2"]
    restart: unless-stopped
`)
	before := c.hostState()
	cmd, out := c.background("up", "--no-color")
	eventually(t, 20*time.Second, "crasher's output", func() bool { return strings.Contains(out.String(), "crasher up") })
	c.killSupervisor()
	time.Sleep(1500 * time.Millisecond) // crasher exits meanwhile
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("up did not end after Ctrl-C:\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code %d, want 130:\n%s", code, out.String())
	}
	time.Sleep(2 * time.Second) // what a restart policy would take
	for name, e := range c.ps("-a") {
		if e.State != "exited" {
			t.Errorf("%s after Ctrl-C: %+v", name, e)
		}
	}
	c.must("down", "-t", "0")
	c.checkClean(before)
}

// TestSupervisorKilledDuringUp: kill -9 of the supervisor while up waits
// for a health check that gates a dependant: up brings another, which
// adopts the dependency and runs its health check, and up completes.
func TestSupervisorKilledDuringUp(t *testing.T) {
	c := newCLI(t, `
name: killedup
services:
  db:
    image: busybox
    command: ["sh", "-c", "sleep 3; touch /tmp/ready; exec sleep 1000"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 200ms
      retries: 100
  web:
    image: busybox
    command: ["sleep", "1000"]
    depends_on:
      db: {condition: service_healthy}
`)
	before := c.hostState()
	cmd, _, stop := c.command("up", "-d")
	defer stop()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// An up still running when the test fails would hold the project's
	// lock against the cleanup's down.
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	eventually(t, 10*time.Second, "up waiting for db", func() bool { return strings.Contains(out.String(), "killedup-db-1  Waiting") })
	pids := c.supervisors()
	if len(pids) != 1 {
		t.Fatalf("supervisors: %v", pids)
	}
	dbPid := containerPid(t, c, "killedup-db-1")
	syscall.Kill(pids[0], syscall.SIGKILL)
	t0 := time.Now()
	err := cmd.Wait()
	if err != nil || time.Since(t0) > 20*time.Second {
		t.Fatalf("up after the supervisor was killed: %v after %v\n%s", err, time.Since(t0), out.String())
	}
	ps := c.ps()
	if ps["killedup-db-1"].Health != "healthy" || ps["killedup-web-1"].State != "running" {
		t.Errorf("db %+v, web %+v\n%s", ps["killedup-db-1"], ps["killedup-web-1"], out.String())
	}
	if got := containerPid(t, c, "killedup-db-1"); got != dbPid {
		t.Errorf("db's process changed (%d -> %d): started twice", dbPid, got)
	}
	if now := c.supervisors(); len(now) != 1 || now[0] == pids[0] {
		t.Errorf("supervisors after: %v (killed %d)", now, pids[0])
	}
	c.must("down", "-t", "0")
	c.checkClean(before)
}

// TestSupervisorKilledRunDetached: a `run -d` container is the
// supervisor's too: after kill -9 of the supervisor, an exit it missed is
// recorded (255) by the one the next command brings, even when the
// project has no other container to watch.
func TestSupervisorKilledRunDetached(t *testing.T) {
	c := newCLI(t, `
name: adoptrun
services:
  job:
    image: busybox
    command: ["sh", "-c", "while :; do sleep 0.1; done"]
`)
	before := c.hostState()
	c.must("run", "-d", "--name", "adoptrun-job", "job")
	c.killSupervisor()
	syscall.Kill(containerPid(t, c, "adoptrun-job"), syscall.SIGKILL)
	time.Sleep(300 * time.Millisecond)
	c.must("ps", "-a") // the next command brings a supervisor
	eventually(t, 5*time.Second, "the missed exit recorded as 255", func() bool {
		e := c.ps()["adoptrun-job"]
		return e.State == "exited" && e.ExitCode == 255
	})
	c.must("down", "-t", "0")
	c.checkClean(before)
}

// TestSupervisorTerminated: SIGTERM to the supervisor while a container
// writes as fast as it can: the container runs on, and its log loses no
// line across the handover to the supervisor the next command brings.
func TestSupervisorTerminated(t *testing.T) {
	const lines = 60000 // ~660 KB: the FIFO holds it all while no one reads
	c := newCLI(t, fmt.Sprintf(`
name: handover
services:
  chatty:
    image: busybox
    command: ["sh", "-c", "i=0; while [ $$i -lt %d ]; do echo line $$i; i=$$((i+1)); done; exec sleep 1000"]
`, lines))
	before := c.hostState()
	c.must("up", "-d")
	pids := c.supervisors()
	if len(pids) != 1 {
		t.Fatalf("supervisors: %v", pids)
	}
	pid := containerPid(t, c, "handover-chatty-1")
	syscall.Kill(pids[0], syscall.SIGTERM)
	c.waitSupervisorGone(10 * time.Second)
	c.must("ps") // the next command brings a supervisor
	if got := containerPid(t, c, "handover-chatty-1"); got != pid || c.ps()["handover-chatty-1"].State != "running" {
		t.Fatalf("the container did not run on: pid %d, then %d", pid, got)
	}
	last := fmt.Sprintf("line %d", lines-1)
	var out string
	eventually(t, 30*time.Second, "the last line logged", func() bool {
		out = c.must("logs", "--no-log-prefix", "chatty")
		return strings.HasSuffix(out, last+"\n")
	})
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for i, l := range got {
		if want := fmt.Sprintf("line %d", i); l != want {
			t.Fatalf("log line %d is %q, want %q: output lost in the handover", i, l, want)
		}
	}
	if len(got) != lines {
		t.Errorf("%d lines logged, want %d", len(got), lines)
	}
	c.must("down", "-t", "0")
	c.checkClean(before)
}

// containerPid is the host pid of a running container's main process.
func containerPid(t *testing.T, c *cli, name string) int {
	t.Helper()
	id := c.ps()[name].ID
	b, err := os.ReadFile(filepath.Join(c.root, "containers", id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Pid int }
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Pid
}

// TestSupervisorHugePages: the supervisor runs from berth's copy of its
// binary on a tmpfs in 2 MiB pages (BERTH_RUN/exe, internal/hugeexe), its
// code mapped in such pages, and holds the copy while it lives; a copy no
// supervisor holds goes at the next start; with BERTH_HUGEPAGES=0 the
// supervisor runs from the binary itself.
func TestSupervisorHugePages(t *testing.T) {
	c, before, exeDir := newSleeperCLI(t, "hugeexe")
	held := func(path string) bool {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil
	}

	c.must("up", "-d")
	if st := c.ps()["hugeexe-app-1"].State; st != "running" {
		t.Fatalf("app: %s", st)
	}
	exe, pid := c.supervisorExe()
	if filepath.Dir(exe) != exeDir {
		t.Fatalf("the supervisor runs %s, want a copy in %s", exe, exeDir)
	}
	rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	var pmd int
	for _, l := range strings.Split(string(rollup), "\n") {
		if v, ok := strings.CutPrefix(l, "ShmemPmdMapped:"); ok {
			pmd, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	if pmd < 2048 {
		t.Errorf("the supervisor has %d kB of its copy mapped in 2 MiB pages, want 2048 at least:\n%s", pmd, rollup)
	}
	if !held(exe) {
		t.Errorf("the supervisor does not hold its copy %s", exe)
	}
	c.must("down")
	if pids := c.waitSupervisorGone(5 * time.Second); len(pids) > 0 {
		t.Fatalf("supervisors left: %v", pids)
	}
	if held(exe) {
		t.Errorf("%s is held with no supervisor running", exe)
	}

	// An older binary's copy, which no supervisor runs.
	stale := filepath.Join(exeDir, "berth-old")
	if err := os.WriteFile(stale, []byte("an older berth"), 0o500); err != nil {
		t.Fatal(err)
	}
	environ := c.environ
	c.environ = append(slices.Clip(environ), "BERTH_HUGEPAGES=0")
	c.must("up", "-d")
	c.environ = environ
	if own, _ := c.supervisorExe(); own != c.bin {
		t.Errorf("with BERTH_HUGEPAGES=0 the supervisor runs %s, want %s", own, c.bin)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Errorf("with BERTH_HUGEPAGES=0, the copies were touched: %v", err)
	}
	c.must("down")
	c.waitSupervisorGone(5 * time.Second)

	c.must("up", "-d")
	if again, _ := c.supervisorExe(); again != exe {
		t.Errorf("the second supervisor runs %s, want %s again", again, exe)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("%s, which no supervisor holds, is left", stale)
	}
	c.must("down")
	c.checkClean(before)
}

// newSleeperCLI is a project of one service that sleeps, with the host's
// state before it and where berth keeps its copy of its binary.
func newSleeperCLI(t *testing.T, name string) (c *cli, before, exeDir string) {
	t.Helper()
	c = newCLI(t, "name: "+name+`
services:
  app:
    image: busybox
    init: true
    command: ["sleep", "1000"]
`)
	return c, c.hostState(), hoststate.Exe(c.runDir)
}

// supervisorExe is the binary the project's one supervisor runs, and its
// pid.
func (c *cli) supervisorExe() (exe string, pid int) {
	c.t.Helper()
	pids := c.supervisors()
	if len(pids) != 1 {
		c.t.Fatalf("supervisors: %v", pids)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pids[0]))
	if err != nil {
		c.t.Fatal(err)
	}
	return exe, pids[0]
}

// TestSupervisorHugePagesFull: when the copy of the binary cannot be made
// (here a tmpfs too small for it already on BERTH_RUN/exe), the
// supervisor runs from the binary itself, the project comes up all the
// same, and the supervisor's log says why.
func TestSupervisorHugePagesFull(t *testing.T) {
	c, before, exeDir := newSleeperCLI(t, "hugefull")
	if err := os.MkdirAll(exeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("berth-exe", exeDir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	c.must("up", "-d")
	if st := c.ps()["hugefull-app-1"].State; st != "running" {
		t.Errorf("app: %s", st)
	}
	if exe, _ := c.supervisorExe(); exe != c.bin {
		t.Errorf("the supervisor runs %s, want %s", exe, c.bin)
	}
	log, err := os.ReadFile(filepath.Join(c.runDir, "projects", "hugefull", "supervisor.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "the supervisor runs from the binary itself") || !strings.Contains(string(log), "no space left") {
		t.Errorf("the supervisor's log does not say why it runs from the binary itself:\n%s", log)
	}
	if entries, _ := os.ReadDir(exeDir); len(entries) != 0 {
		t.Errorf("left in %s: %v", exeDir, entries)
	}
	c.must("down")
	c.checkClean(before)
}

// TestCrashLoop: on-failure:3 restarts a crashing container three times
// with Docker's back-off (100, 200, 400 ms) and then leaves it exited.
func TestCrashLoop(t *testing.T) {
	c := newCLI(t, `
name: crash
services:
  crash:
    image: busybox
    command: ["sh", "-c", "echo run; exit 3"]
    restart: on-failure:3
`)
	before := c.hostState()
	start := time.Now()
	c.must("up", "-d")
	eventually(t, 10*time.Second, "four runs", func() bool {
		return strings.Count(c.must("logs", "crash"), "run") == 4 && c.ps()["crash-crash-1"].State == "exited"
	})
	if took := time.Since(start); took < 700*time.Millisecond {
		t.Errorf("three restarts in %v: no back-off (100+200+400 ms)", took)
	}
	time.Sleep(time.Second)
	if n := strings.Count(c.must("logs", "crash"), "run"); n != 4 {
		t.Errorf("%d runs, want 4", n)
	}
	if e := c.ps()["crash-crash-1"]; e.ExitCode != 3 {
		t.Errorf("%+v", e)
	}
	c.must("down")
	c.checkClean(before)
}

// TestStopGracePeriod: a process that ignores SIGTERM (sleep as a
// container's PID 1, without init) is killed when the grace period is
// over: the service's stop_grace_period, or -t; it then exited with 137.
func TestStopGracePeriod(t *testing.T) {
	c := newCLI(t, `
name: grace
services:
  stubborn:
    image: busybox
    command: ["sleep", "1000"]
    stop_grace_period: 1s
`)
	before := c.hostState()
	for _, tc := range []struct {
		args     []string
		min, max time.Duration
	}{
		{[]string{"stop"}, time.Second, 5 * time.Second},
		{[]string{"stop", "-t", "2"}, 2 * time.Second, 6 * time.Second},
		{[]string{"down", "-t", "0"}, 0, 3 * time.Second},
	} {
		c.must("up", "-d")
		start := time.Now()
		out := c.must(tc.args...)
		if took := time.Since(start); took < tc.min || took > tc.max {
			t.Errorf("%v took %v, want %v to %v:\n%s", tc.args, took, tc.min, tc.max, out)
		}
		if e, ok := c.ps()["grace-stubborn-1"]; ok && (e.State != "exited" || e.ExitCode != 137) {
			t.Errorf("after %v: %+v", tc.args, e)
		}
	}
	c.checkClean(before)
}

// TestProjectByName: as with docker compose, -p without -f reaches a
// project from a directory without its compose file (and
// COMPOSE_PROJECT_NAME when no file loads): ps, logs, stop and down work
// from what berth holds of it, dependants first; down -v takes its named
// volume; a second down warns that nothing was left.
func TestProjectByName(t *testing.T) {
	c := newCLI(t, `
name: byname
services:
  web:
    image: busybox
    init: true
    command: ["sh", "-c", "echo web up; sleep 1000"]
    depends_on: [db]
  db:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes: [data:/data]
volumes:
  data:
`)
	before := c.hostState()
	c.must("up", "-d")
	elsewhere := *c
	elsewhere.dir = t.TempDir()
	if out, code := elsewhere.run("", "ps"); code == 0 {
		t.Errorf("ps without a file or a name: %q", out)
	}
	if ps := elsewhere.ps("-p", "byname"); len(ps) != 2 || ps["byname-web-1"].State != "running" {
		t.Errorf("-p byname ps: %v", ps)
	}
	if out := elsewhere.must("-p", "byname", "logs", "--no-log-prefix", "web"); out != "web up\n" {
		t.Errorf("-p byname logs web: %q", out)
	}
	elsewhere.must("-p", "byname", "stop", "db")
	if e := c.ps()["byname-db-1"]; e.State != "exited" {
		t.Errorf("-p byname stop db: %+v", e)
	}
	withEnv := elsewhere
	withEnv.environ = append(slices.Clone(c.environ), "COMPOSE_PROJECT_NAME=byname")
	if out := withEnv.must("ps", "-a", "-q"); strings.Count(out, "\n") != 2 {
		t.Errorf("COMPOSE_PROJECT_NAME ps -a -q: %q", out)
	}
	out := elsewhere.must("-p", "byname", "down", "-v")
	for _, want := range []string{"Container byname-web-1  Removed", "Container byname-db-1  Removed", "Network byname_default  Removed", "Volume byname_data  Removed"} {
		if !strings.Contains(out, want) {
			t.Errorf("-p byname down -v lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "byname-web-1  Removed") > strings.Index(out, "byname-db-1  Removing") {
		t.Errorf("db went before web, which depends on it:\n%s", out)
	}
	if out := elsewhere.must("-p", "byname", "down"); !strings.Contains(out, `level=warning msg="Warning: No resource found to remove for project \"byname\"."`) {
		t.Errorf("down of nothing: %q", out)
	}
	c.checkClean(before)
}

// TestDownServices: down SERVICE removes that service's containers and
// its dependants', not the others, nor the network and volumes they still
// use (down -v); a name the project lacks is an error, unless the project
// is known by its name alone.
func TestDownServices(t *testing.T) {
	c := newCLI(t, `
name: downsvc
services:
  db:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes: [data:/data]
  web:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    depends_on: [api]
  api:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes: [cache:/cache]
volumes:
  data:
  cache:
`)
	before := c.hostState()
	c.must("up", "-d")
	out := c.must("down", "-v", "api")
	for _, want := range []string{"Container downsvc-web-1  Removed", "Container downsvc-api-1  Removed", "Volume downsvc_cache  Removed", "Volume downsvc_data: resource is still in use by downsvc-db-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("down -v api lacks %q:\n%s", want, out)
		}
	}
	if ps := c.ps(); len(ps) != 1 || ps["downsvc-db-1"].State != "running" {
		t.Errorf("after down -v api: %v", ps)
	}
	if vols := c.volumes("volume", "ls"); len(vols) != 1 {
		t.Errorf("volumes after down -v api: %v", vols)
	}
	if out, code := c.run("", "down", "nosuch"); code == 0 || !strings.Contains(out, "no such service: nosuch") {
		t.Errorf("down nosuch: %d\n%s", code, out)
	}
	elsewhere := *c
	elsewhere.dir = t.TempDir()
	elsewhere.must("-p", "downsvc", "down", "web") // no container left: nothing to do
	if ps := c.ps(); len(ps) != 1 {
		t.Errorf("after -p downsvc down web: %v", ps)
	}
	c.must("down", "-v")
	c.checkClean(before)
}

// TestConcurrentUp: two up of one project at once are serialised: one
// container per service, both succeed.
func TestConcurrentUp(t *testing.T) {
	c := newCLI(t, `
name: twice
services:
  a:
    image: busybox
    init: true
    command: ["sleep", "1000"]
  b:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    depends_on: [a]
`)
	before := c.hostState()
	var wg sync.WaitGroup
	codes := make([]int, 2)
	outs := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd, _, stop := c.command("up", "-d")
			defer stop()
			b, _ := cmd.CombinedOutput()
			outs[i], codes[i] = string(b), cmd.ProcessState.ExitCode()
		}()
	}
	wg.Wait()
	if codes[0] != 0 || codes[1] != 0 {
		t.Errorf("exit codes %v:\n%s\n%s", codes, outs[0], outs[1])
	}
	if n := len(c.containers()); n != 2 {
		t.Errorf("%d containers, want 2", n)
	}
	c.must("down")
	c.checkClean(before)
}

// TestScaleAndOrphans: --scale adds and removes replicas (the existing
// ones kept); a service removed from the file leaves an orphan, warned
// about, removed with --remove-orphans.
func TestScaleAndOrphans(t *testing.T) {
	c := newCLI(t, `
name: scale
services:
  web:
    image: busybox
    init: true
    command: ["sleep", "1000"]
  worker:
    image: busybox
    init: true
    command: ["sleep", "1000"]
`)
	before := c.hostState()
	c.must("up", "-d")
	first := c.ps()["scale-web-1"].ID
	c.must("up", "-d", "--scale", "web=3")
	ps := c.ps()
	if len(ps) != 4 || ps["scale-web-1"].ID != first || ps["scale-web-3"].State != "running" {
		t.Errorf("scale up: %v", ps)
	}
	if out := c.must("logs", "--index", "2", "web"); out != "" {
		t.Errorf("logs --index 2: %q", out)
	}
	if out := c.must("exec", "-T", "--index", "3", "web", "hostname"); strings.TrimSpace(out) != c.ps()["scale-web-3"].ID[:12] {
		t.Errorf("exec --index 3: %q", out)
	}
	out := c.must("up", "-d")
	if !regexp.MustCompile(`(?s)scale-web-3  Stopping.*scale-web-3  Stopped.*scale-web-3  Removing.*scale-web-3  Removed`).MatchString(out) || len(c.ps()) != 2 {
		t.Errorf("back to scale 1:\n%s", out)
	}
	// scale: up -d of the services named at their number of replicas.
	c.must("scale", "web=2")
	if ps := c.ps(); len(ps) != 3 || ps["scale-web-1"].ID != first || ps["scale-web-2"].State != "running" {
		t.Errorf("scale web=2: %v", ps)
	}
	if out, code := c.run("", "scale", "nosuch=2"); code == 0 || !strings.Contains(out, "no such service: nosuch") {
		t.Errorf("scale nosuch=2: %d %q", code, out)
	}
	c.must("scale", "web=1")
	c.writeCompose("name: scale\nservices:\n  web:\n    image: busybox\n    init: true\n    command: [\"sleep\", \"1000\"]\n")
	out = c.must("up", "-d")
	// In logrus's format without a terminal, as docker compose's and the
	// Compose loader's warnings are.
	if !regexp.MustCompile(`(?m)^time="[^"]+" level=warning msg="Found orphan containers \(scale-worker-1\)`).MatchString(out) {
		t.Errorf("no orphan warning:\n%s", out)
	}
	out = c.must("up", "-d", "--remove-orphans")
	if !strings.Contains(out, "scale-worker-1  Removed") {
		t.Errorf("--remove-orphans:\n%s", out)
	}
	c.must("down")
	c.checkClean(before)
}

// TestCompatibilityNames: with --compatibility (or COMPOSE_COMPATIBILITY)
// new containers are named as by Compose v1, <project>_<service>_<n>, and
// answer to that name; existing ones keep theirs.
func TestCompatibilityNames(t *testing.T) {
	c := newCLI(t, `
name: compat
services:
  web:
    image: busybox
    init: true
    command: ["sleep", "1000"]
`)
	before := c.hostState()
	c.must("up", "-d")
	out := c.must("--compatibility", "up", "-d", "--scale", "web=2")
	if !strings.Contains(out, "Container compat_web_2  Started") {
		t.Errorf("--compatibility up:\n%s", out)
	}
	ps := c.ps()
	if len(ps) != 2 || ps["compat-web-1"].State != "running" || ps["compat_web_2"].State != "running" {
		t.Errorf("ps: %v", ps)
	}
	if out, code := c.run("", "exec", "-T", "--index", "1", "web", "ping", "-c", "1", "-W", "2", "compat_web_2"); code != 0 {
		t.Errorf("compat_web_2 by name: %d %s", code, out)
	}
	withEnv := *c
	withEnv.environ = append(slices.Clone(c.environ), "COMPOSE_COMPATIBILITY=true")
	name := strings.TrimSpace(withEnv.must("run", "-d", "web"))
	if !regexp.MustCompile(`^compat_web_run_[0-9a-f]{12}$`).MatchString(name) {
		t.Errorf("run -d with COMPOSE_COMPATIBILITY: %q", name)
	}
	c.must("down")
	c.checkClean(before)
}

// TestRestartDependants: `restart db` restarts, after db, the services that
// depend on it with restart: true (and theirs), not the others; --no-deps
// restarts db alone.
func TestRestartDependants(t *testing.T) {
	c := newCLI(t, `
name: rd
services:
  db:
    image: busybox
    init: true
    command: ["sh", "-c", "echo boot; exec sleep 1000"]
  app:
    image: busybox
    init: true
    command: ["sh", "-c", "echo boot; exec sleep 1000"]
    depends_on:
      db: {condition: service_started, restart: true}
  worker:
    image: busybox
    init: true
    command: ["sh", "-c", "echo boot; exec sleep 1000"]
    depends_on:
      app: {condition: service_started, restart: true}
  other:
    image: busybox
    init: true
    command: ["sh", "-c", "echo boot; exec sleep 1000"]
    depends_on: [db]
`)
	before := c.hostState()
	c.must("up", "-d")
	boots := func(service string) int {
		return strings.Count(c.must("logs", "--no-log-prefix", service), "boot")
	}
	c.must("restart", "-t", "0", "db")
	for service, want := range map[string]int{"db": 2, "app": 2, "worker": 2, "other": 1} {
		if got := boots(service); got != want {
			t.Errorf("after restart db: %s booted %d times, want %d", service, got, want)
		}
	}
	c.must("restart", "-t", "0", "--no-deps", "db")
	for service, want := range map[string]int{"db": 3, "app": 2} {
		if got := boots(service); got != want {
			t.Errorf("after restart --no-deps db: %s booted %d times, want %d", service, got, want)
		}
	}
	c.must("down", "-t", "0")
	c.checkClean(before)
}

// TestStartWaitsForDependencies: start SERVICE starts its dependencies
// too, and like restart starts a service only once its service_healthy
// dependencies are healthy again, as docker compose does.
func TestStartWaitsForDependencies(t *testing.T) {
	c := newCLI(t, `
name: swd
services:
  db:
    image: busybox
    init: true
    command: ["sh", "-c", "rm -f /shared/ready; echo boot; sleep 1; touch /shared/ready; exec sleep 1000"]
    volumes: [shared:/shared]
    healthcheck: {test: ["CMD", "test", "-f", "/shared/ready"], interval: 200ms, retries: 50}
  app:
    image: busybox
    init: true
    command: ["sh", "-c", "test -f /shared/ready && echo db-ready || echo db-not-ready; exec sleep 1000"]
    volumes: [shared:/shared]
    depends_on:
      db: {condition: service_healthy, restart: true}
volumes:
  shared:
`)
	before := c.hostState()
	c.must("up", "-d", "--wait")
	check := func(when string, boots, ready int) {
		t.Helper()
		if got := strings.Count(c.must("logs", "db"), "boot"); got != boots {
			t.Errorf("%s: db booted %d times, want %d", when, got, boots)
		}
		if out := c.must("logs", "app"); strings.Count(out, "db-ready") != ready || strings.Contains(out, "db-not-ready") {
			t.Errorf("%s: app's starts:\n%s", when, out)
		}
	}
	check("up", 1, 1)
	c.must("stop", "-t", "0")
	out := c.must("start", "app")
	if !regexp.MustCompile(`(?s)swd-db-1  Started.*swd-db-1  Healthy.*swd-app-1  Starting`).MatchString(out) {
		t.Errorf("start app:\n%s", out)
	}
	check("start app", 2, 2)
	c.must("restart", "-t", "0", "db")
	check("restart db", 3, 3)
	c.must("down", "-v", "-t", "0")
	c.checkClean(before)
}

// TestRestartWithPorts: restart of a container with a published port runs
// it again. The supervisor once answered the start before it had handled
// the stop's exit (giving back the port's rules takes a few milliseconds),
// took the container for still running, and left it exited.
func TestRestartWithPorts(t *testing.T) {
	port, err := netspec.FreePort(context.Background(), "tcp", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, `
name: rp
services:
  web:
    image: busybox
    command: ["httpd", "-f", "-p", "80", "-h", "/"]
    ports: ["`+strconv.Itoa(port)+`:80"]
`)
	before := c.hostState()
	c.must("up", "-d")
	for i := range 5 {
		c.must("restart", "-t", "0", "web")
		if e := c.ps()["rp-web-1"]; e.State != "running" {
			t.Fatalf("restart %d: %+v", i, e)
		}
	}
	c.must("down", "-t", "0")
	c.checkClean(before)
}

// TestContainerNameTaken: container names are the host's, as Docker's
// are: two services of a project with one container_name fail up, and so
// does another project's service with a name in use; both before anything
// is made. The name is free again once its container is removed.
func TestContainerNameTaken(t *testing.T) {
	c := newCLI(t, `
name: first
services:
  a:
    image: busybox
    command: ["sleep", "1000"]
    container_name: same
  b:
    image: busybox
    command: ["sleep", "1000"]
    container_name: same
`)
	before := c.hostState()
	out, code := c.run("", "up", "-d")
	if code == 0 || !strings.Contains(out, `container name "same" is used by services "a" and "b"`) {
		t.Fatalf("up with one container_name twice: exit %d\n%s", code, out)
	}
	c.checkClean(before)

	c.writeCompose(`
name: first
services:
  a:
    image: busybox
    command: ["sleep", "1000"]
    container_name: same
`)
	c.must("up", "-d")
	other := `
name: second
services:
  b:
    image: busybox
    command: ["sleep", "1000"]
    container_name: same
`
	if err := os.WriteFile(filepath.Join(c.dir, "other.yaml"), []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	// newCLI's cleanup takes down the default file's project; the second
	// one goes too, also when the test fails.
	t.Cleanup(func() { c.run("", "-f", "other.yaml", "down", "-t", "0") })
	running := c.hostState()
	out, code = c.run("", "-f", "other.yaml", "up", "-d")
	if code == 0 || !strings.Contains(out, `service "b": container_name: conflict: container name "same" is already in use by a container of project "first"`) {
		t.Fatalf("another project's container_name in use: exit %d\n%s", code, out)
	}
	if now := c.hostState(); now != running {
		t.Errorf("the refused up left something:\n%s\n---\n%s", running, now)
	}
	c.must("down", "-t", "0")
	c.must("-f", "other.yaml", "up", "-d")
	if ps := c.must("-f", "other.yaml", "ps", "--format", "{{.Name}} {{.Service}}"); strings.TrimSpace(ps) != "same b" {
		t.Errorf("second's ps: %q", ps)
	}
	c.must("-f", "other.yaml", "down", "-t", "0")

	// A default name (<project>-<service>-<n>) that another project's
	// container_name holds is refused before anything is made too.
	for name, content := range map[string]string{
		"third.yaml":  "name: third\nservices:\n  c:\n    image: busybox\n    command: [\"sleep\", \"1000\"]\n    container_name: fourth-d-1\n",
		"fourth.yaml": "name: fourth\nservices:\n  d:\n    image: busybox\n    command: [\"sleep\", \"1000\"]\n",
	} {
		if err := os.WriteFile(filepath.Join(c.dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { c.run("", "-f", "third.yaml", "down", "-t", "0") })
	c.must("-f", "third.yaml", "up", "-d")
	running = c.hostState()
	out, code = c.run("", "-f", "fourth.yaml", "up", "-d")
	if code == 0 || !strings.Contains(out, `service "d": conflict: container name "fourth-d-1" is already in use by a container of project "third"`) {
		t.Errorf("a default name in use: exit %d\n%s", code, out)
	}
	if now := c.hostState(); now != running {
		t.Errorf("the refused up left something:\n%s\n---\n%s", running, now)
	}
	c.must("-f", "third.yaml", "down", "-t", "0")
	c.checkClean(before)
}

// TestDownRemoveImages: down --rmi local removes the images of the
// services without an image key (<project>-<service>, which docker compose
// builds and berth loads), --rmi all every service's; the images stay
// otherwise.
func TestDownRemoveImages(t *testing.T) {
	c := newCLI(t, `
name: rmi
services:
  built:
    build: .
    command: ["sleep", "1000"]
  named:
    image: busybox-named:1
    command: ["sleep", "1000"]
`)
	before := c.hostState()
	images := func() string {
		t.Helper()
		var names []string
		for _, l := range strings.Split(c.must("image", "ls"), "\n")[1:] {
			if f := strings.Fields(l); len(f) >= 2 {
				names = append(names, f[0]+":"+f[1])
			}
		}
		slices.Sort(names)
		return strings.Join(names, " ")
	}
	c.loadVolumeImage("rmi-built")
	c.loadVolumeImage("busybox-named:1")
	c.must("up", "-d")
	c.must("down", "-t", "0")
	if got := images(); got != "busybox-named:1 busybox:latest rmi-built:latest" {
		t.Errorf("images after down: %s", got)
	}
	c.must("up", "-d")
	c.must("down", "-t", "0", "--rmi", "local")
	if got := images(); got != "busybox-named:1 busybox:latest" {
		t.Errorf("images after down --rmi local: %s", got)
	}
	c.loadVolumeImage("rmi-built")
	c.must("up", "-d")
	c.must("down", "-t", "0", "--rmi", "all")
	if got := images(); got != "busybox:latest" {
		t.Errorf("images after down --rmi all: %s", got)
	}
	c.checkClean(before)
}

// TestUpRefusesBadServiceFirst: a service that cannot become a container
// (a value the container spec or the runtime refuses, its image missing)
// fails up before anything is made: no network, no container.
func TestUpRefusesBadServiceFirst(t *testing.T) {
	c := newCLI(t, "services: {}\n")
	before := c.hostState()
	for _, tc := range []struct{ key, want string }{
		{"image: busybox\n    restart: sometimes", `restart: "sometimes": use no, always, on-failure[:N] or unless-stopped`},
		{"image: busybox\n    cap_add: [NOT_A_CAP]", `cap_add: unknown capability "CAP_NOT_A_CAP"`},
		{"image: busybox\n    sysctls: {kernel.notallowed: 1}", `sysctl "kernel.notallowed" is not in a separate kernel namespace`},
		{"image: busybox\n    deploy: {restart_policy: {condition: bogus}}", `deploy.restart_policy.condition: "bogus"`},
		{"image: busybox-missing:1", `service "b": image:`},
		{"image: busybox\n    dns: [not-an-ip]", `dns: invalid argument: "not-an-ip" is not an IP address`},
		{"image: busybox\n    volumes: [\"ext:/ext\"]\nvolumes:\n  ext: {external: true}", `volume "ext" declared as external, but could not be found`},
		{"image: busybox\n    networks: [outside]\nnetworks:\n  outside: {external: true}", `network outside declared as external, but could not be found`},
		{"image: busybox\n    dns_opt: [\"two words\"]", `dns_opt: "two words": an option is a word`},
	} {
		c.writeCompose(fmt.Sprintf(`
name: bad
services:
  a:
    image: busybox
    command: ["sleep", "1000"]
  b:
    command: ["sleep", "1000"]
    depends_on: [a]
    %s
`, tc.key))
		// up, and run, which would otherwise start b's dependency a
		// first.
		for _, args := range [][]string{{"up", "-d", "--pull", "never"}, {"run", "--rm", "--pull", "never", "b", "true"}} {
			out, code := c.run("", args...)
			if code == 0 || !strings.Contains(out, tc.want) {
				t.Errorf("%s: %s: exit %d, want an error with %q:\n%s", tc.key, args[0], code, tc.want, out)
			}
			if now := c.hostState(); now != before {
				t.Errorf("%s: the refused %s left something:\n%s\n---\n%s", tc.key, args[0], before, now)
			}
			if left := c.containers(); len(left) != 0 {
				t.Errorf("%s: %s: containers left: %v", tc.key, args[0], left)
			}
		}
	}
	c.checkClean(before)
}

// TestLogsFollowInterrupted: Ctrl-C ends logs -f quietly, with status 130,
// as a shell reports an interrupted command.
func TestLogsFollowInterrupted(t *testing.T) {
	c := newCLI(t, `
name: follow
services:
  talk:
    image: busybox
    command: ["sh", "-c", "echo hello; exec sleep 1000"]
`)
	before := c.hostState()
	c.must("up", "-d")
	cmd, out := c.background("logs", "-f", "--no-log-prefix", "talk")
	eventually(t, 5*time.Second, "the line followed", func() bool { return strings.Contains(out.String(), "hello") })
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 || out.String() != "hello\n" {
		t.Errorf("logs -f interrupted: %v, output %q", err, out.String())
	}
	c.must("down", "-t", "0")
	c.checkClean(before)
}

// TestRecreateFailureKeepsOld: a changed service whose new configuration
// cannot be made (a bind source that is not there) fails up, and leaves
// the container it was to replace as it was: running, its writable layer
// kept.
func TestRecreateFailureKeepsOld(t *testing.T) {
	c := newCLI(t, `
name: keepold
services:
  a:
    image: busybox
    command: ["sleep", "1000"]
`)
	before := c.hostState()
	c.must("up", "-d")
	c.must("exec", "-T", "a", "sh", "-c", "echo kept > /tmp/inlayer")
	id := c.ps()["keepold-a-1"].ID
	c.writeCompose(c.compose() + `    volumes:
      - type: bind
        source: ./nope
        target: /n
        bind: {create_host_path: false}
`)
	out, code := c.run("", "up", "-d")
	if code == 0 || !strings.Contains(out, "nope does not exist") {
		t.Errorf("up with a missing bind source: exit %d\n%s", code, out)
	}
	if e := c.ps()["keepold-a-1"]; e.State != "running" || e.ID != id {
		t.Errorf("the old container after the failed recreate: %+v", e)
	}
	if out := c.must("exec", "-T", "a", "cat", "/tmp/inlayer"); out != "kept\n" {
		t.Errorf("its writable layer: %q", out)
	}
	c.must("down", "-t", "0")
	c.checkClean(before)
}

// TestHooks: post_start runs in the container once berth started it (up,
// start), pre_stop before berth stops it (stop), each with its working
// directory and environment; a post_start hook that fails fails up.
func TestHooks(t *testing.T) {
	c := newCLI(t, `
name: hooks
services:
  app:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes: [data:/data]
    post_start:
      - command: ["sh", "-c", "echo started in $$PWD with $$HOOK >> /data/log"]
        working_dir: /tmp
        environment: {HOOK: post}
    pre_stop:
      - command: ["sh", "-c", "echo stopping >> /data/log"]
volumes:
  data:
`)
	before := c.hostState()
	c.must("up", "-d")
	c.must("stop")
	c.must("start")
	want := "started in /tmp with post\nstopping\nstarted in /tmp with post\n"
	if out := c.must("exec", "-T", "app", "cat", "/data/log"); out != want {
		t.Errorf("the hooks' log: %q, want %q", out, want)
	}
	c.must("down", "-v", "-t", "0")
	c.writeCompose(strings.Replace(c.compose(), `["sh", "-c", "echo started in $$PWD with $$HOOK >> /data/log"]`, `["sh", "-c", "echo no luck; exit 3"]`, 1))
	if out, code := c.run("", "up", "-d"); code == 0 || !strings.Contains(out, `service "app": post_start[0] hook: exited with status 3: no luck`) {
		t.Errorf("up with a failing post_start: %d\n%s", code, out)
	}
	c.must("down", "-v", "-t", "0")
	c.checkClean(before)
}

// TestLogsFollowNewContainers: logs -f follows the containers that appear
// while it runs (up --scale), from their first line, as docker compose's;
// it ends when they all stop.
func TestLogsFollowNewContainers(t *testing.T) {
	c := newCLI(t, `
name: follownew
services:
  ping:
    image: busybox
    init: true
    command: ["sh", "-c", "echo hello from $$(hostname); exec sleep 1000"]
`)
	before := c.hostState()
	c.must("up", "-d")
	cmd, out := c.background("logs", "-f", "--no-color", "ping")
	eventually(t, 10*time.Second, "ping-1's line", func() bool {
		return strings.Contains(out.String(), "ping-1  | hello") || strings.Contains(out.String(), "ping-1 | hello")
	})
	c.must("up", "-d", "--scale", "ping=2")
	eventually(t, 10*time.Second, "ping-2's line", func() bool { return strings.Contains(out.String(), "ping-2 | hello") })
	c.must("stop", "-t", "0")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("logs -f did not end once everything stopped:\n%s", out.String())
	}
	c.must("down", "-t", "0")
	c.checkClean(before)
}
