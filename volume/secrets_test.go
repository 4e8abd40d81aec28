package volume

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"
)

// owner is an owner the test may give files: another user when it runs as
// root, else its own.
func owner() (uid, gid int) {
	if os.Getuid() == 0 {
		return 1234, 5678
	}
	return os.Getuid(), os.Getgid()
}

func TestWriteFiles(t *testing.T) {
	uid, gid := owner()
	dir := filepath.Join(t.TempDir(), "secrets")
	files := []File{
		{Name: "0", Content: []byte("s3cr3t\n"), UID: uid, GID: gid, Mode: 0o400},
		{Name: "1", Content: []byte("listen=8080\n"), Mode: 0o444},
		{Name: "2", Content: nil, UID: uid, GID: gid, Mode: 0o777}, // above any umask
		{Name: "3", Content: []byte("x"), Mode: 0},
	}
	if os.Getuid() != 0 {
		files[1].UID, files[1].GID = uid, gid
		files[3].UID, files[3].GID = uid, gid
	}
	if err := WriteFiles(context.Background(), dir, files); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v, want a directory 0700", fi.Mode())
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(f.Content) {
			t.Errorf("%s: %q, want %q", f.Name, b, f.Content)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != f.Mode || int(st.Uid) != f.UID || int(st.Gid) != f.GID {
			t.Errorf("%s: %v %d:%d, want a regular file %v %d:%d", f.Name, fi.Mode(), st.Uid, st.Gid, f.Mode, f.UID, f.GID)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(files) {
		t.Errorf("%d entries, want %d (temporary files left?)", len(entries), len(files))
	}
}

// WriteFiles never writes through what is already at dir: a symlink
// planted there, or a directory someone made.
func TestWriteFilesExistingDir(t *testing.T) {
	base := t.TempDir()
	elsewhere := filepath.Join(base, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	files := []File{{Name: "s", Content: []byte("x"), UID: os.Getuid(), GID: os.Getgid(), Mode: 0o444}}
	for _, dir := range []string{link, elsewhere} {
		if err := WriteFiles(context.Background(), dir, files); !errors.Is(err, fs.ErrExist) {
			t.Errorf("%s: %v, want an error that it exists", dir, err)
		}
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("written through: %v", entries)
	}
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("the link went: %v", err)
	}
}

func TestWriteFilesInvalid(t *testing.T) {
	uid, gid := os.Getuid(), os.Getgid()
	ok := File{Name: "ok", Content: []byte("x"), UID: uid, GID: gid, Mode: 0o444}
	for name, f := range map[string]File{
		"empty name":   {Name: "", Mode: 0o444, UID: uid, GID: gid},
		"parent":       {Name: "..", Mode: 0o444, UID: uid, GID: gid},
		"slash":        {Name: "a/b", Mode: 0o444, UID: uid, GID: gid},
		"dot":          {Name: ".ok.tmp", Mode: 0o444, UID: uid, GID: gid},
		"negative uid": {Name: "n", Mode: 0o444, UID: -1, GID: gid},
		"setuid":       {Name: "n", Mode: 0o4755, UID: uid, GID: gid},
		"type bits":    {Name: "n", Mode: fs.ModeSymlink | 0o777, UID: uid, GID: gid},
		"duplicate":    ok,
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "secrets")
			err := WriteFiles(context.Background(), dir, []File{ok, f})
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("%v, want an invalid argument", err)
			}
			if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("directory left: %v", err)
			}
		})
	}
}

// A write that fails half-way (here, its context cancelled) leaves no
// directory.
func TestWriteFilesFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := WriteFiles(ctx, dir, []File{{Name: "s", Content: []byte("x"), UID: os.Getuid(), GID: os.Getgid(), Mode: 0o444}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%v, want context.Canceled", err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory left: %v", err)
	}
}
