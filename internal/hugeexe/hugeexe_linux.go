package hugeexe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/flock"
)

// ErrUnsupported says that the kernel gives tmpfs no huge pages: a copy
// would gain nothing.
var ErrUnsupported = errors.New("no transparent huge pages for tmpfs")

// shmemEnabled is the kernel's switch for tmpfs huge pages.
const shmemEnabled = "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

// Copy is a copy of the binary.
type Copy struct {
	// Path is the copy, to execute.
	Path string
	// File is the copy, open and under a shared lock: hand it to the
	// process that executes Path (exec.Cmd's ExtraFiles), then close it.
	File *os.File
}

// Ensure returns the copy in dir of the executable src (/proc/self/exe
// for the running binary), mounting dir and copying src when needed, and
// removes the copies in dir that nobody holds.
func Ensure(ctx context.Context, dir, src string) (Copy, error) {
	if err := supported(); err != nil {
		return Copy{}, err
	}
	in, err := os.Open(src)
	if err != nil {
		return Copy{}, fmt.Errorf("copying the binary: %w", err)
	}
	defer in.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(in.Fd()), &st); err != nil {
		return Copy{}, fmt.Errorf("copying the binary: %w", err)
	}
	name := fmt.Sprintf("berth-%x-%x-%x-%x", st.Dev, st.Ino, st.Size, st.Mtim.Nano())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Copy{}, fmt.Errorf("copying the binary: %w", err)
	}
	unlock, err := flock.Lock(ctx, dir+".lock")
	if err != nil {
		return Copy{}, fmt.Errorf("copying the binary: %w", err)
	}
	defer unlock()
	if err := mount(dir, st.Size); err != nil {
		return Copy{}, err
	}
	path := filepath.Join(dir, name)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		err = copyFile(path, in, st.Size)
		if err == nil {
			f, err = os.Open(path)
		}
	}
	if err != nil {
		return Copy{}, fmt.Errorf("copying the binary to %s: %w", dir, err)
	}
	// No one holds an exclusive lock but under dir's lock, which this
	// process holds.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		f.Close()
		return Copy{}, fmt.Errorf("locking %s: %w", path, err)
	}
	removeUnheld(dir, name)
	return Copy{Path: path, File: f}, nil
}

// supported says whether tmpfs can hold files in huge pages.
func supported() error {
	b, err := os.ReadFile(shmemEnabled)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	if strings.Contains(string(b), "[deny]") {
		return fmt.Errorf("%w: %s is deny", ErrUnsupported, shmemEnabled)
	}
	return nil
}

// mount mounts a tmpfs with huge pages on dir, unless one is there: room
// for four binaries of size bytes (the one in use, one being made, and
// old ones still running), at least 64 MiB.
func mount(dir string, size int64) error {
	var fsst unix.Statfs_t
	if err := unix.Statfs(dir, &fsst); err != nil {
		return fmt.Errorf("mounting %s: %w", dir, err)
	}
	var here, parent unix.Stat_t
	if err := unix.Stat(dir, &here); err != nil {
		return fmt.Errorf("mounting %s: %w", dir, err)
	}
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil {
		return fmt.Errorf("mounting %s: %w", dir, err)
	}
	if fsst.Type == unix.TMPFS_MAGIC && here.Dev != parent.Dev {
		return nil
	}
	limit := max(64<<20, (4*size+1<<20-1)&^(1<<20-1))
	opts := fmt.Sprintf("mode=0700,huge=within_size,size=%d,nr_inodes=64", limit)
	if err := unix.Mount("berth-exe", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mounting a tmpfs (%s) on %s: %w", opts, dir, err)
	}
	return nil
}

// copyFile writes the size bytes of in to path, whole or not at all. The
// file gets its size first: huge=within_size gives a page 2 MiB only
// where it lies within the file.
func copyFile(path string, in io.Reader, size int64) (err error) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o500)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err := out.Truncate(size); err != nil {
		return err
	}
	n, err := io.Copy(out, in)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("copied %d bytes of %d", n, size)
	}
	return os.Rename(tmp, path)
}

// removeUnheld removes the files in dir but keep that no process holds a
// lock on: copies of binaries no supervisor runs any more, and what an
// interrupted copy left.
func removeUnheld(dir, keep string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() == keep {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.Remove(p)
		}
		f.Close()
	}
}
