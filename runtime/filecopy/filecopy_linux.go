// Package filecopy copies files and directory trees between the host and a
// container's root filesystem, as `docker cp` does, for `berth cp`.
//
// Every path on either side is resolved inside its root, whatever the
// symbolic links on the way say (openat2 with RESOLVE_IN_ROOT, as if the
// process were chrooted there), and every entry is then read or written
// relative to its parent directory's descriptor without following a link:
// a container cannot make a copy read or write outside itself, even while
// it changes its files during the copy.
package filecopy

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/openat2"
)

const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// Root is a directory every path of one side is resolved in: "/" for the
// host, the container's root (/proc/PID/root of its process, or its root
// filesystem when it does not run) for a container.
type Root struct {
	fd   int
	name string // for messages: "the host" or a container's name
}

// OpenRoot opens dir as a Root named name.
func OpenRoot(dir, name string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: opening its root: %w", name, &os.PathError{Op: "open", Path: dir, Err: err})
	}
	return &Root{fd: fd, name: name}, nil
}

// Close releases the root.
func (r *Root) Close() error { return unix.Close(r.fd) }

// Options are cp's flags.
type Options struct {
	// FollowLink copies what a source that is a symbolic link points to
	// (-L), not the link.
	FollowLink bool
	// KeepOwner gives what is copied into a container the owner it has at
	// the source (-a); otherwise root owns it there. What is copied to the
	// host is owned by the user copying, as with docker cp.
	KeepOwner bool
	// IntoContainer says the destination is a container's root.
	IntoContainer bool
}

// entry is one file of a copy, named relative to the copy's top ("" for
// the top itself).
type entry struct {
	name     string
	mode     os.FileMode
	uid, gid int
	mtime    time.Time
	link     string    // a symbolic link's target
	dev      uint64    // a device's number
	data     io.Reader // a regular file's content
	size     int64
}

// Copy copies src, a path in from, to dst, a path in to, with docker cp's
// rules: a file to an existing directory goes into it, to anything else
// becomes dst; a directory to an existing directory goes into it (its
// content only when src ends in "/."), to nothing becomes dst; a
// directory onto a file, a file to a missing directory ("dst/") and a
// missing parent are errors.
func Copy(ctx context.Context, from *Root, src string, to *Root, dst string, o Options) error {
	top, st, err := openSource(from, src, o.FollowLink)
	if err != nil {
		return err
	}
	defer unix.Close(top)
	srcDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	dir, name, err := destination(to, dst, srcDir, contentsOnly(src), baseName(src))
	if err != nil {
		return err
	}
	w, err := newWriter(to, dir, name, o)
	if err != nil {
		return err
	}
	defer w.close()
	return walk(ctx, top, st, "", func(e entry) error { return w.write(e) }, w.finish)
}

