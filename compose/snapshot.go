package compose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/spec"
	"github.com/berth-dev/berth/volume"
)

// SnapshotOptions are those of `snapshot save` and `snapshot restore`.
type SnapshotOptions struct {
	Name string
	// Services whose named volumes a save captures; all when empty.
	Services []string
	Progress func(Progress)
}

// SnapshotSave captures the named volumes of the services at one instant:
// the running containers that use them are paused around it (their
// writes stop, their files stay open) and resumed after. External
// volumes are left out: they belong to someone else.
func SnapshotSave(ctx context.Context, lo project.Options, eng Engine, o SnapshotOptions) (*volume.Snapshot, error) {
	p, err := loadForServices(ctx, lo, eng, o.Services)
	if err != nil {
		return nil, err
	}
	progress := orNoProgress(o.Progress)
	services := o.Services
	if len(services) == 0 {
		services = p.ServiceNames()
	}
	vols, external := serviceVolumes(p, services)
	for _, name := range external {
		progress(Progress{Resource: "Volume " + name, Status: "Skipped: external"})
	}
	vm := eng.Volumes()
	// A volume of driver_opts keeps its data elsewhere (a host
	// directory, memory): nothing of it is in the store to snapshot.
	vols = slices.DeleteFunc(vols, func(name string) bool {
		v, err := vm.Get(name)
		if err == nil && len(v.Options) > 0 {
			progress(Progress{Resource: "Volume " + name, Status: "Skipped: driver_opts"})
			return true
		}
		return false
	})
	if len(vols) == 0 {
		return nil, fmt.Errorf("%w: services %s mount no named volume of the project that berth keeps", errdefs.ErrInvalidArgument, strings.Join(services, ", "))
	}
	if err := vm.SnapshotsSupported(); err != nil {
		return nil, err
	}
	if _, err := vm.GetSnapshot(p.Name, o.Name); err == nil {
		return nil, fmt.Errorf("%w: snapshot %q of project %q exists (berth snapshot rm %s)", errdefs.ErrAlreadyExists, o.Name, p.Name, o.Name)
	}
	unlock, err := eng.Lock(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cs, err := snapshotUsers(ctx, eng, p, vols)
	if err != nil {
		return nil, err
	}
	var paused []ContainerStatus
	defer func() {
		// Resumed whatever happened, with a context of their own: a
		// Ctrl-C must not leave the database frozen.
		for _, c := range paused {
			name := "Container " + c.Name
			if err := eng.Unpause(context.WithoutCancel(ctx), c.ID); err != nil {
				progress(Progress{Resource: name, Status: StatusError, Err: err})
				continue
			}
			progress(Progress{Resource: name, Status: "Unpaused"})
		}
	}()
	for _, c := range cs {
		if c.Status != "running" {
			continue
		}
		if err := eng.Pause(ctx, c.ID); err != nil {
			return nil, fmt.Errorf("pausing %s: %w", c.Name, err)
		}
		paused = append(paused, c)
		progress(Progress{Resource: "Container " + c.Name, Status: "Paused"})
	}
	s, err := vm.SaveSnapshot(p.Name, o.Name, services, vols)
	if err != nil {
		return nil, err
	}
	progress(Progress{Resource: "Snapshot " + o.Name, Status: "Saved"})
	return s, nil
}

// SnapshotRestore puts the volumes of a snapshot back as they were saved.
// The containers that use them are killed first (what they hold is
// thrown away, so there is nothing to stop gracefully for), and those
// that were running are started again after, dependencies first.
// One-off containers (run) are killed, not restarted.
func SnapshotRestore(ctx context.Context, lo project.Options, eng Engine, o SnapshotOptions) (*volume.Snapshot, error) {
	p, err := loadForServices(ctx, lo, eng, nil)
	if err != nil {
		return nil, err
	}
	progress := orNoProgress(o.Progress)
	vm := eng.Volumes()
	s, err := vm.GetSnapshot(p.Name, o.Name)
	if err != nil {
		return nil, err
	}
	if err := vm.SnapshotsSupported(); err != nil {
		return nil, err
	}
	unlock, err := eng.Lock(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var vols []string
	for _, v := range s.Volumes {
		vols = append(vols, v.Name)
	}
	cs, err := snapshotUsers(ctx, eng, p, vols)
	if err != nil {
		return nil, err
	}
	cs = slices.DeleteFunc(cs, func(c ContainerStatus) bool { return !c.Running() && !c.Restarting })
	kill := time.Duration(0)
	stop := func() error {
		return inReverseOrder(ctx, p, cs, func(ctx context.Context, c ContainerStatus) error {
			if c.Status == "paused" {
				if err := eng.Unpause(ctx, c.ID); err != nil {
					return fmt.Errorf("unpausing %s: %w", c.Name, err)
				}
			}
			if err := eng.Stop(ctx, p.Name, c.ID, &kill); err != nil {
				return fmt.Errorf("stopping %s: %w", c.Name, err)
			}
			progress(Progress{Resource: "Container " + c.Name, Status: StatusStopped})
			return nil
		})
	}
	// Started again even when the restore failed: the user had them
	// running. One-off containers are not.
	start := func() error {
		return inOrder(ctx, p, slices.DeleteFunc(slices.Clone(cs), ContainerStatus.OneOff), func(ctx context.Context, c ContainerStatus) error {
			if err := eng.Start(ctx, p.Name, c.ID); err != nil {
				return fmt.Errorf("starting %s: %w", c.Name, err)
			}
			progress(Progress{Resource: "Container " + c.Name, Status: StatusStarted})
			return nil
		})
	}
	if _, err := vm.RestoreSnapshot(p.Name, o.Name, stop, start); err != nil {
		return nil, err
	}
	progress(Progress{Resource: "Snapshot " + o.Name, Status: "Restored"})
	if err := eng.Reclaim(ctx, p.Name); err != nil {
		return nil, fmt.Errorf("freeing the replaced data: %w", err)
	}
	return s, nil
}

// Snapshots lists the project's snapshots, oldest first.
func Snapshots(ctx context.Context, lo project.Options, eng Engine) ([]*volume.Snapshot, error) {
	name, err := ProjectName(ctx, lo)
	if err != nil {
		return nil, err
	}
	return eng.Volumes().Snapshots(name)
}

// SnapshotRemove removes snapshots of the project.
func SnapshotRemove(ctx context.Context, lo project.Options, eng Engine, names []string, progress func(Progress)) error {
	project, err := ProjectName(ctx, lo)
	if err != nil {
		return err
	}
	progress = orNoProgress(progress)
	var failed []error
	for _, n := range names {
		if err := eng.Volumes().RemoveSnapshot(project, n); err != nil {
			failed = append(failed, err)
			continue
		}
		progress(Progress{Resource: "Snapshot " + n, Status: StatusRemoved})
	}
	if err := eng.Reclaim(ctx, project); err != nil {
		failed = append(failed, fmt.Errorf("freeing the snapshots' data: %w", err))
	}
	return errors.Join(failed...)
}

// serviceVolumes lists the project's named volumes the services mount,
// themselves or through volumes_from, and apart the external ones.
func serviceVolumes(p *types.Project, services []string) (vols, external []string) {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		svc, ok := p.Services[name]
		if !ok || seen[name] {
			return
		}
		seen[name] = true
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeVolume || v.Source == "" {
				continue
			}
			vn := volumeName(p, v.Source)
			if p.Volumes[v.Source].External {
				external = append(external, vn)
			} else {
				vols = append(vols, vn)
			}
		}
		for _, from := range svc.VolumesFrom {
			// service, service:ro; container:NAME is not a service.
			if src, _, _ := strings.Cut(from, ":"); src != "container" {
				visit(src)
			}
		}
	}
	for _, s := range services {
		visit(s)
	}
	slices.Sort(vols)
	slices.Sort(external)
	return slices.Compact(vols), slices.Compact(external)
}

// snapshotUsers lists the project's containers (one-off ones too) that
// mount one of the volumes, or whose service does. A supervisor that died
// is not waited for: a container that runs is paused or stopped all the
// same.
func snapshotUsers(ctx context.Context, eng Engine, p *types.Project, vols []string) ([]ContainerStatus, error) {
	cs, err := projectList(ctx, eng, p.Name)
	if err != nil {
		return nil, err
	}
	uses := map[string]bool{}
	for name := range p.Services {
		mine, _ := serviceVolumes(p, []string{name})
		uses[name] = slices.ContainsFunc(mine, func(v string) bool { return slices.Contains(vols, v) })
	}
	return slices.DeleteFunc(cs, func(c ContainerStatus) bool {
		return !uses[c.Service()] && !slices.ContainsFunc(c.Mounts, func(m spec.Mount) bool { return slices.Contains(vols, m.Volume) })
	}), nil
}
