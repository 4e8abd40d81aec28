package volume

import (
	"io/fs"
	"maps"
	"path/filepath"
	"syscall"
)

// Create creates a volume without driver options, or returns the one of
// that name. created says whether it is new.
func (m *Manager) Create(name, project string, labels map[string]string) (*Volume, bool, error) {
	return m.create(name, project, labels, nil)
}

// CreateWithOptions is Create for a volume with driver options (the local
// driver's type, o and device). They are recorded, not interpreted: what
// they mean for a container's mount is the caller's to decide. A volume
// that exists is returned as it is, whatever its options.
func (m *Manager) CreateWithOptions(name, project string, labels, options map[string]string) (*Volume, bool, error) {
	if len(options) == 0 {
		options = nil
	}
	return m.create(name, project, labels, maps.Clone(options))
}

// DiskUsage is how many bytes a volume's data takes: the sizes of its
// files, a file with several links counted once, what the prune commands
// report as reclaimed. Data kept outside the volume (a bind of a host
// directory) is not counted.
func (m *Manager) DiskUsage(name string) (int64, error) {
	v, err := m.Get(name)
	if err != nil {
		return 0, err
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	err = filepath.WalkDir(v.Path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 && !d.IsDir() {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		if !d.IsDir() {
			total += info.Size()
		}
		return nil
	})
	return total, err
}