// WriteTar writes src, a path in from, to w as a tar archive whose entries
// are named after src's last element (`docker cp SERVICE:SRC -`).
func WriteTar(ctx context.Context, w io.Writer, from *Root, src string, o Options) error {
	top, st, err := openSource(from, src, o.FollowLink)
	if err != nil {
		return err
	}
	defer unix.Close(top)
	base := baseName(src)
	tw := tar.NewWriter(w)
	err = walk(ctx, top, st, "", func(e entry) error {
		name := path.Join(base, e.name)
		if name == "." {
			return nil // a root's content, named from it: no entry for it
		}
		hdr := &tar.Header{Name: name, Mode: int64(unixMode(e.mode)), Uid: e.uid, Gid: e.gid, ModTime: e.mtime}
		switch {
		case e.mode.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		case e.mode&os.ModeSymlink != 0:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		case e.mode&os.ModeNamedPipe != 0:
			hdr.Typeflag = tar.TypeFifo
		case e.mode&os.ModeCharDevice != 0:
			hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeChar, int64(unix.Major(e.dev)), int64(unix.Minor(e.dev))
		case e.mode&os.ModeDevice != 0:
			hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeBlock, int64(unix.Major(e.dev)), int64(unix.Minor(e.dev))
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if e.data != nil {
			// The size the header says: a file that shrank meanwhile (or
			// a sysfs one) is padded with zeros, one that grew is cut.
			n, err := io.CopyN(tw, e.data, e.size)
			if err == io.EOF {
				_, err = io.CopyN(tw, zeros{}, e.size-n)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	}, func() error { return nil })
	if err != nil {
		return err
	}
	return tw.Close()
}

// ExtractTar extracts the tar archive r into dst, an existing directory
// of to (`docker cp - SERVICE:DST`). Entry names are cleaned ("../x" is
// "x"), and nothing is written through a link (a link entry, then entries
// through it, fail). Hard links and sparse files are left out.
func ExtractTar(ctx context.Context, r io.Reader, to *Root, dst string, o Options) error {
	w, err := newWriter(to, dst, "", o)
	if err != nil {
		return fmt.Errorf("destination %s must be a directory: %w", where(to, dst), err)
	}
	defer w.close()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return w.finish()
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		name := path.Clean("/" + hdr.Name)[1:]
		if name == "" {
			continue
		}
		// The type is the entry's type flag's, whatever its mode says.
		e := entry{name: name, mode: fileMode(unix.Stat_t{Mode: uint32(hdr.Mode) & 0o7777}), uid: hdr.Uid, gid: hdr.Gid, mtime: hdr.ModTime, link: hdr.Linkname}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			e.data, e.size = tr, hdr.Size
		case tar.TypeDir:
			e.mode |= os.ModeDir
		case tar.TypeSymlink:
			e.mode |= os.ModeSymlink
		case tar.TypeFifo:
			e.mode |= os.ModeNamedPipe
		case tar.TypeChar:
			e.mode |= os.ModeDevice | os.ModeCharDevice
			e.dev = unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		case tar.TypeBlock:
			e.mode |= os.ModeDevice
			e.dev = unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		default:
			continue // hard links, sparse files, other kinds: not kept
		}
		if err := w.write(e); err != nil {
			return err
		}
	}
}

// zeros reads as zero bytes, without end.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// openSource opens src in root (a link at its end followed with follow)
// and returns its descriptor (O_PATH) and status.
func openSource(root *Root, src string, follow bool) (int, unix.Stat_t, error) {
	flags := uint64(unix.O_PATH | unix.O_CLOEXEC)
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := openat2.Open(root.fd, src, &unix.OpenHow{Flags: flags, Resolve: inRoot})
	if err != nil {
		return -1, unix.Stat_t{}, fmt.Errorf("%s: %w", where(root, src), &os.PathError{Op: "open", Path: src, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, err
	}
	return fd, st, nil
}

func where(r *Root, p string) string {
	if r.name == "" {
		return p
	}
	return r.name + ":" + p
}

// contentsOnly: a source "dir/." copies what dir holds, not dir.
func contentsOnly(src string) bool {
	return strings.HasSuffix(src, "/.") || src == "."
}

// baseName is the name a copied source takes in a directory.
func baseName(src string) string {
	b := path.Base(path.Clean("/" + src))
	if b == "/" {
		return "."
	}
	return b
}

// destination decides where the copy's top goes: into directory dir (a
// path in to) under name base, "" meaning dir itself (a directory's
// content into an existing one).
func destination(to *Root, dst string, srcDir, contents bool, srcBase string) (dir, base string, err error) {
	var st unix.Stat_t
	fd, err := openat2.Open(to.fd, dst, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: inRoot})
	exists := err == nil
	if exists {
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil {
			return "", "", err
		}
	} else if !errors.Is(err, unix.ENOENT) {
		return "", "", fmt.Errorf("%s: %w", where(to, dst), &os.PathError{Op: "open", Path: dst, Err: err})
	}
	dstDir := exists && st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case exists && dstDir && srcDir && contents:
		return dst, "", nil
	case exists && dstDir:
		if srcBase == "." || srcBase == ".." {
			return dst, "", nil
		}
		return dst, srcBase, nil
	case exists && srcDir:
		return "", "", fmt.Errorf("cannot copy a directory to a file: %s", where(to, dst))
	case !exists && !srcDir && strings.HasSuffix(dst, "/"):
		return "", "", fmt.Errorf("destination directory %s does not exist", where(to, dst))
	}
	parent, name := path.Split(path.Clean("/" + dst))
	if name == "" {
		return "", "", fmt.Errorf("cannot copy to %s", where(to, dst))
	}
	return parent, name, nil
}

// walk reads the tree at fd (status st) depth first, calling emit for
// each entry, directories before what they hold; then done.
func walk(ctx context.Context, fd int, st unix.Stat_t, name string, emit func(entry) error, done func() error) error {
	if err := walkAt(ctx, fd, st, name, emit); err != nil {
		return err
	}
	return done()
}

func walkAt(ctx context.Context, fd int, st unix.Stat_t, name string, emit func(entry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e := entry{name: name, mode: fileMode(st), uid: int(st.Uid), gid: int(st.Gid), mtime: time.Unix(st.Mtim.Unix())}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK:
		return nil // a tar cannot hold one; docker cp leaves them out too
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		e.link = string(buf[:n])
		return emit(e)
	case unix.S_IFCHR, unix.S_IFBLK:
		e.dev = st.Rdev
		return emit(e)
	case unix.S_IFREG:
		f, err := reopen(fd, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer f.Close()
		e.data, e.size = f, st.Size
		return emit(e)
	case unix.S_IFDIR:
		if err := emit(e); err != nil {
			return err
		}
		var fs unix.Statfs_t
		if err := unix.Fstatfs(fd, &fs); err == nil && kernelFS[int64(fs.Type)] {
			// A running container's /proc, /sys and cgroups: the
			// kernel's views, not files; an empty directory, as in the
			// container's root filesystem.
			return nil
		}
		d, err := reopen(fd, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer d.Close()
		names, err := d.Readdirnames(-1)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for _, n := range names {
			cfd, err := unix.Openat(int(d.Fd()), n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("%s: %w", path.Join(name, n), err)
			}
			var cst unix.Stat_t
			err = unix.Fstat(cfd, &cst)
			if err == nil {
				err = walkAt(ctx, cfd, cst, path.Join(name, n), emit)
			}
			unix.Close(cfd)
			if err != nil {
				return err
			}
		}
		return nil
	default: // a FIFO
		return emit(e)
	}
}

// kernelFS are the file systems whose content a copy leaves out.
var kernelFS = map[int64]bool{unix.PROC_SUPER_MAGIC: true, unix.SYSFS_MAGIC: true, unix.CGROUP_SUPER_MAGIC: true, unix.CGROUP2_SUPER_MAGIC: true}

// reopen opens what the O_PATH descriptor fd refers to, with flags,
// through its /proc entry (which names that very file, not a path).
func reopen(fd, flags int) (*os.File, error) {
	nfd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), ""), nil
}

func fileMode(st unix.Stat_t) os.FileMode {
	m := os.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= os.ModeDir
	case unix.S_IFLNK:
		m |= os.ModeSymlink
	case unix.S_IFIFO:
		m |= os.ModeNamedPipe
	case unix.S_IFCHR:
		m |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		m |= os.ModeDevice
	}
	for _, b := range specialBits {
		if st.Mode&b.unix != 0 {
			m |= b.os
		}
	}
	return m
}

