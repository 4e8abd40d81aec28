package logs

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCopyPty: a pty turns "\n" into "\r\n", which Docker keeps in its
// records; and reading its master once the other side is closed fails with
// EIO, which is the end of the output, not an error.
func TestCopyPty(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pty number: %v", err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("opening the pty: %v", err)
	}
	if _, err := slave.Write([]byte("hello\nworld\n")); err != nil {
		t.Fatal(err)
	}
	slave.Close()

	dir := t.TempDir()
	w := newWriter(t, dir, Options{})
	if err := Copy(context.Background(), master, "stdout", w); err != nil {
		t.Fatalf("Copy returned %v, want nil at the end of a pty's output", err)
	}
	if got, want := lines(readAll(t, dir, ReadOptions{Tail: -1})), []string{"hello\r\n", "world\r\n"}; !slices.Equal(got, want) {
		t.Errorf("read %q, want %q", got, want)
	}
}
