package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBuildInitLayer: the init layer holds the mount points the image
// lacks, on the way the image resolves to them, with the directories the
// image has as the image has them.
func TestBuildInitLayer(t *testing.T) {
	needRoot(t)
	stamp := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	// The mount points of a container with init: true.
	entries := []initEntry{
		{path: "/proc"}, {path: "/dev"}, {path: "/sys"},
		{path: "/etc/hosts", file: true}, {path: "/etc/hostname", file: true}, {path: "/etc/resolv.conf", file: true},
		{path: initPath, file: true},
	}
	type node struct {
		path string
		mode os.FileMode // with os.ModeDir for a directory
		uid  int
	}
	tests := []struct {
		name   string
		layers []func(t *testing.T, dir string) // bottom first
		want   []node                           // every entry of the layer but its root
	}{
		{
			name: "an empty image gets every mount point",
			want: []node{
				{"dev", os.ModeDir | 0o755, 0}, {"etc", os.ModeDir | 0o755, 0},
				{"etc/hostname", 0o644, 0}, {"etc/hosts", 0o644, 0}, {"etc/resolv.conf", 0o644, 0},
				{"proc", os.ModeDir | 0o755, 0}, {"sbin", os.ModeDir | 0o755, 0},
				{"sbin/docker-init", 0o644, 0}, {"sys", os.ModeDir | 0o755, 0},
			},
		},
		{
			name: "what the image has is left out, its directories keep owner and mode, symlinks are followed inside it",
			layers: []func(t *testing.T, dir string){func(t *testing.T, dir string) {
				mkdir(t, dir, "dev", 0o755, 0)
				mkdir(t, dir, "proc", 0o555, 0)
				mkdir(t, dir, "etc", 0o750, 42)
				write(t, dir, "etc/hosts")
				mkdir(t, dir, "usr", 0o755, 0)
				mkdir(t, dir, "usr/sbin", 0o711, 7)
				symlink(t, dir, "sbin", "usr/sbin")
				symlink(t, dir, "sys", "/../../outside") // resolved inside the image
				stampAll(t, dir, stamp)
			}},
			want: []node{
				{"etc", os.ModeDir | 0o750, 42}, {"etc/hostname", 0o644, 0}, {"etc/resolv.conf", 0o644, 0},
				{"usr", os.ModeDir | 0o755, 0}, {"usr/sbin", os.ModeDir | 0o711, 7}, {"usr/sbin/docker-init", 0o644, 0},
			},
		},
		{
			name: "a way through a file is left to libcontainer",
			layers: []func(t *testing.T, dir string){func(t *testing.T, dir string) {
				write(t, dir, "etc")
				write(t, dir, "sbin")
				mkdir(t, dir, "proc", 0o755, 0)
				mkdir(t, dir, "dev", 0o755, 0)
				mkdir(t, dir, "sys", 0o755, 0)
			}},
			want: nil,
		},
		{
			name: "the layers are seen merged: a whiteout hides a lower layer's entry",
			layers: []func(t *testing.T, dir string){
				func(t *testing.T, dir string) {
					for _, d := range []string{"proc", "dev", "sys", "sbin"} {
						mkdir(t, dir, d, 0o755, 0)
					}
					mkdir(t, dir, "etc", 0o755, 0)
					write(t, dir, "etc/hosts")
					write(t, dir, "etc/hostname")
					write(t, dir, "etc/resolv.conf")
					write(t, dir, "sbin/docker-init")
				},
				func(t *testing.T, dir string) {
					if err := unix.Mknod(filepath.Join(dir, "proc"), unix.S_IFCHR, 0); err != nil {
						t.Fatal(err)
					}
					mkdir(t, dir, "etc", 0o700, 3) // the top layer's directory is the one seen
					if err := unix.Mknod(filepath.Join(dir, "etc", "hosts"), unix.S_IFCHR, 0); err != nil {
						t.Fatal(err)
					}
				},
			},
			want: []node{{"etc", os.ModeDir | 0o700, 3}, {"etc/hosts", 0o644, 0}, {"proc", os.ModeDir | 0o755, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var layers []string
			for _, fill := range tt.layers {
				l := t.TempDir()
				fill(t, l)
				layers = append(layers, l)
			}
			base := t.TempDir()
			layer := filepath.Join(base, "key")
			if err := buildInitLayer(base, layer, layers, entries); err != nil {
				t.Fatal(err)
			}
			got := tree(t, filepath.Join(layer, "fs"))
			var want []string
			for _, n := range tt.want {
				want = append(want, describe(n.path, n.mode, n.uid))
			}
			if !slices.Equal(got, want) {
				t.Errorf("layer:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if len(tt.layers) == 1 {
				// Directories copied from the image keep its times, so
				// that ls -l in the container shows the image's.
				for _, n := range tt.want {
					fi, err := os.Lstat(filepath.Join(layers[0], n.path))
					if err != nil || !fi.IsDir() {
						continue
					}
					if got, _ := os.Lstat(filepath.Join(layer, "fs", n.path)); !got.ModTime().Equal(fi.ModTime()) {
						t.Errorf("%s: modified %v, the image's %v", n.path, got.ModTime(), fi.ModTime())
					}
				}
			}
			if names, _ := os.ReadDir(base); len(names) != 1 || names[0].Name() != "key" {
				t.Errorf("left in the layers' directory: %v", names)
			}
			if _, err := os.Stat(filepath.Join(layer, "ref")); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestInitLayerShared: containers of one image share one init layer,
// write nothing of their own to start, and the layer goes with the last.
func TestInitLayerShared(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	var cts []*Container
	for range 2 {
		c := busyboxSpec(t, "sleep", "60")
		c.Init = true
		ct, err := rt.Create(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ct.Delete(ctx, true) })
		if err := ct.Start(ctx, StartOptions{}); err != nil {
			t.Fatal(err)
		}
		cts = append(cts, ct)
	}
	var keys []string
	for _, ct := range cts {
		rec, err := rt.readRecord(ct.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.InitLayer == "" {
			t.Fatalf("%s has no init layer", ct.ID)
		}
		keys = append(keys, rec.InitLayer)
		upper, err := os.ReadDir(filepath.Join(rt.dir(ct.ID), "upper"))
		if err != nil {
			t.Fatal(err)
		}
		if len(upper) != 0 {
			t.Errorf("%s wrote to its own layer to start: %v", ct.ID, upper)
		}
	}
	if keys[0] != keys[1] {
		t.Fatalf("two containers of one image have two init layers: %v", keys)
	}
	layers, err := os.ReadDir(filepath.Join(rt.root, initLayerDir))
	if err != nil || len(layers) != 1 {
		t.Fatalf("init layers: %v, %v; want one", layers, err)
	}
	for i, ct := range cts {
		if err := ct.Delete(ctx, true); err != nil {
			t.Fatal(err)
		}
		_, err := os.Stat(rt.initLayerPath(keys[0]))
		if last := i == len(cts)-1; last != errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after deleting %d of %d containers, the layer: %v", i+1, len(cts), err)
		}
	}
	if _, err := os.Stat(filepath.Join(rt.root, initLayerDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the init layers' directory is left: %v", err)
	}
}

func mkdir(t *testing.T, root, rel string, mode os.FileMode, uid int) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, root, rel string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, rel), []byte("image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, root, rel, target string) {
	t.Helper()
	if err := os.Symlink(target, filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
}

// stampAll sets the times of every directory under root.
func stampAll(t *testing.T, root string, stamp time.Time) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Chtimes(p, stamp, stamp)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// tree lists what is under root, one line per entry, sorted.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		lines = append(lines, describe(rel, fi.Mode(), int(fi.Sys().(*syscall.Stat_t).Uid)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func describe(rel string, mode os.FileMode, uid int) string {
	return fmt.Sprintf("%s %s uid %d", rel, mode, uid)
}