// unixMode is m's permission, setuid, setgid and sticky bits as chmod
// and tar take them.
func unixMode(m os.FileMode) uint32 {
	mode := uint32(m.Perm())
	for _, b := range specialBits {
		if m&b.os != 0 {
			mode |= b.unix
		}
	}
	return mode
}

// specialBits are the setuid, setgid and sticky bits, as os and the
// system calls spell them.
var specialBits = []struct {
	os   os.FileMode
	unix uint32
}{{os.ModeSetuid, unix.S_ISUID}, {os.ModeSetgid, unix.S_ISGID}, {os.ModeSticky, unix.S_ISVTX}}

// writer creates entries under dir/base in root.
type writer struct {
	root  *Root
	dir   string // a path in root, for messages
	dirfd int    // dir, opened once
	base  string // the top's name in dir; "" for dir itself
	o     Options
	dirs  []entry // directories, to get their times once their content is in
}

// newWriter opens dir, a path in root, for a writer. Below it, nothing is
// resolved through a link: a container that swaps a directory the copy
// made for a link (in a volume the host shares, say) only makes the copy
// fail, never write where the link points.
func newWriter(root *Root, dir, base string, o Options) (*writer, error) {
	fd, err := openat2.Open(root.fd, dir, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: inRoot})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where(root, dir), &os.PathError{Op: "open", Path: dir, Err: err})
	}
	return &writer{root: root, dir: dir, dirfd: fd, base: base, o: o}, nil
}

func (w *writer) close() { unix.Close(w.dirfd) }

// locate opens the directory an entry goes in, resolved in the root, and
// returns it with the entry's name there; -1 for the top when it is dir
// itself.
func (w *writer) locate(e entry) (parent int, name string, err error) {
	full := path.Join(w.base, e.name)
	if full == "" || full == "." {
		// The top is dir itself: only a directory's content goes there.
		return -1, "", nil
	}
	dir, name := path.Split(full)
	if dir == "" {
		dir = "."
	}
	fd, err := openat2.Open(w.dirfd, dir, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return -1, "", fmt.Errorf("%s: %w", where(w.root, path.Join(w.dir, dir)), &os.PathError{Op: "open", Path: dir, Err: err})
	}
	return fd, name, nil
}

