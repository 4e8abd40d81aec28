package pid1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExitStatus(t *testing.T) {
	for _, c := range []struct {
		name    string
		wstatus int
		want    int
	}{
		{"exit 0", 0, 0},
		{"exit 7", 7 << 8, 7},
		{"exit 255", 255 << 8, 255},
		{"SIGTERM", int(syscall.SIGTERM), 143},
		{"SIGKILL", int(syscall.SIGKILL), 137},
		{"SIGSEGV, core dumped", int(syscall.SIGSEGV) | 0x80, 139},
	} {
		if got := exitStatus(c.wstatus); got != c.want {
			t.Errorf("%s (wait status %#x): %d, want %d", c.name, c.wstatus, got, c.want)
		}
	}
}

func TestExecStatus(t *testing.T) {
	for _, c := range []struct {
		errno syscall.Errno
		want  int
	}{
		{syscall.ENOENT, 127},
		{syscall.ENOTDIR, 127},
		{syscall.EACCES, 126},
		{syscall.ENOEXEC, 126},
		{syscall.EISDIR, 126},
		{syscall.E2BIG, 1},
		{syscall.ENOMEM, 1},
	} {
		if got := execStatus(int(c.errno)); got != c.want {
			t.Errorf("%v: %d, want %d", c.errno, got, c.want)
		}
	}
}

// initCmd runs this test binary as the init would run in a container:
// mounted at /sbin/docker-init (in a mount namespace of its own, with
// /proc hidden when hideProc, so that the arguments must come from the
// stack), with args after it.
func initCmd(t *testing.T, hideProc bool, args ...string) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("these tests need root")
		}
		t.Skip("needs root: mounts the binary at /sbin/docker-init in a mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is needed: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := `mount -t tmpfs none /sbin && : > /sbin/docker-init && mount --bind "$0" /sbin/docker-init || exit 99`
	if hideProc {
		script += ` && mount -t tmpfs none /proc || exit 99`
	}
	script += `; exec /sbin/docker-init "$@"`
	return exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, exe}, args...)...)
}

// run runs the init to its end and returns its exit status and output.
func run(t *testing.T, hideProc bool, args ...string) (int, string) {
	t.Helper()
	cmd := initCmd(t, hideProc, args...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running the init: %v", err)
	}
	code := cmd.ProcessState.ExitCode()
	if code == 99 {
		t.Fatalf("setting up the mount namespace: %s", out)
	}
	return code, string(out)
}

func TestInitExitStatus(t *testing.T) {
	for _, c := range []struct {
		name     string
		hideProc bool
		args     []string
		want     int
		output   string
	}{
		{"the command's status", false, []string{"--", "sh", "-c", "echo $0 $1; exit 7", "a", "b"}, 7, "a b\n"},
		{"without --", false, []string{"sh", "-c", "exit 3"}, 3, ""},
		{"arguments from the stack, no /proc", true, []string{"--", "sh", "-c", "echo $0; exit 5", "x"}, 5, "x\n"},
		{"killed by a signal", false, []string{"--", "sh", "-c", "kill -TERM $$"}, 143, ""},
		{"not found", false, []string{"--", "/nonexistent/command"}, 127, "docker-init: exec /nonexistent/command: No such file or directory\n"},
		{"not executable", false, []string{"--", "/etc/passwd"}, 126, "docker-init: exec /etc/passwd: Permission denied\n"},
		{"no command", false, []string{"--"}, 1, "usage: /sbin/docker-init -- COMMAND [ARG...]\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out := run(t, c.hideProc, c.args...)
			if code != c.want || out != c.output {
				t.Errorf("exit status %d, output %q; want %d, %q", code, out, c.want, c.output)
			}
		})
	}
}

// TestInitSignals: a signal to the init reaches the command; the init
// exits with the command's status.
func TestInitSignals(t *testing.T) {
	cmd := initCmd(t, false, "--", "sh", "-c", `trap 'echo got TERM; exit 42' TERM; trap 'echo got USR1' USR1; echo ready; while :; do sleep 0.05; done`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	expect := func(want string) {
		t.Helper()
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("read %q (%v), want %q", lines.Text(), lines.Err(), want)
		}
	}
	expect("ready")
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	expect("got USR1")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	expect("got TERM")
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 42 {
		t.Errorf("exit status %d (%v), want the command's 42", cmd.ProcessState.ExitCode(), err)
	}
}

// TestInitReaps: an orphan of the command is reparented to the init,
// which is not PID 1 here and so a child subreaper, and is reaped when
// it exits, while the command still runs.
func TestInitReaps(t *testing.T) {
	cmd := initCmd(t, false, "--", "sh", "-c", `(sleep 1 &); read line`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	init := cmd.Process.Pid
	waitFor := func(what string, ok func(children map[int]string) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			children := childrenOf(t, init)
			if ok(children) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the init's children are %v", what, children)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the orphan reparented to the init", func(c map[int]string) bool {
		for _, s := range c {
			if strings.HasPrefix(s, "sleep ") {
				return true
			}
		}
		return false
	})
	waitFor("the orphan reaped", func(c map[int]string) bool {
		for _, s := range c {
			if !strings.HasPrefix(s, "sh ") {
				return false
			}
		}
		return len(c) == 1
	})
	stdin.Write([]byte("done\n"))
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("the init: %v\n%s", err, stderr.String())
	}
}

// childrenOf returns the processes whose parent is pid: "<name> <state>"
// by pid.
func childrenOf(t *testing.T, pid int) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	children := map[int]string{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
			children[p] = s[open+1:end] + " " + f[0]
		}
	}
	return children
}
