package compose

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/image"
	"github.com/berth-dev/berth/runtime/spec"
	"github.com/berth-dev/berth/volume"
)

// VolumeManager is what the verbs need of the volume package.
type VolumeManager interface {
	Create(name, project string, labels map[string]string) (*volume.Volume, bool, error)
	// CreateWithOptions records driver options with a new volume.
	CreateWithOptions(name, project string, labels, options map[string]string) (*volume.Volume, bool, error)
	Get(name string) (*volume.Volume, error)
	Remove(name string) error
	List() ([]*volume.Volume, error)
	// DiskUsage is the size of a volume's data, in bytes.
	DiskUsage(name string) (int64, error)

	SnapshotsSupported() error
	SaveSnapshot(project, name string, services, volumes []string) (*volume.Snapshot, error)
	RestoreSnapshot(project, name string, stop, start func() error) (*volume.Snapshot, error)
	GetSnapshot(project, name string) (*volume.Snapshot, error)
	Snapshots(project string) ([]*volume.Snapshot, error)
	RemoveSnapshot(project, name string) error
}

// anonymousLabel marks the volumes berth makes for a volume entry without
// a source and for an image's VOLUME: `down -v` removes them with the
// project's named ones, `volume prune` without -a only them.
const anonymousLabel = volume.AnonymousLabel

// volumeName is the name of a project volume: its name:, else
// <project>_<key>.
func volumeName(p *types.Project, key string) string {
	if v, ok := p.Volumes[key]; ok && v.Name != "" {
		return v.Name
	}
	return p.Name + "_" + key
}

// mountOptions are what mounts needs to know of the container beyond its
// service.
type mountOptions struct {
	number int
	// oneOff is the id of a one-off container (run): its anonymous
	// volumes are its own, not those of replica number.
	oneOff string
	// image is the container's image: its VOLUME entries become
	// anonymous volumes.
	image *image.Image
	// containers are berth's containers: where volumes_from finds its
	// sources, and, with renew, who uses a volume. Needed only then.
	containers []ContainerStatus
	// previous is the container a recreate replaces: its anonymous
	// volumes go to the new one, as Docker's do, unless renew (up -V).
	previous *ContainerStatus
	renew    bool
	progress func(Progress)
}

// mounts turns a service's volumes into the mounts of one container:
//
//   - named volumes (created when missing, with their driver options; an
//     external one must exist) and anonymous ones (one per replica and
//     target, kept across recreates);
//   - bind mounts (a missing host directory is created, as the short
//     syntax asks) and tmpfs;
//   - then what volumes_from copies from other containers, at targets the
//     service does not mount itself;
//   - then an anonymous volume at each of the image's VOLUME paths nothing
//     else is mounted at.
//
// Mounts are sorted parents first, as the Docker daemon sorts them, so
// that a mount inside another one is not hidden by it.
func mounts(p *types.Project, svc types.ServiceConfig, vm VolumeManager, o mountOptions) ([]spec.Mount, error) {
	if o.progress == nil {
		o.progress = func(Progress) {}
	}
	mb := mountBuilder{p: p, svc: svc, vm: vm, o: o}
	out, err := mb.service()
	if err != nil {
		return nil, err
	}
	taken := map[string]bool{}
	for _, m := range out {
		taken[m.Target] = true
	}
	for _, t := range svc.Tmpfs {
		target, _, _ := strings.Cut(t, ":")
		taken[path.Clean(target)] = true
	}
	from, err := volumesFrom(p, svc, o.containers)
	if err != nil {
		return nil, err
	}
	for _, m := range from {
		if !taken[m.Target] {
			out = append(out, m)
			taken[m.Target] = true
		}
	}
	if o.image != nil {
		paths, err := imageVolumes(o.image.Config.Config)
		if err != nil {
			return nil, &project.Error{Service: svc.Name, Key: "image", Err: fmt.Errorf("image %s: %w", svc.Image, err)}
		}
		for _, target := range paths {
			if taken[target] {
				continue
			}
			vol, err := mb.anonymous(target)
			if err != nil {
				return nil, &project.Error{Service: svc.Name, Key: "image", Err: fmt.Errorf("%w: the image's volume at %s: %w", errdefs.ErrUnavailable, target, err)}
			}
			out = append(out, spec.Mount{Type: "bind", Source: vol.Path, Target: target, CopyUp: true, Volume: vol.Name})
			taken[target] = true
		}
	}
	sortMounts(out)
	return out, nil
}

