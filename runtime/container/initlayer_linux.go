package container

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The init layer: the mount points every container needs in its root
// filesystem (/proc, /sys, /dev, the /etc files, the init binary's place)
// where its image has none, made once and shared as the top read-only
// layer by every container that needs the same ones of the same image, as
// Docker's "-init" layer (which Docker makes per container).
//
// Without it libcontainer's init makes them in the container's writable
// layer at every first start: for busybox, ten new inodes per container
// (/proc, /sys, /dev, the three /etc files, /sbin/docker-init and the
// copied-up /etc, /usr, /usr/sbin), a third of what creating and starting
// a container creates on the disk. On ext4 without a journal each new
// inode scans past every inode deleted in the last minutes (fs/ext4/
// ialloc.c, recently_deleted), so an `up` soon after a `down` paid for
// them quadratically.
//
// Layers live in <root>/.init/<key>/fs, with <key>/ref counting their
// users: each container's directory holds a hard link to its layer's ref
// (a link makes no inode), so a layer whose ref has one link is unused and
// goes with the last container that used it. Building, linking and
// removing happen under a lock on <root>/.init.

// initLayerDir is the directory of the init layers, beside the containers'
// (a name no container ID can have).
const initLayerDir = ".init"

// initMountpoints are the destinations an init layer provides: those of
// the mounts ociSpec always adds, and the init binary's. Volumes and
// tmpfs mounts of the user are not among them: a new volume takes its
// owner and mode from what the image has at its target (copyUp), and a
// tmpfs without a mode option takes the mode of an existing mount point;
// both must see the image as it is.
var initMountpoints = []string{"/proc", "/dev", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", initPath}

// initEntry is a mount point the init layer provides: a directory, or an
// empty file for a file bind mount.
type initEntry struct {
	path string // absolute, inside the container
	file bool
}

// initEntries lists the mount points of s an init layer can provide, in
// the order they are mounted.
func initEntries(s *specs.Spec) []initEntry {
	var entries []initEntry
	for _, m := range s.Mounts {
		if !slices.Contains(initMountpoints, m.Destination) || slices.ContainsFunc(entries, func(e initEntry) bool { return e.path == m.Destination }) {
			continue
		}
		e := initEntry{path: m.Destination}
		if m.Type == "bind" {
			// As libcontainer decides: a file for a file's bind mount.
			fi, err := os.Stat(m.Source)
			if err != nil {
				continue // libcontainer reports it
			}
			e.file = !fi.IsDir()
		}
		entries = append(entries, e)
	}
	return entries
}

// initLayerKey names the init layer of an image (its layer directories,
// bottom first) for entries.
func initLayerKey(layers []string, entries []initEntry) string {
	h := sha256.New()
	for _, l := range layers {
		fmt.Fprintf(h, "layer %s\x00", l)
	}
	for _, e := range entries {
		fmt.Fprintf(h, "entry %s %t\x00", e.path, e.file)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// initLayer returns the directory of the init layer of layers for the
// mounts of s, made if it does not exist yet, and links the container's
// directory dir to it. It returns "" for a container with nothing to
// provide.
func (r *Runtime) initLayer(dir string, layers []string, s *specs.Spec) (key string, err error) {
	entries := initEntries(s)
	if len(entries) == 0 {
		return "", nil
	}
	key = initLayerKey(layers, entries)
	unlock, err := r.lockInitLayers()
	if err != nil {
		return "", err
	}
	defer unlock()
	base := filepath.Join(r.root, initLayerDir)
	layer := filepath.Join(base, key)
	if _, err := os.Lstat(filepath.Join(layer, "ref")); errors.Is(err, fs.ErrNotExist) {
		if err := buildInitLayer(base, layer, layers, entries); err != nil {
			return "", fmt.Errorf("making the mount points of the image: %w", err)
		}
	} else if err != nil {
		return "", err
	}
	if err := os.Link(filepath.Join(layer, "ref"), filepath.Join(dir, "initlayer")); err != nil {
		return "", err
	}
	return key, nil
}

// initLayerPath is the directory of the init layer key: an overlay lower
// directory.
func (r *Runtime) initLayerPath(key string) string {
	return filepath.Join(r.root, initLayerDir, key, "fs")
}

// lockInitLayers takes the lock of the init layers, between processes:
// a lock on their directory, made if need be. The last prune removes the
// directory; a process that opened it before finds it unlinked once it has
// the lock, and starts again.
func (r *Runtime) lockInitLayers() (func(), error) {
	base := filepath.Join(r.root, initLayerDir)
	for {
		if err := os.Mkdir(base, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		fd, err := unix.Open(base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", base, err)
		}
		if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("locking %s: %w", base, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("locking %s: %w", base, err)
		}
		if st.Nlink > 0 {
			return func() { unix.Close(fd) }, nil
		}
		unix.Close(fd) // removed while we waited
	}
}

// pruneInitLayers removes the init layers no container uses any more, and
// what a build that did not finish left.
func (r *Runtime) pruneInitLayers() error {
	base := filepath.Join(r.root, initLayerDir)
	if _, err := os.Lstat(base); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	unlock, err := r.lockInitLayers()
	if err != nil {
		return err
	}
	defer unlock()
	entries, err := os.ReadDir(base)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		var st unix.Stat_t
		if strings.HasPrefix(e.Name(), "tmp-") || unix.Lstat(filepath.Join(base, e.Name(), "ref"), &st) != nil || st.Nlink <= 1 {
			if err := os.RemoveAll(filepath.Join(base, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// The directory goes with the last layer: a runtime with no
	// containers leaves nothing.
	if err := os.Remove(base); err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// buildInitLayer makes the init layer in a temporary directory of base,
// then renames it to layer.
func buildInitLayer(base, layer string, layers []string, entries []initEntry) (retErr error) {
	tmp, err := os.MkdirTemp(base, "tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(tmp)
		}
	}()
	image, done, err := imageView(tmp, layers)
	if err != nil {
		return err
	}
	err = fillInitLayer(filepath.Join(tmp, "fs"), image, entries)
	if derr := done(); err == nil {
		err = derr
	}
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(tmp, "ref"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	return os.Rename(tmp, layer)
}

// imageView is a directory showing the image's root filesystem, read-only:
// its only layer, or its layers mounted as an overlay in dir. done unmounts
// it.
func imageView(dir string, layers []string) (root string, done func() error, err error) {
	switch len(layers) {
	case 0:
		root = filepath.Join(dir, "empty")
		return root, func() error { return os.Remove(root) }, os.Mkdir(root, 0o755)
	case 1:
		return layers[0], func() error { return nil }, nil
	}
	root = filepath.Join(dir, "image")
	if err := os.Mkdir(root, 0o700); err != nil {
		return "", nil, err
	}
	lower := make([]string, len(layers))
	for i, l := range layers {
		lower[len(layers)-1-i] = escapeOverlay(l)
	}
	if err := unix.Mount("overlay", root, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lower, ":")); err != nil {
		return "", nil, fmt.Errorf("mounting the image's layers: %w", err)
	}
	return root, func() error {
		if err := unix.Unmount(root, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmounting the image's layers: %w", err)
		}
		return os.Remove(root)
	}, nil
}

// fillInitLayer makes in dir each entry the image (seen at image) lacks,
// with the directories leading to it: those the image has with its
// owner, mode and times (the top layer's directory is the one the
// container sees), the others as libcontainer would make them (0755,
// root). The way to an entry is resolved inside the image, symlinks
// included (/sbin -> usr/sbin), as libcontainer resolves it; an entry the
// image already has, or whose way passes through something other than a
// directory, is left out.
func fillInitLayer(dir, image string, entries []initEntry) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := copyImageMeta(dir, image); err != nil {
		return err
	}
	var made []string // directories copied from the image, to date at the end
	for _, e := range entries {
		parent, err := securejoin.SecureJoin(image, filepath.Dir(e.path))
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(image, parent)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		target := filepath.Join(parent, filepath.Base(e.path))
		if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
			continue // the image has it (or it cannot be looked at): as before
		}
		ok, dirs, err := makeWay(dir, image, rel)
		if err != nil {
			return err
		}
		made = append(made, dirs...)
		if !ok {
			continue
		}
		dst := filepath.Join(dir, rel, filepath.Base(e.path))
		if e.file {
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			f.Close()
			err = os.Chmod(dst, 0o644)
		} else {
			err = mkdirMode(dst, 0o755)
		}
		if err != nil {
			return err
		}
	}
	// Last, as adding entries changed them: the times of the directories
	// the image has.
	for _, rel := range append(made, ".") {
		if err := copyTimes(filepath.Join(dir, rel), filepath.Join(image, rel)); err != nil {
			return err
		}
	}
	return nil
}

// makeWay makes in dir the directories of the path rel (resolved in the
// image), those the image has with its metadata. ok is false when a
// component of rel in the image is not a directory. made lists the
// directories copied from the image.
func makeWay(dir, image, rel string) (ok bool, made []string, err error) {
	if rel == "." {
		return true, nil, nil
	}
	p := ""
	for _, c := range strings.Split(rel, "/") {
		p = filepath.Join(p, c)
		dst := filepath.Join(dir, p)
		if fi, err := os.Lstat(dst); err == nil {
			if !fi.IsDir() {
				return false, made, nil
			}
			continue // made for an earlier entry
		}
		fi, err := os.Lstat(filepath.Join(image, p))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := mkdirMode(dst, 0o755); err != nil {
				return false, made, err
			}
		case err != nil:
			return false, made, err
		case !fi.IsDir():
			return false, made, nil
		default:
			if err := os.Mkdir(dst, 0o700); err != nil {
				return false, made, err
			}
			if err := copyMeta(dst, fi); err != nil {
				return false, made, err
			}
			made = append(made, p)
		}
	}
	return true, made, nil
}

// copyImageMeta gives the layer's root the owner and mode of the image's:
// the overlay's root takes them from its top layer.
func copyImageMeta(dst, image string) error {
	fi, err := os.Lstat(image)
	if err != nil {
		return err
	}
	return copyMeta(dst, fi)
}

// mkdirMode makes a directory with exactly mode, whatever the umask.
func mkdirMode(path string, mode os.FileMode) error {
	if err := os.Mkdir(path, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// copyTimes gives dst the access and modification times of src.
func copyTimes(dst, src string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

// escapeOverlay escapes a directory for overlayfs's options, which split
// at ',' and lower directories at ':'.
var escapeOverlay = strings.NewReplacer(`\`, `\\`, ":", `\:`, ",", `\,`).Replace
