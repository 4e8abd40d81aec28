package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/runtime/spec"
)

// containerList is a ContainerStore holding a fixed list.
type containerList []ContainerStatus

func (l containerList) List(context.Context) ([]ContainerStatus, error) { return l, nil }
func (l containerList) Remove(context.Context, string, bool) error      { return errdefs.ErrNotImplemented }

// volumeFixture makes volumes: a named one in use, a named one unused,
// an anonymous one in use and an anonymous one unused with 5 bytes.
func volumeFixture(t *testing.T) (*mountsEnv, containerList) {
	e := newMountsEnv(t)
	mk := func(name string, labels map[string]string) string {
		v, _, err := e.vm.Create(name, "proj", labels)
		if err != nil {
			t.Fatal(err)
		}
		return v.Path
	}
	used := mk("proj_db", map[string]string{ProjectLabel: "proj", "tier": "db"})
	mk("proj_cache", map[string]string{ProjectLabel: "proj", "tier": "cache"})
	anonUsed := mk("proj_app_0123456789ab", map[string]string{ProjectLabel: "proj", anonymousLabel: "true"})
	loose := mk("proj_app_ba9876543210", map[string]string{ProjectLabel: "proj", anonymousLabel: "true"})
	if err := os.WriteFile(filepath.Join(loose, "f"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.vm.CreateWithOptions("other", "", nil, map[string]string{"type": "tmpfs", "device": "tmpfs"}); err != nil {
		t.Fatal(err)
	}
	cs := containerList{
		{Name: "proj-db-1", Mounts: []spec.Mount{{Type: "bind", Source: used, Target: "/var/lib/db", Volume: "proj_db"}}},
		{Name: "proj-app-1", Mounts: []spec.Mount{{Type: "bind", Source: anonUsed, Target: "/data", Volume: "proj_app_0123456789ab"}}},
	}
	return e, cs
}

func volumeNames(vs []VolumeInfo) string {
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
	}
	return strings.Join(names, " ")
}

func TestVolumeFilters(t *testing.T) {
	e, cs := volumeFixture(t)
	all, err := ListVolumes(context.Background(), cs, e.vm)
	if err != nil {
		t.Fatal(err)
	}
	if got := volumeNames(all); got != "other proj_app_0123456789ab proj_app_ba9876543210 proj_cache proj_db" {
		t.Fatalf("volumes: %s", got)
	}
	for _, tc := range []struct {
		filters []string
		want    string
	}{
		{nil, "other proj_app_0123456789ab proj_app_ba9876543210 proj_cache proj_db"},
		{[]string{"dangling=true"}, "other proj_app_ba9876543210 proj_cache"},
		{[]string{"dangling=0"}, "proj_app_0123456789ab proj_db"},
		{[]string{"label=tier"}, "proj_cache proj_db"},
		{[]string{"label=tier=db"}, "proj_db"},
		{[]string{"label=tier=db", "label=tier=cache"}, "proj_cache proj_db"},
		{[]string{"label=tier", "dangling=true"}, "proj_cache"},
		{[]string{"name=app"}, "proj_app_0123456789ab proj_app_ba9876543210"},
		{[]string{"name=^proj_c"}, "proj_cache"},
		{[]string{"driver=local"}, "other proj_app_0123456789ab proj_app_ba9876543210 proj_cache proj_db"},
		{[]string{"driver=nfs"}, ""},
	} {
		f, err := ParseVolumeFilters(tc.filters, "dangling", "driver", "label", "name")
		if err != nil {
			t.Fatal(err)
		}
		got := volumeNames(slices.DeleteFunc(slices.Clone(all), func(v VolumeInfo) bool { return !f.Match(v) }))
		if got != tc.want {
			t.Errorf("%v: %q, want %q", tc.filters, got, tc.want)
		}
	}
	for _, bad := range []string{"dangling=maybe", "until=1h", "label"} {
		if _, err := ParseVolumeFilters([]string{bad}, "dangling", "driver", "label", "name"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestRemoveVolumesByName(t *testing.T) {
	e, cs := volumeFixture(t)
	ctx := context.Background()
	removed, err := RemoveVolumesByName(ctx, cs, e.vm, []string{"proj_db", "proj_cache", "ghost"}, true)
	if !slices.Equal(removed, []string{"proj_cache"}) {
		t.Errorf("removed %v", removed)
	}
	// In use: refused even with force, naming who uses it; a missing one
	// is no error with force.
	if !errors.Is(err, errdefs.ErrConflict) || err.Error() != "remove proj_db: conflict: volume is in use - [proj-db-1]" {
		t.Errorf("error: %v", err)
	}
	if _, err := e.vm.Get("proj_db"); err != nil {
		t.Errorf("the volume in use went: %v", err)
	}
	_, err = RemoveVolumesByName(ctx, cs, e.vm, []string{"ghost"}, false)
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "remove ghost: no such volume") {
		t.Errorf("missing without force: %v", err)
	}
}

func TestPruneVolumes(t *testing.T) {
	ctx := context.Background()
	e, cs := volumeFixture(t)
	removed, size, err := PruneVolumes(ctx, cs, e.vm, VolumePruneOptions{})
	if err != nil || !slices.Equal(removed, []string{"proj_app_ba9876543210"}) || size != 5 {
		t.Errorf("prune: %v %d %v; want the unused anonymous volume, 5 bytes", removed, size, err)
	}
	removed, _, err = PruneVolumes(ctx, cs, e.vm, VolumePruneOptions{All: true, Filters: []string{"label!=tier"}})
	if err != nil || !slices.Equal(removed, []string{"other"}) {
		t.Errorf("prune -a label!=tier: %v %v", removed, err)
	}
	removed, _, err = PruneVolumes(ctx, cs, e.vm, VolumePruneOptions{Filters: []string{"all=true", "label=tier"}})
	if err != nil || !slices.Equal(removed, []string{"proj_cache"}) {
		t.Errorf("prune all=true label=tier: %v %v", removed, err)
	}
	left, _ := e.vm.List()
	if len(left) != 2 {
		t.Errorf("volumes in use must stay: %d left", len(left))
	}
	if _, _, err := PruneVolumes(ctx, cs, e.vm, VolumePruneOptions{All: true, Filters: []string{"all=1"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("-a with all=1: %v", err)
	}
	if _, _, err := PruneVolumes(ctx, cs, e.vm, VolumePruneOptions{Filters: []string{"dangling=true"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("dangling is not a prune filter: %v", err)
	}
}

func TestInspectAndCreateVolumes(t *testing.T) {
	ctx := context.Background()
	e, cs := volumeFixture(t)
	device := t.TempDir()
	name, err := CreateVolume(e.vm, "shared", map[string]string{"a": "b"}, map[string]string{"type": "none", "o": "bind", "device": device})
	if err != nil || name != "shared" {
		t.Fatalf("create: %q %v", name, err)
	}
	if _, err := CreateVolume(e.vm, "shared", nil, nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("create again with other options: %v", err)
	}
	if _, err := CreateVolume(e.vm, "x", nil, map[string]string{"type": "nfs", "device": ":/e"}); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("nfs: %v", err)
	}
	if _, err := CreateVolume(e.vm, "x", nil, map[string]string{"type": "none", "o": "bind", "device": device + "/gone"}); !errdefs.IsNotFound(err) {
		t.Errorf("missing device: %v", err)
	}
	anon, err := CreateVolume(e.vm, "", nil, nil)
	if err != nil || len(anon) != 64 {
		t.Fatalf("create without a name: %q %v", anon, err)
	}
	vs, err := InspectVolumes(ctx, cs, e.vm, []string{"shared", "ghost", "proj_db", anon})
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "get ghost: no such volume") {
		t.Errorf("inspect error: %v", err)
	}
	if got := volumeNames(vs); got != "shared proj_db "+anon {
		t.Fatalf("inspected %s", got)
	}
	if vs[0].Mountpoint != device || vs[0].Labels["a"] != "b" || vs[0].Options["device"] != device || vs[0].CreatedAt.IsZero() {
		t.Errorf("bind volume: %+v", vs[0])
	}
	if !slices.Equal(vs[1].UsedBy, []string{"proj-db-1"}) || !strings.HasSuffix(vs[1].Mountpoint, "/proj_db/_data") {
		t.Errorf("named volume: %+v", vs[1])
	}
	if !vs[2].Anonymous {
		t.Errorf("a volume created without a name is anonymous: %+v", vs[2])
	}
}
