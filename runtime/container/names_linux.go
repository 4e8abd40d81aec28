package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/flock"
)

// Container names are the host's, as Docker's are: two containers never
// share one, whatever their projects. Each name is a symbolic link in
// the names directory, to the id of the container that holds it, made
// when the container is created (the link's creation is what decides
// between two at once) and removed with it.

// namesDir holds the names' links; its leading dot keeps it out of List.
func (r *Runtime) namesDir() string { return filepath.Join(r.root, ".names") }

// claimName gives the container id the name, unless another container
// holds it. A link left to a container that is gone (a crash between its
// removal and its link's) is taken over.
func (r *Runtime) claimName(ctx context.Context, name, id string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := r.ensureNames(); err != nil {
		return err
	}
	link := filepath.Join(r.namesDir(), name)
	for stale := false; ; stale = true {
		err := os.Symlink(id, link)
		if err == nil || !errors.Is(err, os.ErrExist) {
			return err
		}
		holder, err := os.Readlink(link)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if holder == id {
			return nil
		}
		if holder != "" && r.exists(holder) {
			return fmt.Errorf("%w: container name %q is already in use by container %s: remove it, or give this one another name", errdefs.ErrConflict, name, holder)
		}
		if stale {
			return fmt.Errorf("container name %q: its link %s keeps changing", name, link)
		}
		// Taken over under the lock, so that two takers do not each
		// remove the other's new link.
		unlock, err := flock.Lock(ctx, filepath.Join(r.namesDir(), ".lock"))
		if err != nil {
			return err
		}
		if now, _ := os.Readlink(link); now == holder {
			os.Remove(link)
		}
		unlock()
	}
}

// checkName refuses a name Docker would not give a container (and that
// could not be a link's name).
func checkName(name string) error {
	if !validID(name) {
		return fmt.Errorf("%w: container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", errdefs.ErrInvalidArgument, name)
	}
	return nil
}

// releaseName removes the name's link if it is the container id's.
func (r *Runtime) releaseName(name, id string) error {
	if !validID(name) {
		return nil
	}
	link := filepath.Join(r.namesDir(), name)
	if holder, err := os.Readlink(link); err != nil || holder != id {
		return nil
	}
	if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("releasing the name %s: %w", name, err)
	}
	return nil
}

// exists reports whether the container id has a directory.
func (r *Runtime) exists(id string) bool {
	_, err := os.Lstat(r.dir(id))
	return err == nil
}

// ensureNames makes the names directory when it is missing: with a link
// for every container an earlier berth made without one. It is built
// aside and renamed into place, so that no one sees it half made.
func (r *Runtime) ensureNames() error {
	if _, err := os.Stat(r.namesDir()); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(r.root, ".names-")
	if err != nil {
		return fmt.Errorf("making the container names' directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	ids, err := r.List(context.Background())
	if err != nil {
		return err
	}
	for _, id := range ids {
		rec, err := r.readRecord(id)
		if err != nil || !validID(rec.Spec.Name) {
			continue // half made or half removed: it holds no name
		}
		if err := os.Symlink(id, filepath.Join(tmp, rec.Spec.Name)); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("making the container names' directory: %w", err)
		}
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	if err := os.Rename(tmp, r.namesDir()); err != nil {
		if _, serr := os.Stat(r.namesDir()); serr == nil {
			return nil // another process made it first
		}
		return fmt.Errorf("making the container names' directory: %w", err)
	}
	return nil
}
