package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// A snapshot keeps a project's named volumes as they were at one instant:
// a read-only subvolume of each under
// <root>/.snapshots/<project>/<name>/<volume>, beside snapshot.json.
// Saving and restoring take constant time whatever the size of the data:
// the filesystem shares the blocks and copies only those written later.

// Snapshot describes a saved snapshot.
type Snapshot struct {
	Name     string    `json:"name"`
	Project  string    `json:"project"`
	Created  time.Time `json:"created"`
	Services []string  `json:"services,omitempty"`
	// Volumes as they were when saved (names and labels), so that a
	// restore after `down -v` makes them again.
	Volumes []*Volume `json:"volumes"`
}

// ErrSnapshotsUnsupported is returned by the snapshot operations when the
// volumes are not kept on btrfs.
var ErrSnapshotsUnsupported = errors.New("snapshots are not available")

// SnapshotsSupported says whether snapshots work here, and why not. It
// makes the btrfs store when none exists yet.
func (m *Manager) SnapshotsSupported() error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return m.snapshotsSupported()
}

func (m *Manager) snapshotsSupported() error {
	if err := m.ensurePool(); err != nil {
		return err
	}
	if !m.btrfs {
		return fmt.Errorf("%w: %w: %s", ErrSnapshotsUnsupported, errdefs.ErrNotImplemented, m.why)
	}
	return nil
}

func (m *Manager) snapshotDir(project string) string {
	return filepath.Join(m.root, ".snapshots", project)
}

// SaveSnapshot snapshots the named volumes of a project at once. The
// caller keeps the volumes' writers still meanwhile (their containers
// paused). An existing snapshot of the name is an error.
func (m *Manager) SaveSnapshot(project, name string, services, volumes []string) (*Snapshot, error) {
	if !validName.MatchString(project) || !validName.MatchString(name) {
		return nil, fmt.Errorf("%w: invalid snapshot name %q", errdefs.ErrInvalidArgument, name)
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := m.snapshotsSupported(); err != nil {
		return nil, err
	}
	dir := m.snapshotDir(project)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	m.sweep(dir)
	if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
		return nil, fmt.Errorf("%w: snapshot %q of project %q exists (berth snapshot rm %s)", errdefs.ErrAlreadyExists, name, project, name)
	}
	s := &Snapshot{Name: name, Project: project, Created: time.Now().UTC(), Services: services}
	// Made whole under a temporary name, then renamed: a crash leaves no
	// half snapshot, and the next save or rm sweeps the rest.
	tmp := filepath.Join(dir, ".tmp-"+name+"-"+randomSuffix())
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, err
	}
	for _, vn := range volumes {
		v, err := m.Get(vn)
		if err != nil {
			m.removeData(tmp)
			return nil, err
		}
		if !isSubvolume(v.Path) {
			m.removeData(tmp)
			return nil, fmt.Errorf("%w: %w: volume %s was made before berth kept volumes on btrfs: remove it to have it made again", ErrSnapshotsUnsupported, errdefs.ErrNotImplemented, vn)
		}
		if err := snapshotSubvolume(v.Path, filepath.Join(tmp, vn), true); err != nil {
			m.removeData(tmp)
			return nil, fmt.Errorf("volume %s: %w", vn, err)
		}
		s.Volumes = append(s.Volumes, v)
	}
	b, err := json.Marshal(s)
	if err == nil {
		err = atomicfile.WriteBytes(filepath.Join(tmp, "snapshot.json"), 0o600, b)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		m.removeData(tmp)
		return nil, err
	}
	return s, nil
}

// GetSnapshot returns a snapshot; errdefs.ErrNotFound when there is none.
func (m *Manager) GetSnapshot(project, name string) (*Snapshot, error) {
	if !validName.MatchString(project) || !validName.MatchString(name) {
		return nil, fmt.Errorf("%w: invalid snapshot name %q", errdefs.ErrInvalidArgument, name)
	}
	b, err := os.ReadFile(filepath.Join(m.snapshotDir(project), name, "snapshot.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no snapshot %q of project %q", errdefs.ErrNotFound, name, project)
	}
	if err != nil {
		return nil, err
	}
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	return &s, nil
}

// Snapshots lists a project's snapshots, oldest first.
func (m *Manager) Snapshots(project string) ([]*Snapshot, error) {
	entries, err := os.ReadDir(m.snapshotDir(project))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Snapshot
	for _, e := range entries {
		if s, err := m.GetSnapshot(project, e.Name()); err == nil {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *Snapshot) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// RemoveSnapshot removes a snapshot.
func (m *Manager) RemoveSnapshot(project, name string) error {
	if _, err := m.GetSnapshot(project, name); err != nil {
		return err
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	// Out of sight at once; freed with the trash (FreeTrash).
	return m.discard(filepath.Join(m.snapshotDir(project), name))
}

// RestoreSnapshot puts a snapshot's volumes back as they were saved,
// making those that no longer exist. The new data is made first, beside
// the old; then stop is called (nil: nothing to call): the caller stops
// every container that uses the volumes, whose processes must not hold
// the old files; then each volume's data is exchanged at once for the
// new; then start is called (the caller starts them again), and only then
// is the old data put in the trash, for FreeTrash to free off the
// critical path.
func (m *Manager) RestoreSnapshot(project, name string, stop, start func() error) (*Snapshot, error) {
	s, err := m.GetSnapshot(project, name)
	if err != nil {
		return nil, err
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := m.snapshotsSupported(); err != nil {
		return nil, err
	}
	for _, saved := range s.Volumes {
		if err := m.prepareRestore(filepath.Join(m.snapshotDir(project), name, saved.Name), saved); err != nil {
			return nil, fmt.Errorf("restoring volume %s: %w", saved.Name, err)
		}
	}
	if stop != nil {
		if err := stop(); err != nil {
			for _, saved := range s.Volumes {
				destroySubvolume(filepath.Join(m.dir(saved.Name), ".restore"))
			}
			return nil, err
		}
	}
	var errs []error
	for _, saved := range s.Volumes {
		if err := m.commitRestore(saved); err != nil {
			errs = append(errs, fmt.Errorf("restoring volume %s: %w", saved.Name, err))
		}
	}
	if start != nil {
		errs = append(errs, start())
	}
	for _, saved := range s.Volumes {
		if err := m.discard(filepath.Join(m.dir(saved.Name), ".restore")); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// prepareRestore makes <volume>/.restore a writable snapshot of src.
func (m *Manager) prepareRestore(src string, saved *Volume) error {
	dir := m.dir(saved.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	next := filepath.Join(dir, ".restore")
	if err := destroySubvolume(next); err != nil {
		return err
	}
	return snapshotSubvolume(src, next, false)
}

// commitRestore exchanges the volume's data and .restore (a crash leaves
// one or the other in place, never neither), which then holds the old
// data; a volume removed since gets its metadata back as it was.
func (m *Manager) commitRestore(saved *Volume) error {
	dir := m.dir(saved.Name)
	next, data := filepath.Join(dir, ".restore"), filepath.Join(dir, "_data")
	if _, err := os.Lstat(data); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(next, data); err != nil {
			return err
		}
	} else if err := exchange(next, data); err != nil {
		return err
	}
	if _, err := m.Get(saved.Name); err == nil {
		return nil
	}
	b, err := json.Marshal(saved)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, "volume.json"), 0o600, b)
}

// sweep removes what a crash left in a project's snapshot directory.
func (m *Manager) sweep(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") || strings.HasPrefix(e.Name(), ".trash-") {
			m.removeData(filepath.Join(dir, e.Name()))
		}
	}
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
