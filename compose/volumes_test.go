package compose

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/spec"
	"github.com/berth-dev/berth/volume"
)

func TestImageVolumes(t *testing.T) {
	many := map[string]struct{}{}
	for i := range maxImageVolumes + 1 {
		many[fmt.Sprintf("/v%d", i)] = struct{}{}
	}
	for _, tc := range []struct {
		name    string
		volumes map[string]struct{}
		want    string // the paths, or the error
	}{
		{"none", nil, ""},
		{"cleaned, deduplicated, sorted", map[string]struct{}{"/var/lib/data/": {}, "/var/lib/data": {}, "/cache": {}, "//x//y": {}}, "/cache /var/lib/data /x/y"},
		{"relative", map[string]struct{}{"data": {}}, `VOLUME "data": is not an absolute path`},
		{"climbing", map[string]struct{}{"/data/../../etc": {}}, `VOLUME "/data/../../etc": climbs with ".."`},
		{"root", map[string]struct{}{"/": {}}, `VOLUME "/": a volume cannot be mounted over /`},
		{"proc", map[string]struct{}{"/proc/sys": {}}, `VOLUME "/proc/sys": is in /proc`},
		{"sys", map[string]struct{}{"/sys": {}}, `VOLUME "/sys": is in /sys`},
		{"dev", map[string]struct{}{"/dev/shm": {}}, `VOLUME "/dev/shm": is in /dev`},
		{"not /devices", map[string]struct{}{"/devices": {}}, "/devices"},
		{"control character", map[string]struct{}{"/data\n/etc": {}}, `holds a control character`},
		{"NUL", map[string]struct{}{"/data\x00": {}}, `holds a control character`},
		{"too many", many, "129 VOLUME entries: berth accepts at most 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			paths, err := imageVolumes(v1.Config{Volumes: tc.volumes})
			got := strings.Join(paths, " ")
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("error %v is not an invalid argument", err)
				}
				got = err.Error()
			}
			if !strings.Contains(got, tc.want) || tc.want == "" && got != "" {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseDriverOpts(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		want string // the storage, or the error
		kind error
	}{
		{nil, "{   false []}", nil},
		{map[string]string{"type": "none", "o": "bind", "device": "/srv/data/"}, "{bind /srv/data bind false []}", nil},
		{map[string]string{"type": "none", "o": "rbind,ro", "device": "/srv"}, "{bind /srv rbind true []}", nil},
		{map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=100m,mode=1770,uid=999"}, "{tmpfs   false [size=100m mode=1770 uid=999]}", nil},
		{map[string]string{"type": "tmpfs"}, "{tmpfs   false []}", nil},
		{map[string]string{"type": "nfs", "o": "addr=10.0.0.1", "device": ":/export"}, `driver_opts.type: "nfs" is not supported`, errdefs.ErrNotImplemented},
		{map[string]string{"type": "ext4", "device": "/dev/sdb1"}, `driver_opts.type: "ext4" is not supported`, errdefs.ErrNotImplemented},
		{map[string]string{"type": "tmpfs", "size": "1g"}, "driver_opts.size: a size quota is not supported", errdefs.ErrNotImplemented},
		{map[string]string{"type": "tmpfs", "mode": "700"}, `driver_opts.mode: unknown option`, errdefs.ErrInvalidArgument},
		{map[string]string{"o": "bind", "device": "/srv"}, "driver_opts.type: missing", errdefs.ErrInvalidArgument},
		{map[string]string{"type": "none", "o": "bind"}, "driver_opts.device: missing", errdefs.ErrInvalidArgument},
		{map[string]string{"type": "none", "o": "bind", "device": "data"}, `driver_opts.device: "data" is not an absolute path`, errdefs.ErrInvalidArgument},
		{map[string]string{"type": "none", "device": "/srv"}, "type none needs o: bind", errdefs.ErrInvalidArgument},
		{map[string]string{"type": "none", "o": "bind,noexec", "device": "/srv"}, `driver_opts.o: "noexec": a bind volume takes`, errdefs.ErrInvalidArgument},
		{map[string]string{"type": "tmpfs", "o": "size=lots"}, `driver_opts.o: "size=lots": size takes a size`, errdefs.ErrInvalidArgument},
		{map[string]string{"type": "tmpfs", "o": "mode=rwx"}, `mode takes an octal mode`, errdefs.ErrInvalidArgument},
		{map[string]string{"type": "tmpfs", "o": "uid=root"}, `uid takes a numeric user id`, errdefs.ErrInvalidArgument},
		{map[string]string{"type": "tmpfs", "o": "huge=always"}, `invalid tmpfs option "huge=always"`, errdefs.ErrInvalidArgument},
	} {
		t.Run(fmt.Sprint(tc.opts), func(t *testing.T) {
			st, err := parseDriverOpts(tc.opts)
			got := fmt.Sprint(st)
			if err != nil {
				got = err.Error()
				if tc.kind == nil || !errors.Is(err, tc.kind) {
					t.Errorf("error %v is not %v", err, tc.kind)
				}
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// mountsEnv is a project with its volume manager on a temporary root.
type mountsEnv struct {
	t  *testing.T
	vm *volume.Manager
}

func newMountsEnv(t *testing.T) *mountsEnv {
	root := filepath.Join(t.TempDir(), "volumes")
	vm, err := volume.New(root)
	if err != nil {
		t.Fatal(err)
	}
	// The btrfs volume store berth mounts there as root goes with the test.
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	return &mountsEnv{t: t, vm: vm}
}

// mounts loads yaml (project "proj", service "app") and returns the
// mounts of a container of app.
func (e *mountsEnv) mounts(yaml string, o mountOptions) ([]spec.Mount, error) {
	e.t.Helper()
	p, svc := loadService(e.t, yaml, nil, nil)
	if o.number == 0 {
		o.number = 1
	}
	return mounts(p, svc, e.vm, o)
}

// show prints mounts one a line, volume paths as vol:NAME, for the
// tests to compare.
func (e *mountsEnv) show(ms []spec.Mount) string {
	var lines []string
	for _, m := range ms {
		src := m.Source
		if m.Volume != "" {
			if v, err := e.vm.Get(m.Volume); err == nil && strings.HasPrefix(src, v.Path) {
				src = "vol:" + strings.TrimPrefix(src, v.Path)
			}
		}
		line := fmt.Sprintf("%s %s <- %s", m.Target, m.Type, src)
		if m.Volume != "" {
			line += " (" + m.Volume + ")"
		}
		if m.ReadOnly {
			line += " ro"
		}
		if m.CopyUp {
			line += " copyup"
		}
		if len(m.Options) > 0 {
			line += " " + strings.Join(m.Options, ",")
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func TestMountsImageVolumes(t *testing.T) {
	e := newMountsEnv(t)
	img := testImage(v1.Config{Volumes: map[string]struct{}{"/data": {}, "/cache/": {}, "/logs": {}, "/scratch": {}}})
	yaml := `
services:
  app:
    image: example/app:1
    volumes: [data:/data, /scratch]
    tmpfs: [/logs]
volumes:
  data:
`
	ms, err := e.mounts(yaml, mountOptions{image: img})
	if err != nil {
		t.Fatal(err)
	}
	// The service's own entries win at their paths: only /cache comes
	// from the image, as an anonymous volume of the replica, filled from
	// the image; the tmpfs is not mounts' to make.
	want := `/data bind <- vol: (proj_data) copyup
/scratch bind <- vol: (proj_app_d79ce7a00eb4) copyup
/cache bind <- vol: (proj_app_e7090532bded) copyup`
	if got := e.show(ms); got != want {
		t.Errorf("mounts:\n%s\nwant:\n%s", got, want)
	}
	v, err := e.vm.Get("proj_app_e7090532bded")
	if err != nil || v.Labels[anonymousLabel] != "true" || v.Labels[ProjectLabel] != "proj" {
		t.Errorf("the image's volume: %+v, %v", v, err)
	}
	// Replica 2 and a one-off container have their own.
	ms2, _ := e.mounts(yaml, mountOptions{number: 2, image: img})
	ms3, _ := e.mounts(yaml, mountOptions{oneOff: "0123abcd", image: img})
	for _, other := range [][]spec.Mount{ms2, ms3} {
		if other[2].Volume == ms[2].Volume || !ownAnonymous("proj", "app", other[2].Volume) {
			t.Errorf("another container's image volume: %s", other[2].Volume)
		}
	}

	img = testImage(v1.Config{Volumes: map[string]struct{}{"/proc/self": {}}})
	_, err = e.mounts(yaml, mountOptions{image: img})
	checkError(t, err, errdefs.ErrInvalidArgument, "image:", `VOLUME "/proc/self": is in /proc`)
}

func TestMountsVolumesFrom(t *testing.T) {
	e := newMountsEnv(t)
	host := t.TempDir()
	source := ContainerStatus{ID: ContainerID("proj", "data", 1), Name: "proj-data-1", Mounts: []spec.Mount{
		{Type: "bind", Source: "/vols/proj_shared/_data", Target: "/shared", CopyUp: true, Volume: "proj_shared"},
		{Type: "bind", Source: "/vols/proj_data_0123456789ab/_data", Target: "/anon", Volume: "proj_data_0123456789ab"},
		{Type: "bind", Source: host, Target: "/host", ReadOnly: true},
		{Type: "tmpfs", Target: "/tmp/own", Options: []string{"size=1m"}},
		{Type: "tmpfs", Target: "/fast", Options: []string{"exec", "size=1m", "tmpcopyup"}, Volume: "proj_fast"},
		{Type: "bind", Source: "/vols/proj_mine/_data", Target: "/mine", Volume: "proj_mine"},
	}}
	other := ContainerStatus{ID: strings.Repeat("c", 64), Name: "standalone", Mounts: []spec.Mount{
		{Type: "bind", Source: "/srv/x", Target: "/x"},
	}}
	cs := []ContainerStatus{source, other}
	yaml := `
services:
  data:
    image: example/app:1
  app:
    image: example/app:1
    volumes_from: [data, "container:standalone:ro"]
    volumes: [/mine]
`
	ms, err := e.mounts(yaml, mountOptions{containers: cs})
	if err != nil {
		t.Fatal(err)
	}
	// Volumes and binds are shared, never filled again; the source's own
	// tmpfs is not; a tmpfs volume is, as a tmpfs of app's own. The
	// service's own /mine wins.
	want := `/mine bind <- vol: (proj_app_21e9d279c439) copyup
/shared bind <- /vols/proj_shared/_data (proj_shared)
/anon bind <- /vols/proj_data_0123456789ab/_data (proj_data_0123456789ab)
/host bind <- ` + host + ` ro
/fast tmpfs <-  (proj_fast) exec,size=1m
/x bind <- /srv/x ro`
	if got := e.show(ms); got != want {
		t.Errorf("mounts:\n%s\nwant:\n%s", got, want)
	}

	ms, err = e.mounts(strings.Replace(yaml, "volumes_from: [data, ", "volumes_from: [data:ro, ", 1), mountOptions{containers: cs})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if !m.ReadOnly && m.Target != "/mine" {
			t.Errorf("data:ro: %s is writable", m.Target)
		}
	}

	for _, tc := range []struct {
		from  string
		kind  error
		wants string
	}{
		{"data", errdefs.ErrFailedPrecondition, `volumes_from[0]: failed precondition: service "data" has no container to share volumes with`},
		{"container:ghost", errdefs.ErrNotFound, `volumes_from[0]: not found: no container "ghost"`},
		{"data:rx", errdefs.ErrInvalidArgument, `volumes_from[0]: invalid argument: "data:rx": the mode is ro or rw`},
	} {
		_, err := e.mounts("services:\n  data: {image: x}\n  app:\n    image: x\n    volumes_from: ["+tc.from+"]\n", mountOptions{})
		checkError(t, err, tc.kind, tc.wants)
	}
}

func TestMountsDriverOpts(t *testing.T) {
	e := newMountsEnv(t)
	device := t.TempDir()
	yaml := `
services:
  app:
    image: example/app:1
    volumes:
      - host:/host
      - fast:/fast
      - type: volume
        source: fast
        target: /empty
        volume: {nocopy: true}
volumes:
  host:
    driver_opts: {type: none, o: bind, device: ` + device + `}
  fast:
    driver: local
    driver_opts: {type: tmpfs, device: tmpfs, o: "size=64m,mode=1777"}
`
	ms, err := e.mounts(yaml, mountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := `/host bind <- ` + device + ` (proj_host) copyup bind
/fast tmpfs <-  (proj_fast) exec,size=64m,mode=1777,tmpcopyup
/empty tmpfs <-  (proj_fast) exec,size=64m,mode=1777`
	if got := e.show(ms); got != want {
		t.Errorf("mounts:\n%s\nwant:\n%s", got, want)
	}
	if v, _ := e.vm.Get("proj_fast"); v.Options["type"] != "tmpfs" {
		t.Errorf("the options were not recorded: %+v", v)
	}

	// The file changes the options of a volume that exists: refused.
	_, err = e.mounts(strings.Replace(yaml, "size=64m", "size=32m", 1), mountOptions{})
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "volumes.fast: conflict: volume proj_fast exists with other driver_opts (device=tmpfs, o=size=64m,mode=1777, type=tmpfs)") {
		t.Errorf("changed options: %v", err)
	}
	_, err = e.mounts(strings.Replace(yaml, device, t.TempDir(), 1), mountOptions{})
	if err == nil || !strings.Contains(err.Error(), "volumes.host: conflict: volume proj_host exists with other driver_opts") {
		t.Errorf("changed device: %v", err)
	}

	e = newMountsEnv(t)
	_, err = e.mounts(strings.Replace(yaml, device, device+"/gone", 1), mountOptions{})
	checkError(t, err, errdefs.ErrNotFound, "volumes[0]", "driver_opts.device: "+device+"/gone does not exist")
	_, err = e.mounts(strings.Replace(yaml, "type: none", "type: nfs", 1), mountOptions{})
	checkError(t, err, errdefs.ErrNotImplemented, "volumes[0]", `volumes.host: not implemented: driver_opts.type: "nfs" is not supported`)
	if _, err := e.vm.Get("proj_host"); !errdefs.IsNotFound(err) {
		t.Errorf("a volume with bad options was created: %v", err)
	}
}

func TestMountsAnonymousAcrossRecreates(t *testing.T) {
	e := newMountsEnv(t)
	yaml := "services:\n  app:\n    image: example/app:1\n    volumes: [/data]\n"
	first, err := e.mounts(yaml, mountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	name := first[0].Volume
	if err := os.WriteFile(filepath.Join(first[0].Source, "kept"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old := ContainerStatus{Name: "proj-app-1", Mounts: first}

	// A recreate keeps the volume of the container it replaces.
	again, err := e.mounts(yaml, mountOptions{previous: &old})
	if err != nil || again[0].Volume != name {
		t.Fatalf("recreated: %v %v", again, err)
	}
	// -V: a new, empty one under the same name when nothing else uses it.
	renewed, err := e.mounts(yaml, mountOptions{previous: &old, renew: true})
	if err != nil || renewed[0].Volume != name {
		t.Fatalf("renewed: %v %v", renewed, err)
	}
	if _, err := os.Stat(filepath.Join(renewed[0].Source, "kept")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the renewed volume kept its data: %v", err)
	}
	// In use by another container (volumes_from): left to it, and the new
	// one gets a name of its own, which the next recreate inherits.
	user := ContainerStatus{Name: "proj-reader-1", Mounts: renewed}
	fresh, err := e.mounts(yaml, mountOptions{previous: &old, renew: true, containers: []ContainerStatus{user}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fresh[0].Volume; !strings.HasPrefix(got, name+"-") || !ownAnonymous("proj", "app", got) {
		t.Errorf("renewed while in use: %s", got)
	}
	if _, err := e.vm.Get(name); err != nil {
		t.Errorf("the volume in use was removed: %v", err)
	}
	next, err := e.mounts(yaml, mountOptions{previous: &ContainerStatus{Mounts: fresh}})
	if err != nil || next[0].Volume != fresh[0].Volume {
		t.Errorf("after a renew, a recreate keeps %s: %v %v", fresh[0].Volume, next, err)
	}
	// Another service's anonymous volume, shared with the old container,
	// is not inherited.
	shared := ContainerStatus{Mounts: []spec.Mount{{Type: "bind", Target: "/data", Volume: "proj_db_0123456789ab"}}}
	if ms, _ := e.mounts(yaml, mountOptions{previous: &shared}); ms[0].Volume != name {
		t.Errorf("inherited another service's volume: %s", ms[0].Volume)
	}
}

func TestMountsSubpathStaysInTheVolume(t *testing.T) {
	e := newMountsEnv(t)
	outside := t.TempDir()
	yaml := `
services:
  app:
    image: example/app:1
    volumes:
      - type: volume
        source: data
        target: /sub
        volume: {subpath: link/made}
volumes:
  data:
`
	v, _, err := e.vm.Create("proj_data", "proj", nil)
	if err != nil {
		t.Fatal(err)
	}
	// A container wrote a symlink out of the volume.
	if err := os.Symlink(outside, filepath.Join(v.Path, "link")); err != nil {
		t.Fatal(err)
	}
	ms, err := e.mounts(yaml, mountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ms[0].Source, v.Path+"/") {
		t.Errorf("the subpath left the volume: %s", ms[0].Source)
	}
	if entries, _ := os.ReadDir(outside); len(entries) > 0 {
		t.Errorf("a directory was made outside the volume: %v", entries)
	}
}

func TestVolumeUsersAndRemoveAnonymous(t *testing.T) {
	e := newMountsEnv(t)
	anon, _, _ := e.vm.Create("proj_app_0123456789ab", "proj", map[string]string{anonymousLabel: "true"})
	named, _, _ := e.vm.Create("proj_data", "proj", nil)
	cs := []ContainerStatus{
		{Name: "b", Mounts: []spec.Mount{{Source: named.Path + "/sub", Target: "/x"}}}, // made before mounts named their volume
		{Name: "a", Mounts: []spec.Mount{{Source: anon.Path, Target: "/y", Volume: anon.Name}}},
	}
	if got := volumeUsers(cs, named); !slices.Equal(got, []string{"b"}) {
		t.Errorf("users of %s: %v", named.Name, got)
	}
	removed, err := removeAnonymous(e.vm, cs, []string{anon.Name, named.Name})
	if err != nil || len(removed) != 0 {
		t.Errorf("removed volumes in use, or named: %v %v", removed, err)
	}
	removed, err = removeAnonymous(e.vm, nil, []string{anon.Name, named.Name, anon.Name})
	if err != nil || !slices.Equal(removed, []string{anon.Name}) {
		t.Errorf("removed %v %v, want the anonymous one only", removed, err)
	}
}

// TestMountsBindSourceMissing: a missing bind source is created only when
// the entry says create_host_path, as the short syntax implies; the long
// syntax's default is false, as Docker's.
func TestMountsBindSourceMissing(t *testing.T) {
	e := newMountsEnv(t)
	tests := []struct {
		name, volume string
		created      bool
	}{
		{"short", `"./src:/m"`, true},
		{"long", `{type: bind, source: ./src, target: /m}`, false},
		{"long, create_host_path", `{type: bind, source: ./src, target: /m, bind: {create_host_path: true}}`, true},
		{"long, create_host_path false", `{type: bind, source: ./src, target: /m, bind: {create_host_path: false}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, svc := loadService(t, "services:\n  app:\n    image: example/app:1\n    volumes: ["+tt.volume+"]\n", nil, nil)
			_, err := mounts(p, svc, e.vm, mountOptions{number: 1})
			_, statErr := os.Stat(filepath.Join(p.WorkingDir, "src"))
			if tt.created {
				if err != nil || statErr != nil {
					t.Errorf("mounts: %v; the source: %v", err, statErr)
				}
				return
			}
			checkError(t, err, errdefs.ErrNotFound, "src does not exist")
			if statErr == nil {
				t.Error("the missing source was created")
			}
		})
	}
}
