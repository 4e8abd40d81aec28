package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/openat2"
)

// Overlayfs's markers, which the layer directories carry so that they can be
// stacked as lower directories: a whiteout is a 0/0 character device, an
// opaque directory has this extended attribute.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
)

// Extract unpacks the uncompressed layer tar r into dir, an existing empty
// directory, and reads r to its end (so that a digest computed over r covers
// all of it).
//
// Layers are untrusted: this is the security boundary between an image and
// the host. Every path is resolved inside dir by the kernel (openat2 with
// RESOLVE_IN_ROOT), so a symlink in the layer, absolute or full of "..",
// always lands inside dir; the entry itself is created with *at calls that
// never follow it; links are stored, never followed; ownership and modes are
// set through the entry's own file descriptor or without following links.
// Names with a ".." component are refused; trusted.* extended attributes
// are never set.
func Extract(ctx context.Context, r io.Reader, dir string) error {
	root, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening layer directory %s: %w", dir, err)
	}
	defer unix.Close(root)
	raw := &consumed{r: r}
	x := &extractor{root: root, raw: raw, buf: make([]byte, 256<<10), dirTimes: map[string]time.Time{}}
	tr := tar.NewReader(raw)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading layer: %w", err)
		}
		if err := x.entry(ctx, hdr, tr); err != nil {
			return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
	if err := x.setDirTimes(); err != nil {
		return err
	}
	// Padding and anything after the end marker belong to the blob too.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("reading layer: %w", err)
	}
	return nil
}

type extractor struct {
	root     int
	raw      *consumed            // the layer stream, counting what the tar reader took
	buf      []byte               // copy buffer, one per extraction
	dirTimes map[string]time.Time // set once every entry is in place
}

// cleanName makes a tar name relative to the layer root: "./a/b", "/a/b/"
// and "a//b" are "a/b"; the root itself is "". A ".." component is refused:
// no legitimate layer needs one.
func cleanName(name string) (string, error) {
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", errors.New("path has a .. component")
		}
	}
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if strings.ContainsRune(name, 0) {
		return "", errors.New("path has a NUL byte")
	}
	return name, nil
}

