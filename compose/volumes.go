package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/spec"
	"github.com/berth-dev/berth/volume"
)

// VolumeManager is what the verbs need of the volume package.
type VolumeManager interface {
	Create(name, project string, labels map[string]string) (*volume.Volume, bool, error)
	Get(name string) (*volume.Volume, error)
	Remove(name string) error
	List() ([]*volume.Volume, error)

	SnapshotsSupported() error
	SaveSnapshot(project, name string, services, volumes []string) (*volume.Snapshot, error)
	RestoreSnapshot(project, name string) (*volume.Snapshot, error)
	GetSnapshot(project, name string) (*volume.Snapshot, error)
	Snapshots(project string) ([]*volume.Snapshot, error)
	RemoveSnapshot(project, name string) error
}

// anonymousLabel marks the volumes berth makes for a volume entry without
// a source: `down -v` removes them with the project's named ones.
const anonymousLabel = "berth.anonymous"

// volumeName is the name of a project volume: its name:, else
// <project>_<key>.
func volumeName(p *types.Project, key string) string {
	if v, ok := p.Volumes[key]; ok && v.Name != "" {
		return v.Name
	}
	return p.Name + "_" + key
}

// mounts turns a service's volumes into mounts of replica number: named
// volumes (created when missing; an external one must exist), anonymous
// ones (one per replica and target, kept across recreates), bind mounts
// (a missing host directory is created, as the short syntax asks) and
// tmpfs.
func mounts(p *types.Project, svc types.ServiceConfig, number int, vm VolumeManager, progress func(Progress)) ([]spec.Mount, error) {
	var out []spec.Mount
	for i, v := range svc.Volumes {
		key := "volumes[" + strconv.Itoa(i) + "]"
		bad := func(kind error, format string, a ...any) error {
			return &project.Error{Service: svc.Name, Key: key, Err: fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, a...))}
		}
		if !filepath.IsAbs(v.Target) {
			return nil, bad(errdefs.ErrInvalidArgument, "target %q is not an absolute path", v.Target)
		}
		switch v.Type {
		case types.VolumeTypeVolume:
			var vol *volume.Volume
			var err error
			if v.Source == "" {
				h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d\x00%s", p.Name, svc.Name, number, v.Target)))
				name := p.Name + "_" + svc.Name + "_" + hex.EncodeToString(h[:])[:12]
				vol, _, err = vm.Create(name, p.Name, map[string]string{ProjectLabel: p.Name, anonymousLabel: "true"})
			} else {
				cfg, ok := p.Volumes[v.Source]
				if !ok {
					return nil, bad(errdefs.ErrNotFound, "volume %q is not declared in the top-level volumes", v.Source)
				}
				if cfg.Driver != "" && cfg.Driver != "local" {
					return nil, bad(errdefs.ErrNotImplemented, "volume %q: driver %q: berth keeps local volumes", v.Source, cfg.Driver)
				}
				name := volumeName(p, v.Source)
				if cfg.External {
					if vol, err = vm.Get(name); err != nil {
						return nil, fmt.Errorf("volume %q declared as external, but could not be found: %w", name, err)
					}
				} else {
					labels := map[string]string{ProjectLabel: p.Name, "com.docker.compose.volume": v.Source}
					maps.Copy(labels, cfg.Labels)
					var created bool
					if vol, created, err = vm.Create(name, p.Name, labels); err == nil && created {
						progress(Progress{Resource: "Volume " + name, Status: StatusCreated})
					}
				}
			}
			if err != nil {
				return nil, bad(errdefs.ErrUnavailable, "%v", err)
			}
			src := vol.Path
			if v.Volume != nil && v.Volume.Subpath != "" {
				if !filepath.IsLocal(v.Volume.Subpath) {
					return nil, bad(errdefs.ErrInvalidArgument, "subpath %q leaves the volume", v.Volume.Subpath)
				}
				src = filepath.Join(src, v.Volume.Subpath)
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, err
				}
			}
			out = append(out, spec.Mount{Type: "bind", Source: src, Target: v.Target, ReadOnly: v.ReadOnly,
				CopyUp: !(v.Volume != nil && v.Volume.NoCopy)})
		case types.VolumeTypeBind:
			if !filepath.IsAbs(v.Source) {
				return nil, bad(errdefs.ErrInvalidArgument, "source %q is not an absolute path", v.Source)
			}
			if _, err := os.Stat(v.Source); errors.Is(err, fs.ErrNotExist) {
				if v.Bind != nil && !bool(v.Bind.CreateHostPath) {
					return nil, bad(errdefs.ErrNotFound, "bind source path %s does not exist", v.Source)
				}
				if err := os.MkdirAll(v.Source, 0o755); err != nil {
					return nil, bad(errdefs.ErrUnavailable, "creating %s: %v", v.Source, err)
				}
			}
			m := spec.Mount{Type: "bind", Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
			if v.Bind != nil && v.Bind.Propagation != "" {
				m.Options = append(m.Options, v.Bind.Propagation)
			}
			out = append(out, m)
		case types.VolumeTypeTmpfs:
			m := spec.Mount{Type: "tmpfs", Target: v.Target}
			if v.Tmpfs != nil && v.Tmpfs.Size > 0 {
				m.Options = append(m.Options, "size="+strconv.FormatInt(int64(v.Tmpfs.Size), 10))
			}
			if v.Tmpfs != nil && v.Tmpfs.Mode != 0 {
				m.Options = append(m.Options, fmt.Sprintf("mode=%o", v.Tmpfs.Mode))
			}
			out = append(out, m)
		default:
			return nil, bad(errdefs.ErrNotImplemented, "volume type %q is not supported", v.Type)
		}
	}
	return out, nil
}

// removeVolumes removes the project's named volumes (never external ones)
// and its anonymous ones: down -v.
func removeVolumes(p *types.Project, vm VolumeManager, progress func(Progress)) error {
	var names []string
	for key, v := range p.Volumes {
		if !v.External {
			names = append(names, volumeName(p, key))
		}
	}
	all, err := vm.List()
	if err != nil {
		return err
	}
	for _, v := range all {
		if v.Labels[ProjectLabel] == p.Name && v.Labels[anonymousLabel] == "true" {
			names = append(names, v.Name)
		}
	}
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		if _, err := vm.Get(name); err != nil {
			continue
		}
		progress(Progress{Resource: "Volume " + name, Status: StatusRemoving})
		if err := vm.Remove(name); err != nil {
			progress(Progress{Resource: "Volume " + name, Status: StatusError, Err: err})
			return err
		}
		progress(Progress{Resource: "Volume " + name, Status: StatusRemoved})
	}
	return nil
}
