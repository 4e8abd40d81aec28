package volume

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/flock"
)

// The volume store. Snapshots must take the same time for 10 GiB as for
// 1 GiB, so each volume's data is a btrfs subvolume: a snapshot is a new
// root pointing at the same blocks, copied only when written. When the
// volumes directory is not on btrfs already, berth keeps a btrfs
// filesystem in a sparse file beside it (<root>.btrfs) mounted there
// through a loop device, made at the first volume and mounted again by
// the next command after a reboot. Without btrfs (no kernel support, no
// mkfs.btrfs, no loop devices, or volumes made before the store existed)
// volumes are plain directories and snapshots say why they cannot work.

// poolImage is the file that holds the volume store's filesystem.
func (m *Manager) poolImage() string { return m.root + ".btrfs" }

// lock serialises the changes to the store and its volumes between
// processes. It lives beside the store, not in it: the store may be
// mounted over the directory.
func (m *Manager) lock() (func(), error) {
	return flock.Lock(context.Background(), m.root+".lock")
}

// openStore finds out how the volumes are kept: on btrfs (mounting the
// store's file when a reboot unmounted it) or as plain directories.
func (m *Manager) openStore() error {
	ok, err := isBtrfs(m.root)
	if err != nil || ok {
		m.btrfs = ok
		return err
	}
	if _, err := os.Stat(m.poolImage()); err != nil {
		m.why = m.poolUnavailable()
		return nil
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return m.mountPool()
}

// poolUnavailable says why no btrfs store can be made for the volumes,
// or "" when one can.
func (m *Manager) poolUnavailable() string {
	fss, err := os.ReadFile("/proc/filesystems")
	if err != nil || !bytes.Contains(fss, []byte("\tbtrfs\n")) {
		return "the kernel has no btrfs"
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return "this host has no loop devices (/dev/loop-control)"
	}
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		return "mkfs.btrfs is not installed (Debian: apt-get install btrfs-progs)"
	}
	entries, err := os.ReadDir(m.root)
	if err != nil {
		return err.Error()
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			return fmt.Sprintf("%s holds volumes made before berth kept them on btrfs (remove them to switch)", m.root)
		}
	}
	return ""
}

// ensurePool makes the btrfs store when there is none and one can be
// made. Called with the lock held.
func (m *Manager) ensurePool() error {
	if m.btrfs || m.why != "" {
		return nil
	}
	if ok, err := isBtrfs(m.root); err != nil || ok {
		m.btrfs = ok
		return err
	}
	if _, err := os.Stat(m.poolImage()); err == nil {
		return m.mountPool()
	}
	if m.why = m.poolUnavailable(); m.why != "" {
		return nil
	}
	// As large as the disk that holds it, and sparse: it takes the
	// room its data take.
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(m.root), &st); err != nil {
		return fmt.Errorf("statfs %s: %w", filepath.Dir(m.root), err)
	}
	size := max(int64(st.Blocks)*st.Bsize, 1<<30)
	tmp := m.poolImage() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating the volume store: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("creating the volume store: %w", err)
	}
	if out, err := exec.Command("mkfs.btrfs", "-q", "-f", tmp).CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("creating the volume store: mkfs.btrfs: %w: %s", err, bytes.TrimSpace(out))
	}
	// Renamed once whole: a crash before leaves no store, and the next
	// volume makes it again.
	if err := os.Rename(tmp, m.poolImage()); err != nil {
		os.Remove(tmp)
		return err
	}
	return m.mountPool()
}

// mountPool mounts the store's file on the volumes directory, unless a
// process got there first.
func (m *Manager) mountPool() error {
	if ok, err := isBtrfs(m.root); err != nil || ok {
		m.btrfs = ok
		return err
	}
	dev, f, err := attachLoop(m.poolImage())
	if err != nil {
		return fmt.Errorf("mounting the volume store %s: %w", m.poolImage(), err)
	}
	// The device stays while the filesystem is mounted, and goes with it.
	defer f.Close()
	// discard gives the disk back the room of deleted data.
	err = unix.Mount(dev, m.root, "btrfs", unix.MS_NOATIME, "discard=async")
	if errors.Is(err, unix.EINVAL) {
		err = unix.Mount(dev, m.root, "btrfs", unix.MS_NOATIME, "")
	}
	if err != nil {
		return fmt.Errorf("mounting the volume store %s on %s: %w", m.poolImage(), m.root, err)
	}
	m.btrfs = true
	return nil
}

// makeData makes a volume's data directory: a subvolume on btrfs.
func (m *Manager) makeData(path string) error {
	if !m.btrfs {
		if err := os.Mkdir(path, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return nil
	}
	if isSubvolume(path) {
		return nil
	}
	// A plain directory left by a crash between mkdir and ioctl has
	// nothing in it yet.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := createSubvolume(path); err != nil {
		return err
	}
	return os.Chmod(path, 0o755)
}

// removeData removes a volume's directory, its subvolumes first.
func (m *Manager) removeData(dir string) error {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if p := filepath.Join(dir, e.Name()); isSubvolume(p) {
			if err := destroySubvolume(p); err != nil {
				return err
			}
		}
	}
	return os.RemoveAll(dir)
}
