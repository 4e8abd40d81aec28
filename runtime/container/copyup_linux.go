package container

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/spec"
)

// copyUp fills the empty source directory of a new volume with what the
// image holds at the mount's target, as Docker does at a volume's first
// use. The target is resolved inside the root filesystem (a symlink of
// the image cannot lead out of it), and nothing is followed while
// copying: links are copied as links.
func copyUp(rootfs string, m spec.Mount) error {
	// Replicas sharing a new volume start at once: one fills it, under a
	// lock on the directory, the others then find it filled.
	dir, err := os.Open(m.Source)
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := unix.Flock(int(dir.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", m.Source, err)
	}
	entries, err := os.ReadDir(m.Source)
	if err != nil || len(entries) > 0 {
		return err // not empty: filled before, or by the user
	}
	from, err := securejoin.SecureJoin(rootfs, m.Target)
	if err != nil {
		return fmt.Errorf("volume at %s: %w", m.Target, err)
	}
	st, err := os.Lstat(from)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // the image has nothing there
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return nil
	}
	// The volume's root takes the owner and mode of the image's directory
	// (postgres's data directory is postgres's, 0700).
	if err := copyMeta(m.Source, st); err != nil {
		return err
	}
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil || rel == "." {
			return err
		}
		dst := filepath.Join(m.Source, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(dst, 0o700); err != nil {
				return err
			}
			return copyMeta(dst, info)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, dst); err != nil {
				return err
			}
			if sys, ok := info.Sys().(*syscall.Stat_t); ok {
				return os.Lchown(dst, int(sys.Uid), int(sys.Gid))
			}
			return nil
		case d.Type().IsRegular():
			if err := copyFile(p, dst); err != nil {
				return err
			}
			return copyMeta(dst, info)
		}
		return nil // devices, sockets, fifos: not copied
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyMeta gives dst the owner and mode of info.
func copyMeta(dst string, info fs.FileInfo) error {
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		if err := os.Lchown(dst, int(sys.Uid), int(sys.Gid)); err != nil {
			return err
		}
	}
	return os.Chmod(dst, info.Mode().Perm()|info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}