// sortMounts puts a mount before those inside it: fewer path elements
// first, the order otherwise kept.
func sortMounts(ms []spec.Mount) {
	depth := func(m spec.Mount) int {
		clean := path.Clean(m.Target)
		if clean == "/" {
			return 0
		}
		return strings.Count(clean, "/")
	}
	slices.SortStableFunc(ms, func(a, b spec.Mount) int { return depth(a) - depth(b) })
}

// mountBuilder makes the mounts of one container of a service.
type mountBuilder struct {
	p   *types.Project
	svc types.ServiceConfig
	vm  VolumeManager
	o   mountOptions
}

// service mounts the service's own volumes entries.
func (mb *mountBuilder) service() ([]spec.Mount, error) {
	svc := mb.svc
	var out []spec.Mount
	seen := map[string]bool{}
	for i, v := range svc.Volumes {
		key := "volumes[" + strconv.Itoa(i) + "]"
		bad := func(kind error, format string, a ...any) error {
			return &project.Error{Service: svc.Name, Key: key, Err: fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, a...))}
		}
		if !filepath.IsAbs(v.Target) {
			return nil, bad(errdefs.ErrInvalidArgument, "target %q is not an absolute path", v.Target)
		}
		target := path.Clean(v.Target)
		if seen[target] {
			return nil, bad(errdefs.ErrInvalidArgument, "duplicate mount point %s", target)
		}
		seen[target] = true
		switch v.Type {
		case types.VolumeTypeVolume:
			var vol *volume.Volume
			var err error
			if v.Source == "" {
				if vol, err = mb.anonymous(target); err != nil {
					return nil, bad(errdefs.ErrUnavailable, "%v", err)
				}
			} else if vol, err = mb.named(v.Source); err != nil {
				return nil, &project.Error{Service: svc.Name, Key: key, Err: err}
			}
			m, err := volumeMount(vol, v, target)
			if err != nil {
				return nil, &project.Error{Service: svc.Name, Key: key, Err: fmt.Errorf("volume %s: %w", vol.Name, err)}
			}
			out = append(out, m)
		case types.VolumeTypeBind:
			if !filepath.IsAbs(v.Source) {
				return nil, bad(errdefs.ErrInvalidArgument, "source %q is not an absolute path", v.Source)
			}
			if err := bindSource(v); err != nil {
				return nil, &project.Error{Service: svc.Name, Key: key, Err: err}
			}
			m := spec.Mount{Type: "bind", Source: v.Source, Target: target, ReadOnly: v.ReadOnly}
			if v.Bind != nil && v.Bind.Propagation != "" {
				m.Options = append(m.Options, v.Bind.Propagation)
			}
			out = append(out, m)
		case types.VolumeTypeTmpfs:
			m := spec.Mount{Type: "tmpfs", Target: target}
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

// bindSource checks a bind mount's host path, creating a missing
// directory only when the entry says so (create_host_path, which the
// short syntax implies; the long syntax's default is false, as Docker's
// --mount refuses a missing source). A symlink is followed, as the mount follows it; a
// dangling one is an error: nothing is created where it points.
func bindSource(v types.ServiceVolumeConfig) error {
	_, err := os.Stat(v.Source)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if v.Bind == nil || !bool(v.Bind.CreateHostPath) {
		return fmt.Errorf("%w: bind source path %s does not exist", errdefs.ErrNotFound, v.Source)
	}
	if fi, err := os.Lstat(v.Source); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		to, _ := os.Readlink(v.Source)
		return fmt.Errorf("%w: bind source path %s is a symlink to %s, which does not exist: create it, berth does not follow links to make directories", errdefs.ErrNotFound, v.Source, to)
	}
	if err := os.MkdirAll(v.Source, 0o755); err != nil {
		return fmt.Errorf("%w: creating %s: %v", errdefs.ErrUnavailable, v.Source, err)
	}
	return nil
}

