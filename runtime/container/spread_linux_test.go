package container

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// On ext4 the directories that hold one directory per container are marked
// the top of directory hierarchies (spreadSubdirs says why); elsewhere New
// works without the mark.
func TestNewSpreadsContainerDirs(t *testing.T) {
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	ext4 := st.Type == unix.EXT4_SUPER_MAGIC
	if !ext4 {
		t.Logf("%s is not on ext4: only checking that New works", dir)
	}
	o := Options{Root: filepath.Join(dir, "containers"), Run: filepath.Join(dir, "run")}
	for range 2 { // and again, on directories that have the mark
		if _, err := New(o); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{o.Root, filepath.Join(o.Run, "runc"), filepath.Join(o.Run, "containers")} {
		f, err := os.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
		f.Close()
		if ext4 && (err != nil || flags&0x20000 == 0) {
			t.Errorf("%s: flags %#x, %v: want FS_TOPDIR_FL", d, flags, err)
		}
	}
}
