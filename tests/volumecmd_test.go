package tests

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-dev/berth/tests/offline"
)

// loadVolumeImage loads, as ref, the offline busybox image with VOLUME
// entries at paths (the way a Dockerfile's VOLUME sets them).
func (c *cli) loadVolumeImage(ref string, paths ...string) {
	c.t.Helper()
	archive, err := offline.Archive("busybox")
	if err != nil {
		c.t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		c.t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Config.Volumes = map[string]struct{}{}
	for _, p := range paths {
		cfg.Config.Volumes[p] = struct{}{}
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		c.t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		c.t.Fatal(err)
	}
	out := filepath.Join(c.t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(out, tag, img); err != nil {
		c.t.Fatal(err)
	}
	c.must("load", "-i", out)
}

// volumeLine is what the tests read of `volume ls --format json`.
type volumeLine struct {
	Name, Driver, Labels, Mountpoint, Scope string
}

// volumes runs a listing command with --format json and returns the
// volumes by name.
func (c *cli) volumes(args ...string) map[string]volumeLine {
	c.t.Helper()
	out := c.must(append(args, "--format", "json")...)
	m := map[string]volumeLine{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var v volumeLine
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			c.t.Fatalf("%v line %q: %v", args, sc.Text(), err)
		}
		m[v.Name] = v
	}
	return m
}

// anonymous returns the names of the anonymous volumes of the project.
func anonymous(vols map[string]volumeLine) []string {
	var names []string
	for n, v := range vols {
		if strings.Contains(v.Labels, "berth.anonymous=true") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// TestVolumeImageVolumes: an image's VOLUME is an anonymous volume,
// filled from the image, unless the service mounts something there; a
// recreate keeps it, up -V gives a new one, run --rm and rm -v remove
// theirs; an image with a hostile VOLUME is refused.
func TestVolumeImageVolumes(t *testing.T) {
	c := newCLI(t, `
name: imgvol
services:
  app:
    image: volimg:1
    init: true
    command: ["sleep", "1000"]
    volumes: [named:/data]
volumes:
  named:
`)
	c.loadVolumeImage("volimg:1", "/etc", "/data/")
	c.loadVolumeImage("volbad:1", "/proc/self")
	before := c.hostState()
	c.must("up", "-d")
	// /etc is an anonymous volume with the image's files; /data is the
	// service's named volume, nothing else.
	if out := c.must("exec", "-T", "app", "grep", "^root:", "/etc/passwd"); !strings.HasPrefix(out, "root:") {
		t.Errorf("the image's /etc in its volume: %q", out)
	}
	vols := c.volumes("volumes")
	anon := anonymous(vols)
	if len(anon) != 1 || len(vols) != 2 || vols["imgvol_named"].Name == "" {
		t.Fatalf("project volumes: %v", vols)
	}
	if out := c.must("exec", "-T", "app", "grep", " /etc ", "/proc/mounts"); !strings.Contains(out, "/etc") {
		t.Errorf("/etc is not a mount: %q", out)
	}
	c.must("exec", "-T", "app", "sh", "-c", "echo kept > /etc/marker")

	// A recreate keeps the volume, -V replaces it by a fresh copy.
	c.must("up", "-d", "--force-recreate")
	if out := c.must("exec", "-T", "app", "cat", "/etc/marker"); out != "kept\n" {
		t.Errorf("after a recreate: %q", out)
	}
	out := c.must("up", "-d", "-V")
	if !strings.Contains(out, "Recreated") {
		t.Errorf("up -V did not recreate:\n%s", out)
	}
	if out, code := c.run("", "exec", "-T", "app", "cat", "/etc/marker"); code == 0 {
		t.Errorf("up -V kept the anonymous volume's data: %q", out)
	}
	if out := c.must("exec", "-T", "app", "grep", "^root:", "/etc/passwd"); !strings.HasPrefix(out, "root:") {
		t.Errorf("the new volume is not filled from the image: %q", out)
	}
	if got := anonymous(c.volumes("volumes")); len(got) != 1 {
		t.Errorf("after up -V, anonymous volumes: %v (the old one must go)", got)
	}

	// A one-off container has its own, which --rm removes.
	if out := c.must("run", "--rm", "-T", "app", "sh", "-c", "test ! -e /etc/marker && grep -c ^root: /etc/passwd"); out != "1\n" {
		t.Errorf("run: %q", out)
	}
	if got := anonymous(c.volumes("volume", "ls")); len(got) != 1 {
		t.Errorf("run --rm left its volumes: %v", got)
	}

	// rm -v: the container's anonymous volume goes, the named one stays.
	c.must("stop", "app")
	out = c.must("rm", "-f", "-v", "app")
	if !strings.Contains(out, "Volume "+anonymous(vols)[0]) && !strings.Contains(out, "Volume imgvol_app_") {
		t.Errorf("rm -v:\n%s", out)
	}
	vols = c.volumes("volume", "ls")
	if got := anonymous(vols); len(got) != 0 || vols["imgvol_named"].Name == "" {
		t.Errorf("after rm -v: %v", vols)
	}

	// A hostile VOLUME: refused, naming the image and the path.
	c.writeCompose("name: imgvol\nservices:\n  app:\n    image: volbad:1\n")
	out, code := c.run("", "up", "-d")
	if code == 0 || !strings.Contains(out, `service "app": image: image volbad:1: invalid argument: VOLUME "/proc/self": is in /proc`) {
		t.Errorf("hostile VOLUME: %d\n%s", code, out)
	}
	if left := c.containers(); len(left) != 0 {
		t.Errorf("containers made for a refused image: %v", left)
	}
	c.must("down", "-v")
	c.checkClean(before)
}

// TestVolumeVolumesFrom: volumes_from shares a service's or a container's
// volumes and bind mounts, read-only with :ro, and the source comes up
// first; a named volume shared by two services shows the same files.
func TestVolumeVolumesFrom(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "note"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := `
name: vf
services:
  data:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes: [shared:/shared, /anon, ` + host + `:/host]
    tmpfs: [/private]
  app:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes_from: [data]
  reader:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes_from: ["data:ro"]
  other:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes: [shared:/elsewhere]
volumes:
  shared:
`
	c := newCLI(t, compose)
	before := c.hostState()
	// Asked for alone, app brings data up first.
	out := c.must("up", "-d", "app")
	if i, j := strings.Index(out, "vf-data-1  Started"), strings.Index(out, "vf-app-1  Started"); i < 0 || j < 0 || i > j {
		t.Errorf("volumes_from is a dependency:\n%s", out)
	}
	c.must("up", "-d")
	c.must("exec", "-T", "app", "sh", "-c", "echo a > /shared/a; echo b > /anon/b")
	if out := c.must("exec", "-T", "data", "cat", "/shared/a", "/anon/b", "/host/note"); out != "a\nb\nfrom the host\n" {
		t.Errorf("data sees: %q", out)
	}
	if out := c.must("exec", "-T", "reader", "cat", "/shared/a", "/anon/b", "/host/note"); out != "a\nb\nfrom the host\n" {
		t.Errorf("reader sees: %q", out)
	}
	for _, f := range []string{"/shared/x", "/anon/x", "/host/x"} {
		if out, code := c.run("", "exec", "-T", "reader", "touch", f); code == 0 || !strings.Contains(out, "Read-only file system") {
			t.Errorf("reader wrote %s: %d %q", f, code, out)
		}
	}
	// The source's own tmpfs is its own.
	if out, code := c.run("", "exec", "-T", "app", "grep", " /private ", "/proc/mounts"); code == 0 {
		t.Errorf("app got data's tmpfs: %q", out)
	}
	// Two services, one named volume.
	c.must("exec", "-T", "other", "sh", "-c", "echo o > /elsewhere/o")
	if out := c.must("exec", "-T", "data", "cat", "/shared/o"); out != "o\n" {
		t.Errorf("the volume shared by two services: %q", out)
	}

	// container:NAME, read-write, outside the project's services.
	c.writeCompose(`
name: vf2
services:
  guest:
    image: busybox
    init: true
    command: ["sh", "-c", "echo g > /anon/g; cat /shared/a"]
    volumes_from: ["container:vf-data-1"]
`)
	if out := c.must("run", "--rm", "-T", "guest"); out != "a\n" {
		t.Errorf("container:NAME: %q", out)
	}
	c.writeCompose("name: vf2\nservices:\n  guest:\n    image: busybox\n    volumes_from: [\"container:nosuch\"]\n")
	if out, code := c.run("", "up", "-d"); code == 0 || !strings.Contains(out, `service "guest": volumes_from[0]: not found: no container "nosuch"`) {
		t.Errorf("missing container: %d\n%s", code, out)
	}
	// run made vf2's network, as docker compose does; down removes it.
	c.must("down")
	c.writeCompose("name: vf\nservices:\n  app:\n    image: busybox\n    volumes_from: [ghost]\n")
	if out, code := c.run("", "up", "-d"); code == 0 || !strings.Contains(out, `service "app": volumes_from: service "ghost" is not defined`) {
		t.Errorf("missing service: %d\n%s", code, out)
	}
	c.writeCompose(compose)
	c.must("down", "-v")
	if got := c.volumes("volume", "ls"); len(got) != 0 {
		t.Errorf("volumes left: %v", got)
	}
	c.checkClean(before)
}

// TestVolumeDriverOpts: a local volume with type none, o bind shows a
// host directory; one with type tmpfs is a tmpfs of the size and mode
// asked; other types are refused naming the volume and the key.
func TestVolumeDriverOpts(t *testing.T) {
	device := t.TempDir()
	if err := os.WriteFile(filepath.Join(device, "hello"), []byte("host file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := `
name: dopts
services:
  app:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes: [hostdir:/h, fast:/f]
volumes:
  hostdir:
    driver_opts: {type: none, o: bind, device: ` + device + `}
  fast:
    driver_opts: {type: tmpfs, device: tmpfs, o: "size=2m,mode=1770"}
`
	c := newCLI(t, compose)
	before := c.hostState()
	c.must("up", "-d")
	if out := c.must("exec", "-T", "app", "cat", "/h/hello"); out != "host file\n" {
		t.Errorf("bind volume: %q", out)
	}
	c.must("exec", "-T", "app", "sh", "-c", "echo back > /h/written")
	if b, err := os.ReadFile(filepath.Join(device, "written")); err != nil || string(b) != "back\n" {
		t.Errorf("written through the bind volume: %q %v", b, err)
	}
	out := c.must("exec", "-T", "app", "sh", "-c", "grep ' /f ' /proc/mounts; stat -c %a /f; echo x > /f/x && cat /f/x")
	for _, want := range []string{"tmpfs /f tmpfs", "size=2048k", "\n1770\n", "\nx\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("tmpfs volume lacks %q:\n%s", want, out)
		}
	}
	if out, code := c.run("", "exec", "-T", "app", "dd", "if=/dev/zero", "of=/f/big", "bs=1M", "count=3"); code == 0 {
		t.Errorf("3 MiB fit in a 2m tmpfs volume: %s", out)
	}
	var inspected []struct {
		Name, Mountpoint string
		Options          map[string]string
	}
	if err := json.Unmarshal([]byte(c.must("volume", "inspect", "dopts_hostdir", "dopts_fast")), &inspected); err != nil {
		t.Fatal(err)
	}
	if len(inspected) != 2 || inspected[0].Mountpoint != device || inspected[0].Options["o"] != "bind" || inspected[1].Options["type"] != "tmpfs" {
		t.Errorf("inspect: %+v", inspected)
	}
	// A tmpfs volume starts empty again with a new container.
	c.must("up", "-d", "--force-recreate")
	if out, code := c.run("", "exec", "-T", "app", "ls", "/f"); code != 0 || out != "" {
		t.Errorf("the tmpfs volume after a recreate: %d %q", code, out)
	}
	// Other options for a volume that exists: up says so and changes
	// nothing, also when the container itself is unchanged.
	c.writeCompose(strings.Replace(compose, "size=2m", "size=3m", 1))
	if out, code := c.run("", "up", "-d"); code == 0 || !strings.Contains(out, "volume dopts_fast exists with other driver_opts") {
		t.Errorf("up with other driver_opts: %d\n%s", code, out)
	}
	if e := c.ps()["dopts-app-1"]; e.State != "running" {
		t.Errorf("the container after the refused up: %+v", e)
	}
	c.writeCompose(compose)
	c.must("down", "-v")
	if _, err := os.Stat(filepath.Join(device, "hello")); err != nil {
		t.Errorf("down -v removed the bind volume's host files: %v", err)
	}

	for _, tc := range []struct{ from, to, want string }{
		{"type: none", "type: nfs", `volumes.hostdir: not implemented: driver_opts.type: "nfs" is not supported`},
		{device + "}", device + "/gone}", `volumes.hostdir: not found: driver_opts.device: ` + device + `/gone does not exist`},
		{`o: "size=2m,mode=1770"`, `o: "size=big"`, `volumes.fast: invalid argument: driver_opts.o: "size=big"`},
	} {
		c.writeCompose(strings.Replace(compose, tc.from, tc.to, 1))
		if out, code := c.run("", "up", "-d"); code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: %d\n%s", tc.to, code, out)
		}
		c.must("down", "-v")
	}
	c.checkClean(before)
}

// TestVolumeCommands: volume create, ls (filters, -q, json), inspect,
// rm (refused while a container uses the volume), prune (asks first;
// anonymous ones only unless -a), and the project's `volumes`.
func TestVolumeCommands(t *testing.T) {
	c := newCLI(t, `
name: vcmd
services:
  db:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes: [data:/data, /scratch]
volumes:
  data:
    labels: {tier: db}
`)
	before := c.hostState()
	if out := c.must("volume", "create", "--label", "team=x", "loose"); out != "loose\n" {
		t.Errorf("create: %q", out)
	}
	anon := strings.TrimSpace(c.must("volume", "create"))
	if len(anon) != 64 {
		t.Errorf("create without a name: %q", anon)
	}
	c.must("up", "-d")
	if err := os.WriteFile(filepath.Join(c.root, "volumes", anon, "_data", "kb"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}

	out := c.must("volumes")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != "DRIVER    VOLUME NAME" || !strings.HasPrefix(lines[1], "local     vcmd_d") {
		t.Errorf("volumes:\n%s", out)
	}
	if out := c.must("volumes", "-q", "db"); !strings.Contains(out, "vcmd_data\n") || strings.Contains(out, "loose") {
		t.Errorf("volumes -q db: %q", out)
	}
	all := c.volumes("volume", "ls")
	if len(all) != 4 || all["vcmd_data"].Driver != "local" || all["vcmd_data"].Scope != "local" ||
		all["vcmd_data"].Labels != "com.docker.compose.project=vcmd,com.docker.compose.volume=data,tier=db" {
		t.Errorf("volume ls: %+v", all)
	}
	if out := c.must("volume", "ls", "-q", "--filter", "dangling=true"); out != anon+"\nloose\n" {
		t.Errorf("dangling: %q", out)
	}
	if out := c.must("volume", "ls", "-q", "--filter", "label=tier=db"); out != "vcmd_data\n" {
		t.Errorf("label: %q", out)
	}
	if out := c.must("volume", "ls", "-q", "--filter", "name=loo"); out != "loose\n" {
		t.Errorf("name: %q", out)
	}
	var inspected []map[string]any
	out, code := c.run("", "volume", "inspect", "loose", "nosuch")
	if code == 0 || !strings.Contains(out, "get nosuch: no such volume") {
		t.Errorf("inspect of a missing volume: %d\n%s", code, out)
	}
	if err := json.Unmarshal([]byte(c.must("volume", "inspect", "loose")), &inspected); err != nil {
		t.Fatal(err)
	}
	if v := inspected[0]; len(inspected) != 1 || v["Name"] != "loose" || v["Driver"] != "local" || v["Scope"] != "local" ||
		v["Mountpoint"] != filepath.Join(c.root, "volumes", "loose", "_data") || v["CreatedAt"] == "" || v["Options"] != nil ||
		v["Labels"].(map[string]any)["team"] != "x" {
		t.Errorf("inspect: %v", inspected)
	}

	// In use: refused, with -f too; -f only forgives a missing one.
	out, code = c.run("", "volume", "rm", "-f", "vcmd_data", "nosuch", "loose")
	if code == 0 || !strings.Contains(out, "remove vcmd_data: conflict: volume is in use - [vcmd-db-1]") || !strings.Contains(out, "loose\n") {
		t.Errorf("rm of a volume in use: %d\n%s", code, out)
	}
	if out, code := c.run("", "volume", "rm", "nosuch"); code == 0 || !strings.Contains(out, "no such volume") {
		t.Errorf("rm of a missing volume: %d %q", code, out)
	}

	// prune asks; no means nothing goes.
	out, _ = c.run("n\n", "volume", "prune")
	if !strings.Contains(out, "WARNING! This will remove anonymous local volumes not used by at least one container.") {
		t.Errorf("prune prompt:\n%s", out)
	}
	if _, ok := c.volumes("volume", "ls")[anon]; !ok {
		t.Error("prune answered no removed a volume")
	}
	c.must("down")
	// Unused now: the anonymous ones go, named ones stay without -a.
	out = c.must("volume", "prune", "-f")
	if !strings.Contains(out, "Deleted Volumes:\n") || !strings.Contains(out, anon+"\n") || !strings.Contains(out, "vcmd_db_") ||
		!strings.Contains(out, "Total reclaimed space: 1kB") || strings.Contains(out, "vcmd_data") {
		t.Errorf("prune:\n%s", out)
	}
	if out := c.must("volume", "prune", "-a", "-f", "--filter", "label=tier"); !strings.Contains(out, "vcmd_data\n") {
		t.Errorf("prune -a --filter label=tier:\n%s", out)
	}
	if got := c.volumes("volume", "ls"); len(got) != 0 {
		t.Errorf("left after prune: %v", got)
	}
	if out := c.must("volume", "prune", "-af"); out != "Total reclaimed space: 0B\n" {
		t.Errorf("prune of nothing: %q", out)
	}
	c.checkClean(before)
}

// TestVolumeBindSymlink: a bind mount whose source is a symlink shows
// the target's files; a symlink inside it that points out of it is
// resolved in the container, writing nothing on the host; a dangling
// one is refused and nothing is created where it points.
func TestVolumeBindSymlink(t *testing.T) {
	dir := t.TempDir()
	real, outside := filepath.Join(dir, "real"), filepath.Join(dir, "outside")
	for _, d := range []string{real, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(real, "content"), []byte("real content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	for _, l := range [][2]string{{real, link}, {outside, filepath.Join(real, "escape")}, {filepath.Join(dir, "missing"), filepath.Join(dir, "dangling")}} {
		if err := os.Symlink(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	c := newCLI(t, `
name: symbind
services:
  app:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes: [`+link+`:/data]
`)
	before := c.hostState()
	c.must("up", "-d")
	if out := c.must("exec", "-T", "app", "cat", "/data/content"); out != "real content\n" {
		t.Errorf("through the symlink: %q", out)
	}
	// /data/escape points at a host path: inside the container that path
	// is the container's own.
	c.run("", "exec", "-T", "app", "sh", "-c", "mkdir -p /data/escape; echo pwned > /data/escape/file")
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the container wrote outside the bind mount: %v", entries)
	}
	c.must("down")

	c.writeCompose("name: symbind\nservices:\n  app:\n    image: busybox\n    volumes: [" + filepath.Join(dir, "dangling") + ":/data]\n")
	out, code := c.run("", "up", "-d")
	if code == 0 || !strings.Contains(out, "is a symlink to "+filepath.Join(dir, "missing")+", which does not exist") {
		t.Errorf("dangling symlink: %d\n%s", code, out)
	}
	if _, err := os.Lstat(filepath.Join(dir, "missing")); err == nil {
		t.Error("berth created the dangling symlink's target")
	}
	c.must("down", "-v")
	c.checkClean(before)
}