// named returns the project volume key, created with its labels and
// driver options when missing; an external one must exist.
func (mb *mountBuilder) named(key string) (*volume.Volume, error) {
	p := mb.p
	cfg, ok := p.Volumes[key]
	if !ok {
		return nil, fmt.Errorf("%w: volume %q is not declared in the top-level volumes", errdefs.ErrNotFound, key)
	}
	if cfg.Driver != "" && cfg.Driver != "local" {
		return nil, fmt.Errorf("%w: volume %q: driver %q: berth keeps local volumes", errdefs.ErrNotImplemented, key, cfg.Driver)
	}
	name := volumeName(p, key)
	if cfg.External {
		vol, err := mb.vm.Get(name)
		if err != nil {
			return nil, fmt.Errorf("volume %q declared as external, but could not be found: %w", name, err)
		}
		return vol, nil
	}
	st, err := parseDriverOpts(cfg.DriverOpts)
	if err == nil && st.kind == "bind" {
		err = checkDevice(st.device)
	}
	if err != nil {
		return nil, &project.Error{Key: "volumes." + key, Err: err}
	}
	labels := map[string]string{ProjectLabel: p.Name, volumeLabel: key}
	maps.Copy(labels, cfg.Labels)
	vol, created, err := mb.vm.CreateWithOptions(name, p.Name, labels, cfg.DriverOpts)
	if err != nil {
		return nil, fmt.Errorf("%w: volume %s: %v", errdefs.ErrUnavailable, name, err)
	}
	if created {
		mb.o.progress(Progress{Resource: "Volume " + name, Status: StatusCreated})
	} else if err := sameOptions(key, vol, cfg); err != nil {
		return nil, err
	}
	return vol, nil
}

// sameOptions fails when the project's volume key exists with other
// driver options than the file gives it.
func sameOptions(key string, vol *volume.Volume, cfg types.VolumeConfig) error {
	if maps.Equal(vol.Options, cfg.DriverOpts) {
		return nil
	}
	return &project.Error{Key: "volumes." + key, Err: fmt.Errorf("%w: volume %s exists with other driver_opts (%s)", errdefs.ErrConflict, vol.Name, optionsString(vol.Options)),
		Hint: fmt.Sprintf("remove it (`berth down -v`, or `berth volume rm %s`) for berth to make it again with the file's options", vol.Name)}
}

