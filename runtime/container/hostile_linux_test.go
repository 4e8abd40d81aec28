package container

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostileImages: an image is untrusted. Its config and files must not
// lead berth to act on the host (shared/RELIABILITY.md).
func TestHostileImages(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()

	t.Run("WorkingDir /proc/self/fd/7 fails to start", func(t *testing.T) {
		// CVE-2024-21626: a working directory through a leaked fd of the
		// runtime lands the process on the host's filesystem.
		c := busyboxSpec(t, "pwd")
		c.Process.WorkingDir = "/proc/self/fd/7"
		ct := create(t, rt, c)
		err := ct.Start(ctx, StartOptions{})
		if err == nil || !strings.Contains(err.Error(), "working_dir") || !strings.Contains(err.Error(), "/proc/self/fd/7") {
			t.Fatalf("start: %v, want a working_dir error naming the path", err)
		}
		if s, _ := ct.State(ctx); s.Status != "created" {
			t.Errorf("state %q after a refused start", s.Status)
		}
	})

	t.Run("a symlinked /etc/passwd is not followed to the host", func(t *testing.T) {
		host := t.TempDir()
		marker := filepath.Join(host, "passwd")
		if err := os.WriteFile(marker, []byte("evil:x:0:0:host file:/root:/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// A layer on top of busybox whose /etc/passwd points at the
		// host's file by absolute path.
		layer := t.TempDir()
		if err := os.Mkdir(filepath.Join(layer, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(marker, filepath.Join(layer, "etc", "passwd")); err != nil {
			t.Fatal(err)
		}
		c := busyboxSpec(t, "id")
		c.Layers = append(c.Layers, layer)
		c.Process.User = "evil"
		ct := create(t, rt, c)
		err := ct.Start(ctx, StartOptions{})
		if err == nil || !strings.Contains(err.Error(), "evil") {
			t.Fatalf("start: %v, want an error saying user evil is not in the image", err)
		}
		if strings.Contains(err.Error(), "host file") {
			t.Errorf("the host's file was read: %v", err)
		}
	})
}
