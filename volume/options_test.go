package volume

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
)

func TestCreateWithOptions(t *testing.T) {
	m := newManager(t)
	opts := map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
	v, created, err := m.CreateWithOptions("fast", "proj", map[string]string{"k": "v"}, opts)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	opts["o"] = "changed after the call"
	got, err := m.Get("fast")
	if err != nil {
		t.Fatal(err)
	}
	if got.Options["o"] != "size=1m" || !maps.Equal(got.Options, v.Options) {
		t.Errorf("recorded options: %v", got.Options)
	}
	// An existing volume comes back as it is.
	again, created, err := m.CreateWithOptions("fast", "proj", nil, nil)
	if err != nil || created || again.Options["type"] != "tmpfs" {
		t.Errorf("again: %+v %v %v", again, created, err)
	}
	plain, _, err := m.Create("plain", "proj", nil)
	if err != nil || plain.Options != nil {
		t.Errorf("without options: %+v %v", plain, err)
	}
}

func TestDiskUsage(t *testing.T) {
	m := newManager(t)
	v, _, err := m.Create("data", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(v.Path, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Path, "a", "b", "f"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Path, "g"), make([]byte, 24), 0o644); err != nil {
		t.Fatal(err)
	}
	// A second link to a file is not counted twice; a symlink counts its
	// own size, not its target's.
	if err := os.Link(filepath.Join(v.Path, "g"), filepath.Join(v.Path, "g2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(v.Path, "l")); err != nil {
		t.Fatal(err)
	}
	n, err := m.DiskUsage("data")
	if err != nil || n != 1000+24+int64(len("/etc/passwd")) {
		t.Errorf("usage %d %v", n, err)
	}
	if _, err := m.DiskUsage("ghost"); err == nil {
		t.Error("the usage of a missing volume")
	}
}