// checkResources fails, before anything is made, when the volumes and
// networks that services use cannot be had as the file says: an external
// one missing, or a volume of the project's that exists with other
// driver_opts (docker compose, too, will not use a volume whose
// configuration changed). Found later, at a container's create, these
// would leave the networks and the containers made before it.
func checkResources(p *types.Project, services []string, vm VolumeManager, nm NetworkManager) error {
	vols, nets := map[string]bool{}, map[string]bool{}
	for _, s := range services {
		svc := p.Services[s]
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source != "" {
				vols[v.Source] = true
			}
		}
		for _, k := range serviceNetworks(svc) {
			nets[k] = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(vols)) {
		cfg, ok := p.Volumes[key]
		if !ok {
			continue // the container's mounts say so
		}
		name := volumeName(p, key)
		vol, err := vm.Get(name)
		switch {
		case bool(cfg.External) && err != nil:
			return fmt.Errorf("volume %q declared as external, but could not be found: %w", name, err)
		case !bool(cfg.External) && err == nil:
			if err := sameOptions(key, vol, cfg); err != nil {
				return err
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(nets)) {
		if n, ok := p.Networks[key]; ok && bool(n.External) {
			cfg, err := networkConfig(p, key)
			if err != nil {
				return err
			}
			if _, err := nm.Get(cfg.Name); err != nil {
				return fmt.Errorf("network %s declared as external, but could not be found: %w", cfg.Name, errdefs.ErrNotFound)
			}
		}
	}
	return nil
}

func optionsString(opts map[string]string) string {
	if len(opts) == 0 {
		return "none"
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		kv = append(kv, k+"="+opts[k])
	}
	return strings.Join(kv, ", ")
}

// volumeMount mounts vol at target as the service's entry v asks: its
// own directory, the host directory or the tmpfs its driver options
// name (see volumeStorage), read-only if asked, a subpath of it if asked,
// filled from the image at its first use unless nocopy.
func volumeMount(vol *volume.Volume, v types.ServiceVolumeConfig, target string) (spec.Mount, error) {
	st, err := parseDriverOpts(vol.Options)
	if err != nil {
		return spec.Mount{}, err
	}
	nocopy := v.Volume != nil && v.Volume.NoCopy
	subpath := ""
	if v.Volume != nil {
		subpath = v.Volume.Subpath
	}
	m := spec.Mount{Type: "bind", Target: target, ReadOnly: v.ReadOnly, CopyUp: !nocopy, Volume: vol.Name}
	switch st.kind {
	case "tmpfs":
		if subpath != "" {
			return spec.Mount{}, fmt.Errorf("%w: subpath %q: a tmpfs volume has none", errdefs.ErrInvalidArgument, subpath)
		}
		// Exec allowed, as on Docker's tmpfs volumes; filled from the
		// image by the runtime as it mounts it (runc's tmpcopyup), as
		// Docker fills a new volume.
		m.Type, m.CopyUp = "tmpfs", false
		m.Options = append([]string{"exec"}, st.tmpfs...)
		if !nocopy {
			m.Options = append(m.Options, "tmpcopyup")
		}
		return m, nil
	case "bind":
		if err := checkDevice(st.device); err != nil {
			return spec.Mount{}, err
		}
		m.Source, m.ReadOnly = st.device, m.ReadOnly || st.readOnly
		if st.flag == "bind" {
			m.Options = []string{"bind"}
		}
	default:
		m.Source = vol.Path
	}
	if subpath != "" {
		src, err := subpathSource(m.Source, subpath)
		if err != nil {
			return spec.Mount{}, err
		}
		m.Source = src
	}
	return m, nil
}

// subpathSource is a volume's subpath, created when missing. The volume's
// content is the containers' to write, so a symlink in it is resolved
// inside the volume: it never leads the mount, or the directories made
// for it, out of the volume.
func subpathSource(root, subpath string) (string, error) {
	if !filepath.IsLocal(subpath) {
		return "", fmt.Errorf("%w: subpath %q leaves the volume", errdefs.ErrInvalidArgument, subpath)
	}
	src, err := securejoin.SecureJoin(root, subpath)
	if err != nil {
		return "", fmt.Errorf("subpath %q: %w", subpath, err)
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", fmt.Errorf("subpath %q: %w", subpath, err)
	}
	return src, nil
}

// anonymousName matches the names anonymousVolumeName gives, after the
// <project>_<service>_ prefix: 12 hex digits, and a suffix for a volume
// made again by up -V while its predecessor was in use.
var anonymousName = regexp.MustCompile(`^[0-9a-f]{12}(-[0-9a-f]{8})?$`)

// anonymous returns the container's anonymous volume at target: the one
// the container it replaces had there, else the one of its replica
// number (kept across `down` and `up` as across recreates), made when
// missing. With renew the volume is a new one: the old one is removed
// when no other container uses it, else left to `volume prune`.
func (mb *mountBuilder) anonymous(target string) (*volume.Volume, error) {
	p, svc := mb.p, mb.svc
	h := sha256.New()
	if mb.o.oneOff != "" {
		fmt.Fprintf(h, "%s\x00%s\x00run %s\x00%s", p.Name, svc.Name, mb.o.oneOff, target)
	} else {
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00%s", p.Name, svc.Name, mb.o.number, target)
	}
	name := p.Name + "_" + svc.Name + "_" + hex.EncodeToString(h.Sum(nil))[:12]
	if mb.o.renew {
		if v, err := mb.vm.Get(name); err == nil {
			if len(volumeUsers(mb.o.containers, v)) > 0 {
				suffix := make([]byte, 4)
				rand.Read(suffix)
				name += "-" + hex.EncodeToString(suffix)
			} else if err := mb.vm.Remove(name); err != nil {
				return nil, fmt.Errorf("renewing anonymous volume %s: %w", name, err)
			}
		}
	} else if mb.o.previous != nil {
		for _, m := range mb.o.previous.Mounts {
			if m.Target == target && ownAnonymous(p.Name, svc.Name, m.Volume) {
				name = m.Volume
			}
		}
	}
	vol, _, err := mb.vm.Create(name, p.Name, map[string]string{ProjectLabel: p.Name, anonymousLabel: "true"})
	return vol, err
}

// ownAnonymous reports whether name is one of the service's anonymous
// volumes (not another service's, shared through volumes_from).
func ownAnonymous(projectName, service, name string) bool {
	rest, ok := strings.CutPrefix(name, projectName+"_"+service+"_")
	return ok && anonymousName.MatchString(rest)
}

// maxImageVolumes bounds the anonymous volumes an image can ask for: an
// untrusted image must not make a container create thousands of
// directories.
const maxImageVolumes = 128

// imageVolumes are the paths of an image's VOLUME entries, cleaned,
// without duplicates, sorted. The image is untrusted (RELIABILITY.md): a
// path must be absolute, must not climb with "..", must not be / or lie
// in /proc, /sys or /dev, which the runtime mounts itself, and must hold
// no control character.
func imageVolumes(cfg v1.Config) ([]string, error) {
	if len(cfg.Volumes) > maxImageVolumes {
		return nil, fmt.Errorf("%w: %d VOLUME entries: berth accepts at most %d", errdefs.ErrInvalidArgument, len(cfg.Volumes), maxImageVolumes)
	}
	var out []string
	for _, raw := range slices.Sorted(maps.Keys(cfg.Volumes)) {
		bad := func(why string) error {
			return fmt.Errorf("%w: VOLUME %q: %s", errdefs.ErrInvalidArgument, raw, why)
		}
		if strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, bad("holds a control character")
		}
		if !path.IsAbs(raw) {
			return nil, bad("is not an absolute path")
		}
		if slices.Contains(strings.Split(raw, "/"), "..") {
			return nil, bad(`climbs with ".."`)
		}
		clean := path.Clean(raw)
		if clean == "/" {
			return nil, bad("a volume cannot be mounted over /")
		}
		for _, sys := range []string{"/proc", "/sys", "/dev"} {
			if clean == sys || strings.HasPrefix(clean, sys+"/") {
				return nil, bad("is in " + sys + ", which the runtime mounts itself")
			}
		}
		if !slices.Contains(out, clean) {
			out = append(out, clean)
		}
	}
	slices.Sort(out)
	return out, nil
}

// volumesFrom copies the mounts of the containers a service's
// volumes_from names, as Docker's --volumes-from does: every volume and
// bind mount (not the source's own tmpfs), read-only with :ro, read-only
// where the source's is. A service stands for its first replica, as in
// docker compose; "container:NAME" for any berth container, by name or
// id. What the mounts hold is the source's: nothing is copied into them.
func volumesFrom(p *types.Project, svc types.ServiceConfig, cs []ContainerStatus) ([]spec.Mount, error) {
	var out []spec.Mount
	for i, entry := range svc.VolumesFrom {
		key := "volumes_from[" + strconv.Itoa(i) + "]"
		bad := func(kind error, format string, a ...any) error {
			return &project.Error{Service: svc.Name, Key: key, Err: fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, a...))}
		}
		source, isContainer := strings.CutPrefix(entry, types.ContainerPrefix)
		source, mode, _ := strings.Cut(source, ":")
		switch mode {
		case "", "rw", "ro":
		default:
			return nil, bad(errdefs.ErrInvalidArgument, "%q: the mode is ro or rw, not %q", entry, mode)
		}
		if source == "" {
			return nil, bad(errdefs.ErrInvalidArgument, "%q names no service or container", entry)
		}
		var from *ContainerStatus
		if isContainer {
			for i, c := range cs {
				if c.Name == source || c.ID == source || len(source) >= 12 && strings.HasPrefix(c.ID, source) {
					from = &cs[i]
					break
				}
			}
			if from == nil {
				return nil, bad(errdefs.ErrNotFound, "no container %q", source)
			}
		} else {
			if _, ok := p.Services[source]; !ok {
				return nil, bad(errdefs.ErrNotFound, "service %q is not defined", source)
			}
			id := ContainerID(p.Name, source, 1)
			for i, c := range cs {
				if c.ID == id {
					from = &cs[i]
				}
			}
			if from == nil {
				return nil, bad(errdefs.ErrFailedPrecondition, "service %q has no container to share volumes with: bring it up first (up without --no-deps does)", source)
			}
		}
		for _, m := range from.Mounts {
			if m.Volume == "" && m.Type != "bind" {
				continue
			}
			m.ReadOnly = m.ReadOnly || mode == "ro"
			m.CopyUp = false
			m.Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "tmpcopyup" })
			out = append(out, m)
		}
	}
	return out, nil
}

