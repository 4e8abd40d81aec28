package supervisor

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReapOrphans: the supervisor reaps the zombies of libcontainer's
// intermediate process (runc:[1:CHILD]), which a subreaper inherits, and
// no other child: those os/exec and libcontainer wait for must stay
// theirs. (Which process ends up whose depends on timing under load, so
// the zombies are made here directly: children of the test named so.)
func TestReapOrphans(t *testing.T) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The kernel names a process after the file it executes.
	intermediate := filepath.Join(dir, "runc:[1:CHILD]")
	if err := os.Symlink(truePath, intermediate); err != nil {
		t.Fatal(err)
	}
	orphan := exec.Command(intermediate)
	other := exec.Command(truePath)
	for _, c := range []*exec.Cmd{orphan, other} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	defer other.Wait()
	// /proc/PID/stat: pid (comm) state ...
	zombie := func(pid int) bool {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		i := bytes.LastIndexByte(b, ')')
		return err == nil && i > 0 && i+2 < len(b) && b[i+2] == 'Z'
	}
	deadline := time.Now().Add(5 * time.Second)
	for !(zombie(orphan.Process.Pid) && zombie(other.Process.Pid)) {
		if time.Now().After(deadline) {
			t.Fatal("the children did not exit")
		}
		time.Sleep(10 * time.Millisecond)
	}
	(&reaper{}).reap()
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(orphan.Process.Pid))); !os.IsNotExist(err) {
		t.Errorf("runc:[1:CHILD] zombie not reaped: %v", err)
	}
	if !zombie(other.Process.Pid) {
		t.Error("a child someone else waits for was reaped")
	}
	if err := other.Wait(); err != nil {
		t.Errorf("its own wait: %v", err)
	}
}

// The zombie waitid reports without reaping it is the child that exited.
func TestSiginfoPid(t *testing.T) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command(truePath)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Wait()
	var info unix.Siginfo
	// Blocks until it exits, and leaves it a zombie for its Wait.
	if err := unix.Waitid(unix.P_PID, c.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	if got := siginfoPid(&info); got != c.Process.Pid {
		t.Errorf("siginfoPid = %d, want %d", got, c.Process.Pid)
	}
}

// With only intermediate zombies, each is found and reaped in turn
// without reading every process's stat.
func TestReapOrphansOnlyIntermediate(t *testing.T) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	intermediate := filepath.Join(t.TempDir(), "runc:[1:CHILD]")
	if err := os.Symlink(truePath, intermediate); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for range 3 {
		c := exec.Command(intermediate)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, c.Process.Pid)
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_PID, c.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
			t.Fatal(err)
		}
	}
	(&reaper{}).reap()
	for _, pid := range pids {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); !os.IsNotExist(err) {
			t.Errorf("runc:[1:CHILD] zombie %d not reaped: %v", pid, err)
		}
	}
}

// TestReapOrphanInit: a zombie runc:[2:INIT] (libcontainer's init of a
// start or exec that failed midway) is reaped at the second pass, not the
// first: one libcontainer waits for is its own by then. Left, it would
// keep its container's pid namespace, and the container, from ending.
func TestReapOrphanInit(t *testing.T) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	init := filepath.Join(t.TempDir(), "runc:[2:INIT]")
	if err := os.Symlink(truePath, init); err != nil {
		t.Fatal(err)
	}
	c := exec.Command(init)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, c.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	proc := filepath.Join("/proc", strconv.Itoa(c.Process.Pid))
	var r reaper
	r.reap()
	if _, err := os.Stat(proc); err != nil {
		t.Fatalf("reaped at the first pass: %v", err)
	}
	r.reap()
	if _, err := os.Stat(proc); !os.IsNotExist(err) {
		t.Errorf("not reaped at the second pass: %v", err)
	}
}
