package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/openat2"
)

// inRoot resolves a path the way the container will see it: absolute
// symlinks and ".." stop at the root, magic links (/proc/self/...) and
// mount crossings are refused.
const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// maxSymlinks is the kernel's limit on symlinks followed in one lookup
// (MAXSYMLINKS), which berth applies when it follows them itself.
const maxSymlinks = 40

// ResolveUser resolves a user specification as Docker does (see
// ResolveUserFrom), from the /etc/passwd and /etc/group of the root
// filesystem at root.
//
// The files are opened inside root: a symlinked /etc/passwd, absolute or
// full of "..", resolves as it would in the container, never to a file of
// the host. They must be regular files of at most 10 MiB. A missing file is
// only an error when a name has to be looked up in it.
func ResolveUser(root, user string, groupAdd []string) (User, error) {
	rootfd, err := openRoot(root)
	if err != nil {
		return User{}, err
	}
	defer unix.Close(rootfd)
	return resolveUser(user, groupAdd,
		func() ([]byte, error) { return readFileInRoot(rootfd, "etc/passwd") },
		func() ([]byte, error) { return readFileInRoot(rootfd, "etc/group") })
}

func openRoot(root string) (int, error) {
	fd, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening root filesystem %s: %w", root, err)
	}
	return fd, nil
}

// readFileInRoot reads a small regular file of the root; nil, nil when it
// does not exist.
func readFileInRoot(rootfd int, name string) ([]byte, error) {
	// Look first, through a descriptor that cannot read: opening a FIFO
	// would block and opening a device could have effects of its own.
	pfd, err := openat2.Open(rootfd, name, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: inRoot})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, explainOpen(err)
	}
	var want unix.Stat_t
	err = unix.Fstat(pfd, &want)
	unix.Close(pfd)
	if err != nil {
		return nil, err
	}
	if want.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%w: not a regular file (%s)", errdefs.ErrInvalidArgument, fileType(want.Mode))
	}
	// O_NONBLOCK: should the name have been swapped for a FIFO since,
	// the open returns at once and the check below refuses it.
	fd, err := openat2.Open(rootfd, name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC, Resolve: inRoot})
	if err != nil {
		return nil, explainOpen(err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		return nil, err
	}
	if got.Mode&unix.S_IFMT != unix.S_IFREG || got.Dev != want.Dev || got.Ino != want.Ino {
		return nil, fmt.Errorf("%w: the file changed while it was being opened", errdefs.ErrConflict)
	}
	return readLimited(f)
}

func explainOpen(err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%w: too many symlinks, or a link into /proc", errdefs.ErrInvalidArgument)
	case errors.Is(err, unix.EXDEV):
		return fmt.Errorf("%w: the path leaves the root file system", errdefs.ErrInvalidArgument)
	}
	return err
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symlink"
	}
	return "of an unknown type"
}

// MkdirWorkingDir creates the working directory dir (see CleanWorkingDir)
// inside the root filesystem at root when it is missing, as Docker does
// before a container starts (container.SetupWorkingDirectory): each missing
// directory is created 0755 and owned by uid:gid, which Docker gives as the
// container's root on the host (0:0 without user namespaces), not the
// container's user. Existing directories are left as they are.
//
// dir is resolved as the container will resolve it: a symlink on the way,
// absolute or relative, stays inside root. A dir that is, or resolves to, a
// place under /proc, /dev or /sys is refused before anything is created,
// and so is a path through something that is not a directory.
func MkdirWorkingDir(root, dir string, uid, gid uint32) error {
	clean, err := CleanWorkingDir(dir)
	if err != nil {
		return err
	}
	rootfd, err := openRoot(root)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)

	existing, missing, err := resolveDir(rootfd, clean)
	if err != nil {
		return fmt.Errorf("working directory %q: %w", clean, err)
	}
	resolved := "/" + path.Join(append(existing, missing...)...)
	if err := checkNotRuntimeMount(clean, resolved); err != nil {
		return err
	}

	// The resolved path has no symlinks left: refusing any now means
	// nothing was swapped under berth's feet since it looked.
	name := path.Join(existing...)
	if name == "" {
		name = "."
	}
	fd, err := openat2.Open(rootfd, name, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: inRoot | unix.RESOLVE_NO_SYMLINKS,
	})
	if err != nil {
		return fmt.Errorf("working directory %q: opening %s: %w", clean, "/"+path.Join(existing...), explainOpen(err))
	}
	for _, el := range missing {
		next, err := mkdirOwned(fd, el, uid, gid)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("working directory %q: %w", clean, err)
		}
		fd = next
	}
	unix.Close(fd)
	return nil
}