// volumeUsers are the names of the containers that mount a volume. A
// mount made before berth recorded volume names is recognised by its
// source, the volume's directory or a subpath of it.
func volumeUsers(cs []ContainerStatus, v *volume.Volume) []string {
	var names []string
	for _, c := range cs {
		if slices.ContainsFunc(c.Mounts, func(m spec.Mount) bool {
			return m.Volume == v.Name || m.Volume == "" && m.Source != "" && (m.Source == v.Path || strings.HasPrefix(m.Source, v.Path+"/"))
		}) {
			names = append(names, c.Name)
		}
	}
	return names
}

// removeVolumes removes the project's named volumes (never external ones)
// and its anonymous ones, but those the containers left still mount:
// down -v.
func removeVolumes(p *types.Project, vm VolumeManager, left []ContainerStatus, progress func(Progress), warn func(string)) error {
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
		v, err := vm.Get(name)
		if err != nil {
			continue
		}
		if users := volumeUsers(left, v); len(users) > 0 {
			// down of some services, or a volume another project mounts.
			warn(fmt.Sprintf("Volume %s: resource is still in use by %s", name, strings.Join(users, ", ")))
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

// removeAnonymous removes the anonymous volumes among names that no
// container in cs uses (`rm -v`, `run --rm`, `up -V`) and returns those
// it removed; the others stay for `volume prune`.
func removeAnonymous(vm VolumeManager, cs []ContainerStatus, names []string) ([]string, error) {
	var removed []string
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		v, err := vm.Get(name)
		if err != nil || v.Labels[anonymousLabel] != "true" || len(volumeUsers(cs, v)) > 0 {
			continue
		}
		if err := vm.Remove(name); err != nil {
			return removed, fmt.Errorf("removing volume %s: %w", name, err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}

// ownAnonymousVolumes are the names of the anonymous volumes a container
// of service svc mounts that are its own, not those volumes_from shares
// with it.
func ownAnonymousVolumes(projectName, service string, mounts []spec.Mount) []string {
	var names []string
	for _, m := range mounts {
		if m.Volume != "" && ownAnonymous(projectName, service, m.Volume) {
			names = append(names, m.Volume)
		}
	}
	return names
}