func (x *extractor) entry(ctx context.Context, hdr *tar.Header, body io.Reader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if name == "" {
		return nil // the layer root: its attributes are the mount's
	}
	dir, base := path.Split(name)
	parent, err := x.mkdirAll(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return err
	}
	defer unix.Close(parent)

	if base == opaqueMarker {
		return unix.Fsetxattr(parent, opaqueXattr, []byte("y"), 0)
	}
	if hidden, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
		if hidden == "" || hidden == "." || hidden == ".." {
			return fmt.Errorf("invalid whiteout %q", base)
		}
		if err := removeAt(parent, hidden); err != nil {
			return err
		}
		if err := unix.Mknodat(parent, hidden, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("creating whiteout: %w", err)
		}
		return nil
	}

	for key := range hdr.PAXRecords {
		// A sparse entry expands holes into data the stream does not
		// carry: a few bytes can ask for terabytes. Layers have none.
		if strings.HasPrefix(key, "GNU.sparse.") {
			return errors.New("sparse files are not supported in image layers")
		}
	}

	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(parent, name, base, hdr, mode)
	case tar.TypeReg, tar.TypeRegA:
		return x.file(ctx, parent, base, hdr, mode, body)
	case tar.TypeSymlink:
		if err := removeAt(parent, base); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, parent, base); err != nil {
			return fmt.Errorf("creating symlink: %w", err)
		}
		return x.finish(parent, base, -1, hdr, 0, false)
	case tar.TypeLink:
		return x.hardlink(parent, base, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		if err := removeAt(parent, base); err != nil {
			return err
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(parent, base, kind|mode, int(dev)); err != nil {
			return fmt.Errorf("creating device node: %w", err)
		}
		return x.finish(parent, base, -1, hdr, mode, true)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
}

func (x *extractor) dir(parent int, name, base string, hdr *tar.Header, mode uint32) error {
	var st unix.Stat_t
	err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := removeAt(parent, base); err != nil {
			return err
		}
		err = unix.ENOENT
	}
	if errors.Is(err, unix.ENOENT) {
		if err := unix.Mkdirat(parent, base, 0o700); err != nil {
			return fmt.Errorf("creating directory: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("checking directory: %w", err)
	}
	fd, err := unix.Openat(parent, base, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening directory: %w", err)
	}
	defer unix.Close(fd)
	x.dirTimes[name] = hdr.ModTime
	return x.finish(parent, base, fd, hdr, mode, true)
}

func (x *extractor) file(ctx context.Context, parent int, base string, hdr *tar.Header, mode uint32, body io.Reader) error {
	if err := removeAt(parent, base); err != nil {
		return err
	}
	fd, err := unix.Openat(parent, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating file: %w", err)
	}
	err = x.copyEntry(ctx, fdWriter(fd), body)
	if err == nil {
		err = x.finish(parent, base, fd, hdr, mode, true)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("closing file: %w", cerr)
	}
	return err
}

func (x *extractor) hardlink(parent int, base string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("link target: %w", err)
	}
	if target == "" {
		return errors.New("hard link to the layer root")
	}
	tdir, tbase := path.Split(target)
	tparent, err := x.openDir(strings.TrimSuffix(tdir, "/"))
	if err != nil {
		return fmt.Errorf("link target %q: %w", hdr.Linkname, err)
	}
	defer unix.Close(tparent)
	var st unix.Stat_t
	if err := unix.Fstatat(tparent, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("link target %q: %w", hdr.Linkname, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("link target %q is a directory", hdr.Linkname)
	}
	if err := removeAt(parent, base); err != nil {
		return err
	}
	// Flags 0: a link to a symlink links the symlink, never what it points to.
	if err := unix.Linkat(tparent, tbase, parent, base, 0); err != nil {
		return fmt.Errorf("creating hard link: %w", err)
	}
	return nil
}

// finish sets ownership, mode, extended attributes and times, through fd
// when there is one, else on the name without following it.
func (x *extractor) finish(parent int, base string, fd int, hdr *tar.Header, mode uint32, chmod bool) error {
	if fd >= 0 {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("setting owner: %w", err)
		}
		// chown clears set-id bits: the mode comes after.
		if err := unix.Fchmod(fd, mode); err != nil {
			return fmt.Errorf("setting mode: %w", err)
		}
	} else {
		if err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting owner: %w", err)
		}
		if chmod {
			// Device nodes and FIFOs: not a symlink (just created), so
			// fchmodat cannot be led elsewhere.
			if err := unix.Fchmodat(parent, base, mode, 0); err != nil {
				return fmt.Errorf("setting mode: %w", err)
			}
		}
	}
	for key, value := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(key, "SCHILY.xattr.")
		if !ok || !allowedXattr(attr) {
			continue
		}
		var err error
		if fd >= 0 {
			err = unix.Fsetxattr(fd, attr, []byte(value), 0)
		} else {
			err = lsetxattrAt(parent, base, attr, []byte(value))
		}
		if err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("setting extended attribute %s: %w", attr, err)
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil // set at the end, once its entries stopped changing it
	}
	ts := []unix.Timespec{unix.NsecToTimespec(hdr.AccessTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	if hdr.AccessTime.IsZero() {
		ts[0] = ts[1]
	}
	if err := unix.UtimesNanoAt(parent, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}

// allowedXattr refuses the namespaces an image has no business setting on
// the host: trusted.* (overlayfs and other kernel users read them) and
// security.* except file capabilities.
func allowedXattr(name string) bool {
	switch {
	case strings.HasPrefix(name, "user."):
		return true
	case name == "security.capability":
		return true
	default:
		return false
	}
}

// lsetxattrAt sets an attribute on parent/base without following it.
func lsetxattrAt(parent int, base, attr string, value []byte) error {
	fd, err := unix.Openat(parent, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// An O_PATH descriptor takes no fsetxattr: go through its /proc name,
	// which names this very inode.
	return unix.Lsetxattr(fmt.Sprintf("/proc/self/fd/%d", fd), attr, value, 0)
}

func (x *extractor) setDirTimes() error {
	for name, mtime := range x.dirTimes {
		fd, err := x.openDir(name)
		if err != nil {
			return fmt.Errorf("setting times of %q: %w", name, err)
		}
		ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		err = unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
		unix.Close(fd)
		if err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("setting times of %q: %w", name, err)
		}
	}
	return nil
}

// openDir opens a directory of the layer, resolving every component inside
// the layer root.
func (x *extractor) openDir(name string) (int, error) {
	if name == "" {
		name = "."
	}
	fd, err := openat2.Open(x.root, name, &unix.OpenHow{
		Flags:   unix.O_DIRECTORY | unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// mkdirAll opens directory name of the layer, creating what is missing
// (0755, root-owned, as tar does for directories it was not given). Below a
// symlink of the layer, the entry lands where the symlink points, resolved
// inside the layer, when that directory exists; a dangling symlink on the
// way is refused ("not a directory"), as filepath-securejoin does for runc.
func (x *extractor) mkdirAll(name string) (int, error) {
	fd, err := x.openDir(name)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		if err != nil {
			return -1, fmt.Errorf("opening directory %q: %w", name, err)
		}
		return fd, nil
	}
	parentName, base := path.Split(name)
	parent, err := x.mkdirAll(strings.TrimSuffix(parentName, "/"))
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	if err := unix.Mkdirat(parent, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("creating directory %q: %w", name, err)
	}
	fd, err = unix.Openat(parent, base, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			err = unix.ENOTDIR // a dangling symlink: say what the user sees
		}
		return -1, fmt.Errorf("opening directory %q: %w", name, err)
	}
	return fd, nil
}

// removeAt removes parent/name and, for a directory, everything below it,
// never following a symlink.
func removeAt(parent int, name string) error {
	err := unix.Unlinkat(parent, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("removing %q: %w", name, err)
	}
	fd, err := unix.Openat(parent, name, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("removing %q: %w", name, err)
	}
	names, err := readDirNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(parent, name, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("removing %q: %w", name, err)
	}
	return nil
}

func readDirNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, fmt.Errorf("reading directory: %w", err)
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// copyEntry copies an entry's content, and stops when it writes more than
// the stream gave for it: whatever the tar reader would synthesise beyond
// the stream (holes of a sparse format it knows) is refused, so the bytes
// written stay bounded by the bytes read.
func (x *extractor) copyEntry(ctx context.Context, w io.Writer, body io.Reader) error {
	const slack = 1 << 20
	start := x.raw.n
	buf := x.buf
	var written int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return fmt.Errorf("writing file: %w", err)
			}
			written += int64(n)
			if written > x.raw.n-start+slack {
				return errors.New("entry holds more data than the layer carries (a sparse file?)")
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("reading layer: %w", rerr)
		}
	}
}

// consumed counts the bytes read from a stream.
type consumed struct {
	r io.Reader
	n int64
}

func (c *consumed) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// fdWriter writes to a raw file descriptor.
type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(int(w), p[n:])
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return n, err
		}
		n += m
	}
	return n, nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// syncTree flushes a freshly unpacked layer to disk before it is committed,
// so that a crash cannot leave a committed layer with missing contents.
func syncTree(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("syncing layer: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncing layer: %w", err)
	}
	return nil
}
