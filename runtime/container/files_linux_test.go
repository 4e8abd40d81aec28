package container

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/runtime/spec"
)

// TestFiles: a container's secrets and configs are there with their owner
// and mode, read-only, also in a read-only root filesystem and after a
// restart; their contents are not in the container's state, and Delete
// leaves nothing of them.
func TestFiles(t *testing.T) {
	rt := newRuntime(t)
	c := busyboxSpec(t, "sh", "-c", `
for f in /run/secrets/token /etc/app/app.conf; do echo "$(stat -c '%u %g %a' $f) $(cat $f)"; done
echo x > /run/secrets/token || echo refused
grep ' /run/secrets/token ' /proc/mounts`)
	c.ReadOnly = true
	c.Files = []spec.File{
		{Target: "/run/secrets/token", Content: spec.Content("s3cr3t-token"), UID: 1000, GID: 2000, Mode: 0o400},
		{Target: "/etc/app/app.conf", Content: spec.Content("listen=8080"), Mode: 0o444},
	}
	want := []string{"1000 2000 400 s3cr3t-token", "0 0 444 listen=8080", "refused", "ro,nosuid,nodev,noexec"}
	ct, err := rt.Create(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	// When the test fails before its own Delete.
	t.Cleanup(func() { ct.Delete(t.Context(), true) })
	// The second start remakes libcontainer's container.
	for run := range 2 {
		var out bytes.Buffer
		w := &syncWriter{w: &out}
		if err := ct.Start(t.Context(), StartOptions{Stdout: w, Stderr: w}); err != nil {
			t.Fatal(err)
		}
		if _, err := ct.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, s := range want {
			if !strings.Contains(w.String(), s) {
				t.Errorf("run %d: output lacks %q:\n%s", run+1, s, w.String())
			}
		}
	}
	dir := filepath.Join(rt.dir(ct.ID), secretsDir)
	var state []byte
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v %v, want a directory 0700", dir, fi, err)
	}
	state, err = os.ReadFile(filepath.Join(rt.dir(ct.ID), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(state, []byte("s3cr3t")) {
		t.Error("the secret is in the container's state")
	}
	if err := ct.Delete(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left: %v", dir, err)
	}
}

// TestFilesHostileImage: an image whose /run/secrets is a symlink to a
// host directory (by absolute path) gets its secret inside its own root
// filesystem; nothing is made on the host.
func TestFilesHostileImage(t *testing.T) {
	rt := newRuntime(t)
	host := t.TempDir()
	layer := t.TempDir()
	if err := os.Mkdir(filepath.Join(layer, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(layer, "run", "secrets")); err != nil {
		t.Fatal(err)
	}
	c := busyboxSpec(t, "cat", "/run/secrets/token")
	c.Layers = append(c.Layers, layer)
	c.Files = []spec.File{{Target: "/run/secrets/token", Content: spec.Content("s3cr3t"), Mode: 0o444}}
	out, e := run(t, rt, c)
	if e.Code != 0 || out != "s3cr3t" {
		t.Errorf("in the container: exit %d, %q", e.Code, out)
	}
	if entries, _ := os.ReadDir(host); len(entries) != 0 {
		t.Errorf("made on the host: %v", entries)
	}
}
