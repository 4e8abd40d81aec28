package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: extraction sets owners and creates device nodes")
	}
}

// entry is one tar entry of a test layer.
type entry struct {
	name, link, body string
	typ              byte
	mode             int64
	uid, gid         int
	xattrs           map[string]string
	major, minor     int64
}

func layerTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: mode, Uid: e.uid, Gid: e.gid,
			Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0), Devmajor: e.major, Devminor: e.minor, Format: tar.FormatPAX}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		for k, v := range e.xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sandbox is a layer directory next to an "outside" tree holding what an
// attacker would want to reach. The layer directory sits at a path that
// also exists, absolute, inside the outside tree's name space.
type sandbox struct {
	dir, layer, outside string
}

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	dir := t.TempDir()
	s := sandbox{dir: dir, layer: filepath.Join(dir, "layer"), outside: filepath.Join(dir, "outside")}
	for _, d := range []string{s.layer, filepath.Join(s.outside, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.outside, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// snapshot describes a tree: names, types, modes, owners, sizes, times,
// contents, link targets and extended attributes.
func snapshot(t testing.TB, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %o %d:%d %d %d", p, st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Nano())
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(c))
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", l)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The classic breakout layers. Whatever Extract says, nothing outside the
// layer directory may change.
func TestExtractBreakouts(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name    string
		entries func(s sandbox) []entry
		wantErr string // "" when the layer is fine once contained
		check   func(t *testing.T, s sandbox)
	}{
		{"dotdot path", func(s sandbox) []entry {
			return []entry{{name: "../outside/etc/passwd", body: "pwned"}}
		}, "path has a .. component", nil},
		{"dotdot inside a path", func(s sandbox) []entry {
			return []entry{{name: "usr/../../outside/etc/passwd", body: "pwned"}}
		}, "path has a .. component", nil},
		{"absolute path stays inside", func(s sandbox) []entry {
			return []entry{{name: filepath.Join(s.outside, "etc/passwd"), body: "inside"}}
		}, "", func(t *testing.T, s sandbox) {
			b, err := os.ReadFile(filepath.Join(s.layer, s.outside, "etc/passwd"))
			if err != nil || string(b) != "inside" {
				t.Errorf("absolute name not written inside the layer: %q %v", b, err)
			}
		}},
		{"absolute symlink then a file through it", func(s sandbox) []entry {
			return []entry{
				{name: "evil", typ: tar.TypeSymlink, link: filepath.Join(s.outside, "etc")},
				{name: "evil/passwd", body: "pwned"},
			}
		}, "not a directory", func(t *testing.T, s sandbox) {
			if l, _ := os.Readlink(filepath.Join(s.layer, "evil")); l != filepath.Join(s.outside, "etc") {
				t.Errorf("symlink not stored verbatim: %q", l)
			}
		}},
		{"absolute symlink to a directory of the layer, then a file through it", func(s sandbox) []entry {
			return []entry{
				{name: "usr/lib/", typ: tar.TypeDir},
				{name: "lib", typ: tar.TypeSymlink, link: "/usr/lib"},
				{name: "lib/libc.so", body: "elf"},
			}
		}, "", func(t *testing.T, s sandbox) {
			// Resolved inside the layer, as in the container.
			if b, err := os.ReadFile(filepath.Join(s.layer, "usr/lib/libc.so")); err != nil || string(b) != "elf" {
				t.Errorf("usr/lib/libc.so: %q %v", b, err)
			}
		}},
		{"relative symlink climbing out then a file through it", func(s sandbox) []entry {
			return []entry{
				{name: "evil", typ: tar.TypeSymlink, link: "../../../../../../../../" + strings.TrimPrefix(s.outside, "/") + "/etc"},
				{name: "evil/passwd", body: "pwned"},
			}
		}, "not a directory", nil},
		{"symlinked parent directory", func(s sandbox) []entry {
			return []entry{
				{name: "usr", typ: tar.TypeSymlink, link: "../outside"},
				{name: "usr/etc/passwd", body: "pwned"},
			}
		}, "not a directory", nil},
		{"symlink replaced by a directory", func(s sandbox) []entry {
			return []entry{
				{name: "d", typ: tar.TypeSymlink, link: s.outside},
				{name: "d", typ: tar.TypeDir, mode: 0o777},
				{name: "d/x", body: "x"},
			}
		}, "", func(t *testing.T, s sandbox) {
			if fi, err := os.Lstat(filepath.Join(s.layer, "d")); err != nil || !fi.IsDir() {
				t.Errorf("d is not a directory: %v %v", fi, err)
			}
		}},
		{"file entry over a symlink to the outside", func(s sandbox) []entry {
			return []entry{
				{name: "p", typ: tar.TypeSymlink, link: filepath.Join(s.outside, "etc/passwd")},
				{name: "p", body: "pwned", mode: 0o4777},
			}
		}, "", nil},
		{"hard link to an absolute outside path", func(s sandbox) []entry {
			return []entry{{name: "pw", typ: tar.TypeLink, link: filepath.Join(s.outside, "etc/passwd")}}
		}, "no such file or directory", nil},
		{"hard link climbing out", func(s sandbox) []entry {
			return []entry{{name: "pw", typ: tar.TypeLink, link: "../outside/etc/passwd"}}
		}, "path has a .. component", nil},
		{"hard link through a symlinked directory", func(s sandbox) []entry {
			return []entry{
				{name: "e", typ: tar.TypeSymlink, link: filepath.Join(s.outside, "etc")},
				{name: "pw", typ: tar.TypeLink, link: "e/passwd"},
			}
		}, "no such file or directory", nil},
		{"hard link to a symlink links the symlink", func(s sandbox) []entry {
			return []entry{
				{name: "s", typ: tar.TypeSymlink, link: filepath.Join(s.outside, "etc/passwd")},
				{name: "h", typ: tar.TypeLink, link: "s"},
				{name: "h", body: "", typ: tar.TypeSymlink, link: "still-a-link"},
			}
		}, "", nil},
		{"whiteout of ..", func(s sandbox) []entry {
			return []entry{{name: "etc/.wh..."}}
		}, "invalid whiteout", nil},
		{"whiteout of .", func(s sandbox) []entry {
			return []entry{{name: ".wh.."}}
		}, "invalid whiteout", nil},
		{"whiteout through a symlinked parent", func(s sandbox) []entry {
			return []entry{
				{name: "e", typ: tar.TypeSymlink, link: filepath.Join(s.outside, "etc")},
				{name: "e/.wh.passwd"},
			}
		}, "not a directory", nil},
		{"opaque marker through a symlinked parent", func(s sandbox) []entry {
			return []entry{
				{name: "e", typ: tar.TypeSymlink, link: s.outside},
				{name: "e/.wh..wh..opq"},
			}
		}, "not a directory", nil},
		{"device node through a symlinked parent", func(s sandbox) []entry {
			return []entry{
				{name: "e", typ: tar.TypeSymlink, link: s.outside},
				{name: "e/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666},
			}
		}, "not a directory", nil},
		{"trusted xattr refused", func(s sandbox) []entry {
			return []entry{{name: "f", body: "x", xattrs: map[string]string{"trusted.overlay.opaque": "y", "security.selinux": "x", "user.ok": "1"}}}
		}, "", func(t *testing.T, s sandbox) {
			buf := make([]byte, 16)
			if _, err := unix.Lgetxattr(filepath.Join(s.layer, "f"), "trusted.overlay.opaque", buf); err == nil {
				t.Error("trusted.overlay.opaque was set")
			}
			if n, err := unix.Lgetxattr(filepath.Join(s.layer, "f"), "user.ok", buf); err != nil && err != unix.ENOTSUP || err == nil && string(buf[:n]) != "1" {
				t.Errorf("user.ok: %q %v", buf[:n], err)
			}
		}},
		{"chmod and chown never follow a symlink", func(s sandbox) []entry {
			return []entry{{name: "l", typ: tar.TypeSymlink, link: filepath.Join(s.outside, "etc/passwd"), uid: 1234, gid: 1234, mode: 0o777}}
		}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			before := snapshot(t, s.outside)
			err := Extract(context.Background(), bytes.NewReader(layerTar(t, tc.entries(s)...)), s.layer)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if after := snapshot(t, s.outside); after != before {
				t.Fatalf("the outside changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

// A sparse entry of a few bytes would expand to any size: refused. The
// archives are GNU tar's (tar --sparse) of a 20 GiB file of holes, 10 KiB
// each, in the PAX form and in GNU's.
func TestExtractRefusesSparseFiles(t *testing.T) {
	needRoot(t)
	for _, file := range []string{"testdata/sparse-pax.tar", "testdata/sparse-gnu.tar"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s := newSandbox(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = Extract(ctx, f, s.layer)
			if err == nil || !strings.Contains(err.Error(), "sparse") && !strings.Contains(err.Error(), "unsupported tar entry type 'S'") {
				t.Fatalf("error %v, want sparse files refused", err)
			}
			if fi, err := os.Stat(filepath.Join(s.layer, "big")); err == nil && fi.Size() > 1<<20 {
				t.Errorf("wrote %d bytes", fi.Size())
			}
		})
	}
}

func TestExtractContent(t *testing.T) {
	needRoot(t)
	s := newSandbox(t)
	layer := layerTar(t,
		entry{name: "./", typ: tar.TypeDir},
		entry{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "bin/tool", body: "#!/bin/sh\n", mode: 0o4755, uid: 0, gid: 0},
		entry{name: "home/app/notes", body: "hello", mode: 0o600, uid: 1000, gid: 1001},
		entry{name: "bin/sh", typ: tar.TypeSymlink, link: "/bin/busybox"},
		entry{name: "bin/tool2", typ: tar.TypeLink, link: "bin/tool"},
		entry{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666},
		entry{name: "run/fifo", typ: tar.TypeFifo, mode: 0o600},
		entry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		entry{name: "etc/.wh.shadow"},
		entry{name: "var/.wh..wh..opq"},
		entry{name: "caps", body: "x", xattrs: map[string]string{"user.note": "kept"}},
	)
	if err := Extract(context.Background(), bytes.NewReader(layer), s.layer); err != nil {
		t.Fatal(err)
	}
	stat := func(name string) unix.Stat_t {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(s.layer, name), &st); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return st
	}
	for _, tc := range []struct {
		name     string
		mode     uint32
		uid, gid uint32
	}{
		{"bin/tool", unix.S_IFREG | 0o4755, 0, 0},
		{"home/app/notes", unix.S_IFREG | 0o600, 1000, 1001},
		{"home", unix.S_IFDIR | 0o755, 0, 0},
		{"bin/sh", unix.S_IFLNK | 0o777, 0, 0},
		{"dev/null", unix.S_IFCHR | 0o666, 0, 0},
		{"run/fifo", unix.S_IFIFO | 0o600, 0, 0},
		{"tmp", unix.S_IFDIR | 0o1777, 0, 0},
		{"etc/shadow", unix.S_IFCHR, 0, 0},
	} {
		st := stat(tc.name)
		if st.Mode != tc.mode || st.Uid != tc.uid || st.Gid != tc.gid {
			t.Errorf("%s: mode %o owner %d:%d, want %o %d:%d", tc.name, st.Mode, st.Uid, st.Gid, tc.mode, tc.uid, tc.gid)
		}
	}
	if st := stat("dev/null"); st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null is %d", st.Rdev)
	}
	if st := stat("etc/shadow"); st.Rdev != 0 {
		t.Errorf("whiteout device is %d, want 0/0", st.Rdev)
	}
	if stat("bin/tool").Ino != stat("bin/tool2").Ino {
		t.Error("bin/tool2 is not a hard link of bin/tool")
	}
	if l, _ := os.Readlink(filepath.Join(s.layer, "bin/sh")); l != "/bin/busybox" {
		t.Errorf("bin/sh -> %q", l)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(s.layer, "var"), opaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("var is not opaque: %q %v", buf[:n], err)
	}
	if st := stat("home/app/notes"); st.Mtim.Sec != 1700000000 {
		t.Errorf("mtime %d", st.Mtim.Sec)
	}
	if st := stat("bin"); st.Mtim.Sec != 1700000000 {
		t.Errorf("directory mtime %d, want the entry's (set after its content)", st.Mtim.Sec)
	}
}

// The whole blob is read, trailing bytes included, so that the digest of
// what was read is the digest of the blob.
func TestExtractReadsToEOF(t *testing.T) {
	needRoot(t)
	s := newSandbox(t)
	data := append(layerTar(t, entry{name: "a", body: "a"}), make([]byte, 10000)...)
	r := bytes.NewReader(data)
	if err := Extract(context.Background(), r, s.layer); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes left unread", r.Len())
	}
}

func TestExtractCancelled(t *testing.T) {
	needRoot(t)
	s := newSandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Extract(ctx, bytes.NewReader(layerTar(t, entry{name: "a", body: "a"})), s.layer)
	if err == nil {
		t.Fatal("extraction went on after cancellation")
	}
}

// FuzzExtract unpacks arbitrary tar streams next to an outside tree, which
// must never change.
func FuzzExtract(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("needs root: extraction sets owners and creates device nodes")
	}
	outside := "/outside-of-the-layer"
	for _, es := range [][]entry{
		{{name: "evil", typ: tar.TypeSymlink, link: "/"}, {name: "evil/etc/passwd", body: "x"}},
		{{name: "a", typ: tar.TypeSymlink, link: "../../.."}, {name: "a/b", typ: tar.TypeDir}, {name: "a/b/c", body: "c"}},
		{{name: "h", typ: tar.TypeLink, link: "../x"}, {name: "d/.wh..wh..opq"}, {name: "d/.wh.x"}},
		{{name: "s", typ: tar.TypeSymlink, link: outside}, {name: "s/.wh.f"}, {name: "l", typ: tar.TypeLink, link: "s/f"}},
		{{name: "x", typ: tar.TypeDir}, {name: "x", body: "now a file"}, {name: "x/y", body: "y"}},
	} {
		f.Add(layerTar(f, es...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newSandbox(t)
		before := snapshot(t, s.outside)
		beforeDir := snapshot(t, s.dir+"/..")
		_ = Extract(context.Background(), bytes.NewReader(data), s.layer)
		if after := snapshot(t, s.outside); after != before {
			t.Fatalf("the outside changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		_ = beforeDir
		// Nothing appeared next to the layer either.
		entries, err := os.ReadDir(s.dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 {
			t.Fatalf("the sandbox holds %d entries, want layer and outside", len(entries))
		}
	})
}

var _ = syscall.Getuid
