package volume

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("these tests need root")
		}
		t.Skip("needs root: mounts the volume store")
	}
}

// newStore returns a manager whose store is unmounted (its loop device
// freed) when the test ends.
func newStore(t *testing.T) *Manager {
	t.Helper()
	needRoot(t)
	return newManager(t)
}

// newManager returns a manager of volumes in a temporary directory; the
// btrfs store it may mount there (as root) is unmounted at the end.
func newManager(t *testing.T) *Manager {
	t.Helper()
	root := filepath.Join(t.TempDir(), "volumes")
	m, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	return m
}

// TestSnapshotRoundTrip: a restore brings back the files, modes, owners,
// xattrs and links of the save, and removes what was made since; the
// store survives an unmount (a reboot) and a removed volume comes back
// with its labels.
func TestSnapshotRoundTrip(t *testing.T) {
	m := newStore(t)
	if m.why != "" {
		t.Fatalf("no btrfs store on this machine: %s", m.why)
	}
	v, _, err := m.Create("p_data", "p", map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	if !m.btrfs || !isSubvolume(v.Path) {
		t.Fatalf("volume data is not a subvolume (btrfs %v)", m.btrfs)
	}
	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(v.Path, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("keep", "saved\n", 0o640)
	write("dir/changed", "before\n", 0o600)
	os.Chown(filepath.Join(v.Path, "keep"), 999, 70)
	if err := unix.Setxattr(filepath.Join(v.Path, "keep"), "user.berth", []byte("x1"), 0); err != nil {
		t.Fatal(err)
	}
	os.Symlink("keep", filepath.Join(v.Path, "link"))
	if err := m.SnapshotsSupported(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SaveSnapshot("p", "base", []string{"db"}, []string{"p_data"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SaveSnapshot("p", "base", nil, []string{"p_data"}); !errdefs.IsAlreadyExists(err) {
		t.Errorf("second save of a name: %v", err)
	}

	write("dir/changed", "after\n", 0o666)
	write("new", "made since\n", 0o644)
	os.Remove(filepath.Join(v.Path, "keep"))

	if _, err := m.RestoreSnapshot("p", "base", nil, nil); err != nil {
		t.Fatal(err)
	}
	// The replaced data waits in the trash until FreeTrash.
	trashed(t, m, 1)
	check := func() {
		t.Helper()
		if b, _ := os.ReadFile(filepath.Join(v.Path, "dir/changed")); string(b) != "before\n" {
			t.Errorf("dir/changed = %q", b)
		}
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(v.Path, "keep"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o7777 != 0o640 || st.Uid != 999 || st.Gid != 70 {
			t.Errorf("keep: mode %o owner %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
		}
		buf := make([]byte, 16)
		if n, err := unix.Getxattr(filepath.Join(v.Path, "keep"), "user.berth", buf); err != nil || !bytes.Equal(buf[:n], []byte("x1")) {
			t.Errorf("xattr: %q %v", buf[:n], err)
		}
		if target, _ := os.Readlink(filepath.Join(v.Path, "link")); target != "keep" {
			t.Errorf("link -> %q", target)
		}
		if _, err := os.Stat(filepath.Join(v.Path, "new")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a file made after the save survived the restore: %v", err)
		}
		if entries, _ := os.ReadDir(filepath.Dir(v.Path)); len(entries) != 2 {
			t.Errorf("volume directory holds %d entries, want _data and volume.json", len(entries))
		}
	}
	check()

	// A reboot: the store is unmounted; the next manager mounts it.
	if err := unix.Unmount(m.root, 0); err != nil {
		t.Fatal(err)
	}
	m, err = New(m.root)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("p_data"); err != nil {
		t.Fatal(err)
	}
	s, err := m.RestoreSnapshot("p", "base", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.Get("p_data"); err != nil || got.Labels["k"] != "v" {
		t.Fatalf("volume after restore: %+v %v", got, err)
	}
	check()
	if len(s.Services) != 1 || s.Services[0] != "db" {
		t.Errorf("services: %v", s.Services)
	}

	list, err := m.Snapshots("p")
	if err != nil || len(list) != 1 || list[0].Name != "base" {
		t.Errorf("Snapshots: %v %v", list, err)
	}
	trashed(t, m, 0) // the volume was made again: nothing replaced
	if err := m.RemoveSnapshot("p", "base"); err != nil {
		t.Fatal(err)
	}
	trashed(t, m, 1)
	if _, err := m.GetSnapshot("p", "base"); !errdefs.IsNotFound(err) {
		t.Errorf("after rm: %v", err)
	}
	if entries, _ := os.ReadDir(m.snapshotDir("p")); len(entries) != 0 {
		t.Errorf("left in the snapshot directory: %v", entries)
	}
	if _, err := m.RestoreSnapshot("p", "base", nil, nil); !errdefs.IsNotFound(err) {
		t.Errorf("restore of a removed snapshot: %v", err)
	}
}

// TestPlainStore: volumes made before the btrfs store stay plain
// directories, and snapshots say why they cannot be taken.
func TestPlainStore(t *testing.T) {
	needRoot(t)
	root := filepath.Join(t.TempDir(), "volumes")
	if err := os.MkdirAll(filepath.Join(root, "old", "_data"), 0o700); err != nil {
		t.Fatal(err)
	}
	m, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := m.Create("p_x", "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	if isSubvolume(v.Path) {
		t.Error("a subvolume in a plain store")
	}
	err = m.SnapshotsSupported()
	if !errors.Is(err, ErrSnapshotsUnsupported) || !strings.Contains(err.Error(), "made before") {
		t.Errorf("SnapshotsSupported: %v", err)
	}
	if _, err := m.SaveSnapshot("p", "s", nil, []string{"p_x"}); !errors.Is(err, ErrSnapshotsUnsupported) {
		t.Errorf("SaveSnapshot: %v", err)
	}
}

// TestInvalidSnapshotNames: names that could leave the snapshot directory
// are refused.
func TestInvalidSnapshotNames(t *testing.T) {
	m := &Manager{root: t.TempDir()}
	for _, name := range []string{"", "..", "../x", "a/b", ".tmp-x", "-x"} {
		if _, err := m.GetSnapshot("p", name); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// trashed checks that the trash holds n entries, then frees them.
func trashed(t *testing.T, m *Manager, n int) {
	t.Helper()
	entries, _ := os.ReadDir(m.trashDir())
	if len(entries) != n {
		t.Errorf("trash holds %d entries, want %d", len(entries), n)
	}
	if err := m.FreeTrash(); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(m.trashDir()); err != nil || len(entries) != 0 {
		t.Errorf("trash after FreeTrash: %v %v", entries, err)
	}
	if err := m.FreeTrash(); err != nil {
		t.Errorf("FreeTrash of an empty trash: %v", err)
	}
}
