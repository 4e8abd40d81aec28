package compose

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/volume"
)

// VolumeInfo is a volume as `volume ls`, `volume inspect` and `volumes`
// show it: Docker's fields for a local volume.
type VolumeInfo struct {
	Name string
	// Mountpoint is where the volume's data is on the host: its _data
	// directory, or the host directory a bind volume shows.
	Mountpoint string
	Labels     map[string]string
	Options    map[string]string
	CreatedAt  time.Time
	Anonymous  bool
	// UsedBy are the names of the containers that mount it, sorted.
	UsedBy []string
}

// Driver and Scope are those of every berth volume.
const (
	VolumeDriver = "local"
	VolumeScope  = "local"
)

// ListVolumes lists every volume, sorted by name, with the containers
// that use each.
func ListVolumes(ctx context.Context, store ContainerStore, vm VolumeManager) ([]VolumeInfo, error) {
	cs, err := store.List(ctx)
	if err != nil {
		return nil, err
	}
	vols, err := vm.List()
	if err != nil {
		return nil, err
	}
	out := make([]VolumeInfo, 0, len(vols))
	for _, v := range vols {
		out = append(out, volumeInfo(v, cs))
	}
	slices.SortFunc(out, func(a, b VolumeInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func volumeInfo(v *volume.Volume, cs []ContainerStatus) VolumeInfo {
	info := VolumeInfo{Name: v.Name, Mountpoint: v.Path, Labels: v.Labels, Options: v.Options, CreatedAt: v.Created,
		Anonymous: v.Labels[anonymousLabel] == "true", UsedBy: volumeUsers(cs, v)}
	if st, err := parseDriverOpts(v.Options); err == nil && st.kind == "bind" {
		info.Mountpoint = st.device
	}
	slices.Sort(info.UsedBy)
	return info
}

// InspectVolumes returns the volumes named, in that order. A name that
// is no volume is an error (NotFound, joined with the others) and the
// volumes found are still returned, as `docker volume inspect` prints
// them.
func InspectVolumes(ctx context.Context, store ContainerStore, vm VolumeManager, names []string) ([]VolumeInfo, error) {
	cs, err := store.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []VolumeInfo
	var errs []error
	for _, name := range names {
		v, err := vm.Get(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("get %s: no such volume: %w", name, err))
			continue
		}
		out = append(out, volumeInfo(v, cs))
	}
	return out, errors.Join(errs...)
}

// CreateVolume is `volume create`: a volume with labels and local driver
// options (checked as up checks driver_opts), or the one of that name.
// Without a name the volume gets a random one and counts as anonymous
// (`volume prune` without -a removes it), as Docker's does.
func CreateVolume(vm VolumeManager, name string, labels, options map[string]string) (string, error) {
	st, err := parseDriverOpts(options)
	if err != nil {
		return "", err
	}
	if st.kind == "bind" {
		if err := checkDevice(st.device); err != nil {
			return "", err
		}
	}
	if name == "" {
		id := make([]byte, 32)
		rand.Read(id)
		name = hex.EncodeToString(id)
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[anonymousLabel] = "true"
	}
	v, created, err := vm.CreateWithOptions(name, "", labels, options)
	if err != nil {
		return "", err
	}
	if !created && !maps.Equal(v.Options, options) {
		return "", fmt.Errorf("%w: volume %s exists with other options (%s)", errdefs.ErrConflict, name, optionsString(v.Options))
	}
	return name, nil
}

// RemoveVolumesByName is `volume rm`: each volume named goes unless a
// container uses it, which is refused even with force, as Docker
// refuses it. force only makes a missing volume no error. It returns the
// names removed and the failures, joined.
func RemoveVolumesByName(ctx context.Context, store ContainerStore, vm VolumeManager, names []string, force bool) ([]string, error) {
	cs, err := store.List(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, name := range names {
		v, err := vm.Get(name)
		if errdefs.IsNotFound(err) && force {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove %s: no such volume: %w", name, err))
			continue
		}
		if users := volumeUsers(cs, v); len(users) > 0 {
			slices.Sort(users)
			errs = append(errs, fmt.Errorf("remove %s: %w: volume is in use - [%s]", name, errdefs.ErrConflict, strings.Join(users, ", ")))
			continue
		}
		if err := vm.Remove(name); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", name, err))
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// VolumePruneOptions are `volume prune`'s.
type VolumePruneOptions struct {
	// All prunes every unused volume, not only anonymous ones (-a, or the
	// filter all=true).
	All bool
	// Filters are label=KEY[=VALUE] and label!=KEY[=VALUE], and all=BOOL.
	Filters []string
}

// PruneVolumes removes the volumes no container uses: anonymous ones
// only unless All, those the filters keep. It returns the names removed
// and the bytes their data took.
func PruneVolumes(ctx context.Context, store ContainerStore, vm VolumeManager, o VolumePruneOptions) ([]string, int64, error) {
	f, err := ParseVolumeFilters(o.Filters, "label", "label!", "all")
	if err != nil {
		return nil, 0, err
	}
	if all, ok := f["all"]; ok {
		if o.All {
			return nil, 0, fmt.Errorf("%w: conflicting options: cannot specify both --all and --filter all=1", errdefs.ErrInvalidArgument)
		}
		for _, v := range all {
			b, err := parseFilterBool("all", v)
			if err != nil {
				return nil, 0, err
			}
			o.All = o.All || b
		}
	}
	vols, err := ListVolumes(ctx, store, vm)
	if err != nil {
		return nil, 0, err
	}
	var removed []string
	var reclaimed int64
	for _, v := range vols {
		if len(v.UsedBy) > 0 || !o.All && !v.Anonymous || !f.Match(v) {
			continue
		}
		size, _ := vm.DiskUsage(v.Name)
		if err := vm.Remove(v.Name); err != nil {
			return removed, reclaimed, fmt.Errorf("remove %s: %w", v.Name, err)
		}
		removed = append(removed, v.Name)
		reclaimed += size
	}
	return removed, reclaimed, nil
}

// VolumeFilters are docker's --filter values for volumes, by key: the
// values of one key are alternatives, the keys must all match.
type VolumeFilters map[string][]string

// ParseVolumeFilters reads KEY=VALUE filters, refusing keys not in
// allowed: dangling=BOOL (no container uses it), driver=NAME,
// label=KEY[=VALUE], label!=KEY[=VALUE], name=REGEXP (as Docker, a
// regular expression matched anywhere in the name), all=BOOL (prune).
func ParseVolumeFilters(args []string, allowed ...string) (VolumeFilters, error) {
	f := VolumeFilters{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("%w: invalid filter %q: use %s", errdefs.ErrInvalidArgument, a, strings.Join(allowed, "=..., ")+"=...")
		}
		if k == "dangling" {
			if _, err := parseFilterBool(k, v); err != nil {
				return nil, err
			}
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

func parseFilterBool(key, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%w: invalid filter '%s=%s': use true or false", errdefs.ErrInvalidArgument, key, v)
}

// Match reports whether v passes the filters (all=... is not about a
// volume: it is not looked at).
func (f VolumeFilters) Match(v VolumeInfo) bool {
	anyOf := func(key string, match func(string) bool) bool {
		vals, ok := f[key]
		return !ok || slices.ContainsFunc(vals, match)
	}
	label := func(want string) bool {
		k, val, hasValue := strings.Cut(want, "=")
		got, ok := v.Labels[k]
		return ok && (!hasValue || got == val)
	}
	if vals, ok := f["label!"]; ok && slices.ContainsFunc(vals, label) {
		return false
	}
	return anyOf("label", label) &&
		anyOf("name", func(re string) bool {
			ok, err := regexp.MatchString(re, v.Name)
			return err == nil && ok
		}) &&
		anyOf("driver", func(d string) bool { return d == VolumeDriver }) &&
		anyOf("dangling", func(d string) bool {
			dangling, _ := parseFilterBool("dangling", d)
			return dangling == (len(v.UsedBy) == 0)
		})
}

// ProjectVolumes is `volumes`: the project's volumes (named and
// anonymous, those with its project label), or with services those the
// services' containers mount.
func ProjectVolumes(ctx context.Context, lo project.Options, eng Engine, services []string) ([]VolumeInfo, error) {
	p, err := loadForServices(ctx, lo, eng, services)
	if err != nil {
		return nil, err
	}
	all, err := ListVolumes(ctx, eng, eng.Volumes())
	if err != nil {
		return nil, err
	}
	var used []string
	if len(services) > 0 {
		cs, err := projectList(ctx, eng, p.Name)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if !c.OneOff() && slices.Contains(services, c.Service()) {
				for _, m := range c.Mounts {
					used = append(used, m.Volume)
				}
			}
		}
	}
	return slices.DeleteFunc(all, func(v VolumeInfo) bool {
		return v.Labels[ProjectLabel] != p.Name || len(services) > 0 && !slices.Contains(used, v.Name)
	}), nil
}
