package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs ioctls berth uses (linux/btrfs.h): a subvolume is a directory
// tree the filesystem can snapshot at once, whatever its size.
const (
	btrfsSuperMagic = 0x9123683e
	// _IOW(0x94, nr, 4096): both argument structures are 4096 bytes.
	iocSubvolCreate  = 0x5000940e
	iocSnapDestroy   = 0x5000940f
	iocSnapCreateV2  = 0x50009417
	subvolReadOnly   = 1 << 1
	firstSubvolInode = 256 // BTRFS_FIRST_FREE_OBJECTID: every subvolume's root
)

// btrfsVolArgs is struct btrfs_ioctl_vol_args.
type btrfsVolArgs struct {
	fd   int64
	name [4088]byte
}

// btrfsVolArgsV2 is struct btrfs_ioctl_vol_args_v2.
type btrfsVolArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	unused  [4]uint64
	name    [4040]byte
}

// isBtrfs reports whether dir is on btrfs.
func isBtrfs(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Type == btrfsSuperMagic, nil
}

// isSubvolume reports whether path is the root of a btrfs subvolume.
func isSubvolume(path string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Ino != firstSubvolInode {
		return false
	}
	ok, _ := isBtrfs(path)
	return ok
}

// subvolIoctl runs a subvolume ioctl on the directory that holds path,
// the request naming path's last element.
func subvolIoctl(path string, req uintptr, args unsafe.Pointer, name []byte) error {
	base := filepath.Base(path)
	if len(base) >= len(name) {
		return fmt.Errorf("subvolume name %q: %w", base, unix.ENAMETOOLONG)
	}
	copy(name, base)
	parent, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer parent.Close()
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, parent.Fd(), req, uintptr(args)); errno != 0 {
		return errno
	}
	return nil
}

// createSubvolume makes path a new, empty subvolume.
func createSubvolume(path string) error {
	var a btrfsVolArgs
	if err := subvolIoctl(path, iocSubvolCreate, unsafe.Pointer(&a), a.name[:]); err != nil {
		return fmt.Errorf("creating subvolume %s: %w", path, err)
	}
	return nil
}

// snapshotSubvolume makes dst a snapshot of the subvolume src: the same
// files, modes, owners and xattrs, in constant time. readOnly snapshots
// are kept as they are; writable ones become a volume's data.
func snapshotSubvolume(src, dst string, readOnly bool) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	a := btrfsVolArgsV2{fd: int64(f.Fd())}
	if readOnly {
		a.flags = subvolReadOnly
	}
	if err := subvolIoctl(dst, iocSnapCreateV2, unsafe.Pointer(&a), a.name[:]); err != nil {
		return fmt.Errorf("snapshotting %s: %w", src, err)
	}
	return nil
}

// destroySubvolume removes a subvolume and everything in it; the
// filesystem frees its blocks in the background. A path that is not a
// subvolume is removed as a directory tree.
func destroySubvolume(path string) error {
	if !isSubvolume(path) {
		err := os.RemoveAll(path)
		if err != nil {
			return fmt.Errorf("removing %s: %w", path, err)
		}
		return nil
	}
	var a btrfsVolArgs
	if err := subvolIoctl(path, iocSnapDestroy, unsafe.Pointer(&a), a.name[:]); err != nil {
		return fmt.Errorf("removing subvolume %s: %w", path, err)
	}
	return nil
}

// exchange swaps two paths at once: a crash leaves one or the other
// where each was, never neither.
func exchange(a, b string) error {
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("exchanging %s and %s: %w", a, b, err)
	}
	return nil
}

var errNoLoop = errors.New("no free loop device")

// attachLoop backs a new loop device with the file img; the device goes
// away by itself when the filesystem mounted from it is unmounted.
func attachLoop(img string) (string, *os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("loop devices: %w", err)
	}
	defer ctl.Close()
	backing, err := os.OpenFile(img, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	defer backing.Close()
	// Another process may take the free device first: ask again.
	for range 16 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("finding a free loop device: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		f, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", nil, fmt.Errorf("opening %s: %w", dev, err)
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		copy(cfg.Info.File_name[:], img)
		err = unix.IoctlLoopConfigure(int(f.Fd()), &cfg)
		if err == nil {
			return dev, f, nil
		}
		f.Close()
		if !errors.Is(err, unix.EBUSY) {
			return "", nil, fmt.Errorf("configuring %s: %w", dev, err)
		}
	}
	return "", nil, errNoLoop
}