// mkdirOwned creates directory name in parent (or takes the one that
// appeared meanwhile) and returns it opened.
func mkdirOwned(parent int, name string, uid, gid uint32) (int, error) {
	err := unix.Mkdirat(parent, name, 0o755)
	created := err == nil
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("creating %s: %w", name, err)
	}
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening %s: %w", name, err)
	}
	if created {
		// Through the descriptor, and the mode after the owner: the
		// umask must not decide it, and chown may clear mode bits.
		if err := unix.Fchown(fd, int(uid), int(gid)); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("setting the owner of %s: %w", name, err)
		}
		if err := unix.Fchmod(fd, 0o755); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("setting the mode of %s: %w", name, err)
		}
	}
	return fd, nil
}

// resolveDir follows dir inside the root, one component at a time, as the
// kernel would in the container: symlinks are read and followed (absolute
// ones from the root), ".." never climbs above the root. It returns the
// components that exist, all directories, and those to create, with no
// symlink left in either. Nothing is changed.
func resolveDir(rootfd int, dir string) (existing, missing []string, err error) {
	todo := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	links := 0
	for len(todo) > 0 {
		el := todo[0]
		todo = todo[1:]
		switch {
		case el == "" || el == ".":
			continue
		case el == "..":
			// Only a symlink target brings "..": dir itself has none.
			if len(missing) > 0 {
				missing = missing[:len(missing)-1]
			} else if len(existing) > 0 {
				existing = existing[:len(existing)-1]
			}
			continue
		case len(missing) > 0:
			// Below a missing directory everything is missing.
			missing = append(missing, el)
			continue
		}

		parent := path.Join(existing...)
		if parent == "" {
			parent = "."
		}
		pfd, err := openat2.Open(rootfd, parent, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: inRoot | unix.RESOLVE_NO_SYMLINKS,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("opening /%s: %w", path.Join(existing...), explainOpen(err))
		}
		var st unix.Stat_t
		err = unix.Fstatat(pfd, el, &st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			unix.Close(pfd)
			missing = append(missing, el)
			continue
		}
		if err != nil {
			unix.Close(pfd)
			return nil, nil, fmt.Errorf("/%s: %w", path.Join(append(existing, el)...), err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			unix.Close(pfd)
			existing = append(existing, el)
		case unix.S_IFLNK:
			target, err := readlinkat(pfd, el)
			unix.Close(pfd)
			if err != nil {
				return nil, nil, fmt.Errorf("/%s: %w", path.Join(append(existing, el)...), err)
			}
			if links++; links > maxSymlinks {
				return nil, nil, fmt.Errorf("%w: too many levels of symlinks", errdefs.ErrInvalidArgument)
			}
			if strings.HasPrefix(target, "/") {
				existing = existing[:0]
			}
			todo = append(strings.Split(target, "/"), todo...)
		default:
			unix.Close(pfd)
			return nil, nil, fmt.Errorf("%w: /%s is %s, not a directory", errdefs.ErrInvalidArgument, path.Join(append(existing, el)...), fileType(st.Mode))
		}
	}
	return existing, missing, nil
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size >= unix.PathMax {
			return "", unix.ENAMETOOLONG
		}
	}
}
