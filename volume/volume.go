// Package volume keeps named volumes: a directory per volume under the
// manager's root (0700, so that no unprivileged host user reads them),
// its data in <name>/_data as in Docker, its labels in <name>/volume.json.
package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// Volume is a named volume.
type Volume struct {
	Name    string            `json:"name"`
	Project string            `json:"project,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
	// Options are the driver options it was created with (driver_opts,
	// `volume create --opt`), as `volume inspect` shows them.
	Options map[string]string `json:"options,omitempty"`
	// Path is the directory containers mount: <root>/<name>/_data.
	Path string `json:"-"`
}

// AnonymousLabel marks an anonymous volume: one a container made for
// itself, named by berth, which goes with it (rm -v, run --rm).
const AnonymousLabel = "berth.anonymous"

// Manager creates and removes volumes.
type Manager struct {
	root string
	// btrfs says each volume's data is a subvolume (snapshots work);
	// otherwise why says why not.
	btrfs bool
	why   string
}

// New returns a manager of the volumes under root (BERTH_ROOT/volumes).
func New(root string) (*Manager, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", root, err)
	}
	m := &Manager{root: root}
	if err := m.openStore(); err != nil {
		return nil, err
	}
	return m, nil
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func (m *Manager) dir(name string) string { return filepath.Join(m.root, name) }

// Get returns a volume; errdefs.ErrNotFound when there is none.
func (m *Manager) Get(name string) (*Volume, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("%w: invalid volume name %q", errdefs.ErrInvalidArgument, name)
	}
	b, err := os.ReadFile(filepath.Join(m.dir(name), "volume.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("volume %s: %w", name, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var v Volume
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	v.Path = filepath.Join(m.dir(name), "_data")
	return &v, nil
}

// create creates a volume, or returns the one of that name. created says
// whether it is new.
func (m *Manager) create(name, project string, labels, options map[string]string) (*Volume, bool, error) {
	if !validName.MatchString(name) {
		return nil, false, fmt.Errorf("%w: invalid volume name %q", errdefs.ErrInvalidArgument, name)
	}
	// Replicas of a service create their volumes at once: one creates it.
	unlock, err := m.lock()
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	if err := m.ensurePool(); err != nil {
		return nil, false, err
	}
	if v, err := m.Get(name); err == nil {
		return v, false, nil
	} else if !errdefs.IsNotFound(err) {
		return nil, false, err
	}
	data := filepath.Join(m.dir(name), "_data")
	// The data directory is what containers see: 0755 like Docker's, its
	// content copied from the image at the first mount. Its parent keeps
	// other users out.
	if err := os.MkdirAll(m.dir(name), 0o700); err != nil {
		return nil, false, err
	}
	if err := m.makeData(data); err != nil {
		return nil, false, err
	}
	v := &Volume{Name: name, Project: project, Labels: labels, Created: time.Now().UTC(), Path: data}
	v.Options = options
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false, err
	}
	// Written last: a volume without it is not one, and the next Create
	// makes it again.
	if err := atomicfile.WriteBytes(filepath.Join(m.dir(name), "volume.json"), 0o600, b); err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// Remove removes a volume and its data.
func (m *Manager) Remove(name string) error {
	if _, err := m.Get(name); err != nil {
		return err
	}
	// The metadata goes first: a crash half-way leaves no volume that
	// looks whole.
	if err := os.Remove(filepath.Join(m.dir(name), "volume.json")); err != nil {
		return err
	}
	return m.removeData(m.dir(name))
}

// List returns every volume.
func (m *Manager) List() ([]*Volume, error) {
	entries, err := os.ReadDir(m.root)
	if err != nil {
		return nil, err
	}
	var out []*Volume
	for _, e := range entries {
		if v, err := m.Get(e.Name()); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}
