package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
)

// File is one of a container's secrets or configs as WriteFiles writes it:
// Content in the file Name, owned by UID:GID with mode Mode.
type File struct {
	Name     string
	Content  []byte
	UID, GID int
	Mode     fs.FileMode
}

// WriteFiles makes the directory dir and writes files in it, for a
// container to bind-mount: each one whole (written under a temporary name,
// synced, renamed), owned by its UID:GID and with exactly its mode whatever
// the umask. dir is 0700, so that only root on the host reads a secret,
// whatever the file's own mode says to the container.
//
// dir must not exist: a new directory holds nothing anyone else planted
// (a symlink, a file of the wrong owner), and every file is created in it
// exclusively, never through a link. On failure dir is removed.
func WriteFiles(ctx context.Context, dir string, files []File) (retErr error) {
	seen := map[string]bool{}
	for _, f := range files {
		if err := checkFile(f); err != nil {
			return err
		}
		if seen[f.Name] {
			return fmt.Errorf("%w: two files named %q", errdefs.ErrInvalidArgument, f.Name)
		}
		seen[f.Name] = true
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(dir)
		}
	}()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	// Mkdir's mode went through the umask: set it exactly.
	if err := root.Chmod(".", 0o700); err != nil {
		return err
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeFile(root, f); err != nil {
			return fmt.Errorf("writing %s: %w", filepath.Join(dir, f.Name), err)
		}
	}
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	// The renames outlive a crash of the host.
	return d.Sync()
}

func checkFile(f File) error {
	switch {
	case f.Name == "" || strings.ContainsRune(f.Name, '/') || f.Name[0] == '.' || !filepath.IsLocal(f.Name):
		// A leading dot is kept for the temporary names.
		return fmt.Errorf("%w: file name %q: one path component, not starting with a dot", errdefs.ErrInvalidArgument, f.Name)
	case f.UID < 0 || f.GID < 0:
		return fmt.Errorf("%w: file %s: owner %d:%d", errdefs.ErrInvalidArgument, f.Name, f.UID, f.GID)
	case f.Mode&^fs.ModePerm != 0:
		return fmt.Errorf("%w: file %s: mode %v: permission bits only", errdefs.ErrInvalidArgument, f.Name, f.Mode)
	}
	return nil
}

// writeFile writes f in root: created exclusively (O_EXCL never follows a
// link in the last component, and os.Root none out of the directory),
// owned and moded through its descriptor before anyone can open it by
// name.
func writeFile(root *os.Root, f File) (retErr error) {
	tmp := "." + f.Name + ".tmp"
	w, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			root.Remove(tmp)
		}
	}()
	_, err = w.Write(f.Content)
	if err == nil {
		err = w.Chown(f.UID, f.GID)
	}
	if err == nil {
		// After the chown, which may clear mode bits.
		err = w.Chmod(f.Mode)
	}
	if err == nil {
		err = w.Sync()
	}
	err = errors.Join(err, w.Close())
	if err != nil {
		return err
	}
	return root.Rename(tmp, f.Name)
}