func (w *writer) write(e entry) error {
	parent, name, err := w.locate(e)
	if err != nil || parent < 0 {
		return err
	}
	defer unix.Close(parent)
	target := where(w.root, path.Join(w.dir, w.base, e.name))
	var existing unix.Stat_t
	exists := unix.Fstatat(parent, name, &existing, unix.AT_SYMLINK_NOFOLLOW) == nil
	existingDir := exists && existing.Mode&unix.S_IFMT == unix.S_IFDIR
	if e.mode.IsDir() {
		switch {
		case existingDir:
		case exists:
			return fmt.Errorf("cannot overwrite non-directory %s with a directory", target)
		default:
			if err := unix.Mkdirat(parent, name, 0o700); err != nil {
				return fmt.Errorf("%s: %w", target, err)
			}
		}
		w.dirs = append(w.dirs, e)
		return w.finishEntry(parent, name, target, e)
	}
	if existingDir {
		return fmt.Errorf("cannot overwrite directory %s with a non-directory", target)
	}
	if exists {
		// Replaced, never written through: it may be a link.
		if err := unix.Unlinkat(parent, name, 0); err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
	}
	switch {
	case e.mode&os.ModeSymlink != 0:
		if err := unix.Symlinkat(e.link, parent, name); err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
	case e.mode&os.ModeNamedPipe != 0:
		if err := unix.Mkfifoat(parent, name, 0o600); err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
	case e.mode&os.ModeDevice != 0 && !w.o.IntoContainer:
		return nil // a container's device nodes are not made on the host
	case e.mode&os.ModeCharDevice != 0:
		if err := unix.Mknodat(parent, name, unix.S_IFCHR|0o600, int(e.dev)); err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
	case e.mode&os.ModeDevice != 0:
		if err := unix.Mknodat(parent, name, unix.S_IFBLK|0o600, int(e.dev)); err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
	default:
		fd, err := unix.Openat(parent, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
		f := os.NewFile(uintptr(fd), target)
		// What the file holds, up to the size it had: a file that shrinks
		// or grows meanwhile (or a sysfs one, whose size is a guess) is
		// copied as far as it goes.
		_, err = io.Copy(f, io.LimitReader(e.data, e.size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
	}
	return w.finishEntry(parent, name, target, e)
}

// finishEntry gives an entry its owner, mode and (but for directories,
// done at the end) times.
func (w *writer) finishEntry(parent int, name, target string, e entry) error {
	uid, gid := -1, -1 // to the host: the copying user's
	if w.o.IntoContainer {
		uid, gid = 0, 0
		if w.o.KeepOwner {
			uid, gid = e.uid, e.gid
		}
	}
	if uid >= 0 {
		if err := unix.Fchownat(parent, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
	}
	if e.mode&os.ModeSymlink == 0 {
		mode := unixMode(e.mode)
		if !w.o.IntoContainer {
			// Owned by the user copying, not by the container's: a
			// setuid or setgid bit would be theirs.
			mode &^= unix.S_ISUID | unix.S_ISGID
		}
		if err := chmodNoFollow(parent, name, mode); err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
	}
	if e.mode.IsDir() {
		return nil
	}
	return setTimes(parent, name, e.mtime)
}

// chmodNoFollow changes the mode of name in parent, never of what a link
// there points to: chmod follows links (and fchmodat's flag to not is
// recent), and a container may swap the file for a link to a host path
// between its creation and this; the entry is opened without following
// one, checked, and changed through its descriptor.
func chmodNoFollow(parent int, name string, mode uint32) error {
	fd, err := unix.Openat(parent, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("replaced by a symbolic link during the copy: %w", unix.ELOOP)
	}
	return unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), mode)
}

func setTimes(parent int, name string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(parent, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// finish sets the directories' times, deepest first: writing into a
// directory changes its own.
func (w *writer) finish() error {
	for i := len(w.dirs) - 1; i >= 0; i-- {
		e := w.dirs[i]
		parent, name, err := w.locate(e)
		if err != nil {
			return err
		}
		if parent < 0 {
			continue
		}
		err = setTimes(parent, name, e.mtime)
		unix.Close(parent)
		if err != nil {
			return err
		}
	}
	return nil
}
