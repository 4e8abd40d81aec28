package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Freeing a subvolume is not instant: btrfs drops the cached pages of its
// files and queues its extents for the cleaner in the ioctl itself, about
// 150 ms for a gigabyte of a database's files. Data that no container can
// see any more (what a restore replaced, a removed snapshot) is therefore
// moved to <root>/.trash, which is one rename, and freed later by
// FreeTrash: in the project's supervisor, off the command's path (or by
// the command itself when no supervisor runs). Whatever a supervisor
// leaving early did not free goes with the next restore or snapshot rm.

func (m *Manager) trashDir() string { return filepath.Join(m.root, ".trash") }

// discard moves path (a subvolume, or a directory holding subvolumes) to
// the trash; when it cannot be moved, it is freed at once.
func (m *Manager) discard(path string) error {
	dir := m.trashDir()
	if err := os.MkdirAll(dir, 0o700); err == nil {
		if err := os.Rename(path, filepath.Join(dir, filepath.Base(path)+"-"+randomSuffix())); err == nil {
			return nil
		}
	}
	return m.removeData(path)
}

// FreeTrash frees what is in the trash. Two at once are safe: each entry
// is freed by whichever gets it first.
func (m *Manager) FreeTrash() error {
	dir := m.trashDir()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("freeing volume data: %w", err)
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		var err error
		if isSubvolume(p) {
			err = destroySubvolume(p)
		} else {
			err = m.removeData(p)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
