package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCgroupV2: berth on a cgroup v2 host. The machines the tests run on
// have cgroup v1, with the v2 hierarchy beside it; berth runs here in a
// mount namespace of its own where /sys/fs/cgroup is that v2 hierarchy,
// as on a v2-only host, so that libcontainer's v2 manager runs the
// containers (no controller is free for v2 on such a machine: limits are
// not exercised here). Each container gets its own cgroup namespace and
// a cgroup2 /sys/fs/cgroup, as Docker's default on v2; health-gated
// starts, pause (cgroup.freeze), stats, a killed supervisor's re-adoption
// and down work; nothing is left in the namespace or in the hierarchy.
func TestCgroupV2(t *testing.T) {
	needRoot(t)
	var fs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.CGROUP2_SUPER_MAGIC {
		t.Skip("this host is cgroup v2 only: every test runs on v2 already")
	}
	holder := cgroupV2Namespace(t)
	c := newCLI(t, `
name: v2
services:
  db:
    image: busybox
    init: true
    command: ["sh", "-c", "touch /tmp/ready; exec sleep 1000"]
    restart: always
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ready"]
      interval: 200ms
  app:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    depends_on:
      db: {condition: service_healthy}
`)
	// Every berth command from now on runs in the holder's namespace
	// (images were loaded outside it: loading mounts nothing).
	wrapper := filepath.Join(t.TempDir(), "berth-v2")
	// The working directory is entered once in the namespace: one opened
	// outside (nsenter --wd) is unreachable from its root.
	script := fmt.Sprintf("#!/bin/sh\nexec nsenter --mount=/proc/%d/ns/mnt -- /bin/sh -c 'cd \"$0\" && exec %s \"$@\"' \"$PWD\" \"$@\"\n", holder, c.bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c.bin, c.mountsOf = wrapper, holder
	before := c.hostState()

	c.must("up", "-d", "--wait")
	ps := c.ps()
	if ps["v2-db-1"].Health != "healthy" || ps["v2-app-1"].State != "running" {
		t.Fatalf("up --wait: %+v", ps)
	}
	// (The v1 hierarchies of this host are listed too, as on any host
	// that has them.)
	if out := c.must("exec", "-T", "app", "cat", "/proc/self/cgroup"); !strings.HasSuffix(out, "\n0::/\n") {
		t.Errorf("the container's /proc/self/cgroup: %q, want 0::/, its own cgroup namespace's root", out)
	}
	if out, code := c.run("", "exec", "-T", "app", "cat", "/sys/fs/cgroup/cgroup.procs"); code != 0 || !strings.Contains(out, "1\n") {
		t.Errorf("the container's /sys/fs/cgroup is not its cgroup2 hierarchy: %d %q", code, out)
	}
	cgroupDir := fmt.Sprintf("/proc/%d/root/sys/fs/cgroup/%s/%s", holder, c.cgroup, ps["v2-app-1"].ID)
	if procs, err := os.ReadFile(filepath.Join(cgroupDir, "cgroup.procs")); err != nil || len(procs) == 0 {
		t.Errorf("the container's cgroup on the host: %v %q", err, procs)
	}

	c.must("pause", "app")
	if freeze, err := os.ReadFile(filepath.Join(cgroupDir, "cgroup.freeze")); err != nil || string(freeze) != "1\n" {
		t.Errorf("paused: cgroup.freeze %q %v", freeze, err)
	}
	if st := c.ps()["v2-app-1"].State; st != "paused" {
		t.Errorf("paused: state %q", st)
	}
	c.must("unpause", "app")
	if out := c.must("stats", "--no-stream"); !strings.Contains(out, "v2-app-1") || !strings.Contains(out, "v2-db-1") {
		t.Errorf("stats --no-stream:\n%s", out)
	}

	// kill -9 of the supervisor: the next command adopts the containers,
	// none started twice.
	pids := c.supervisors()
	if len(pids) != 1 {
		t.Fatalf("supervisors: %v", pids)
	}
	unix.Kill(pids[0], unix.SIGKILL)
	c.waitSupervisorGone(5 * time.Second)
	after := c.ps()
	for _, name := range []string{"v2-db-1", "v2-app-1"} {
		if after[name].State != "running" || after[name].ID != ps[name].ID {
			t.Errorf("after kill -9 of the supervisor, %s: %+v (was %+v)", name, after[name], ps[name])
		}
	}
	if out := c.must("top", "db"); strings.Count(out, "   sleep 1000\n") != 1 {
		t.Errorf("db started twice?\n%s", out)
	}

	c.must("down")
	c.checkClean(before)
}

// cgroupV2Namespace starts a process in a new mount namespace where
// /sys/fs/cgroup is the host's cgroup v2 hierarchy, and returns its pid;
// the process and the namespace go when the test's cleanups are done.
func cgroupV2Namespace(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		"mount -t cgroup2 none /sys/fs/cgroup && echo ready && exec sleep 3600")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Registered before the test's own cleanups (newCLI's down among
	// them), so run after them.
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("mounting cgroup2 in a new mount namespace: %q %v", line, err)
	}
	return cmd.Process.Pid
}
