package openat2

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenWhileMounting: a path through ".." resolved in a root while
// something else mounts and unmounts on the host opens every time (the
// kernel alone gives up with EAGAIN now and then).
func TestOpenWhileMounting(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root")
		}
		t.Skip("needs root")
	}
	root := t.TempDir()
	for _, d := range []string{"a/b", "c", "m"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rootfd)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		m := filepath.Join(root, "m")
		for !stop.Load() {
			if unix.Mount("tmpfs", m, "tmpfs", 0, "") == nil {
				unix.Unmount(m, unix.MNT_DETACH)
			}
		}
	}()
	defer func() { stop.Store(true); <-done }()
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT}
	for i := 0; i < 20000; i++ {
		fd, err := Open(rootfd, "a/b/../../../../c", how)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		unix.Close(fd)
	}
}
