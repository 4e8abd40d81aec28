package filecopy

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tree lists what is under dir: "path mode [-> link | content]" a line,
// with the owner when owners is set.
func tree(t *testing.T, dir string, owners bool) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		l := rel + " " + fi.Mode().String()
		if owners {
			st := fi.Sys().(*syscall.Stat_t)
			l += " " + strings.Join([]string{itoa(st.Uid), itoa(st.Gid)}, ":")
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			l += " -> " + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			l += " " + string(b)
		}
		lines = append(lines, l)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func itoa(n uint32) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

// newSource makes a small tree: a file, a directory with a file and a
// link that points out of any root.
func newSource(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(src, "file.txt"), []byte("hello"), 0o640))
	must(os.MkdirAll(filepath.Join(src, "dir", "sub"), 0o750))
	must(os.WriteFile(filepath.Join(src, "dir", "sub", "deep.txt"), []byte("deep"), 0o600))
	must(os.Symlink("/etc/passwd", filepath.Join(src, "dir", "link")))
	must(os.Chown(filepath.Join(src, "file.txt"), 1000, 1001))
	return src
}

func openRoot(t *testing.T, dir string) *Root {
	t.Helper()
	r, err := OpenRoot(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestCopyRules: docker cp's rules for where a file or a directory goes.
func TestCopyRules(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (the copies give files owners)")
	}
	src := newSource(t)
	for _, tc := range []struct {
		name, src, dst string
		before         func(dst string) error
		want, wantErr  string
	}{
		{name: "file to a new name", src: "/file.txt", dst: "/copy.txt", want: "copy.txt -rw-r----- 0:0 hello"},
		{name: "file into a directory", src: "/file.txt", dst: "/d", before: mkdir("d"), want: "d drwxr-xr-x 0:0\nd/file.txt -rw-r----- 0:0 hello"},
		{name: "file over a file", src: "/file.txt", dst: "/f", before: write("f", "old"), want: "f -rw-r----- 0:0 hello"},
		{name: "file to a missing directory", src: "/file.txt", dst: "/nodir/", wantErr: "destination directory /nodir/ does not exist"},
		{name: "directory to a missing directory", src: "/dir/sub", dst: "/newdir/", want: "newdir drwxr-x--- 0:0\nnewdir/deep.txt -rw------- 0:0 deep"},
		{name: "file with no parent", src: "/file.txt", dst: "/a/b", wantErr: "no such file or directory"},
		{name: "directory to a new name", src: "/dir", dst: "/new", want: "new drwxr-x--- 0:0\nnew/link Lrwxrwxrwx 0:0 -> /etc/passwd\nnew/sub drwxr-x--- 0:0\nnew/sub/deep.txt -rw------- 0:0 deep"},
		{name: "directory into a directory", src: "/dir", dst: "/d", before: mkdir("d"), want: "d drwxr-xr-x 0:0\nd/dir drwxr-x--- 0:0\nd/dir/link Lrwxrwxrwx 0:0 -> /etc/passwd\nd/dir/sub drwxr-x--- 0:0\nd/dir/sub/deep.txt -rw------- 0:0 deep"},
		{name: "a directory's content", src: "/dir/.", dst: "/d", before: mkdir("d"), want: "d drwxr-xr-x 0:0\nd/link Lrwxrwxrwx 0:0 -> /etc/passwd\nd/sub drwxr-x--- 0:0\nd/sub/deep.txt -rw------- 0:0 deep"},
		{name: "directory onto a file", src: "/dir", dst: "/f", before: write("f", "old"), wantErr: "cannot copy a directory to a file"},
		{name: "a link is copied as a link", src: "/dir/link", dst: "/l", want: "l Lrwxrwxrwx 0:0 -> /etc/passwd"},
		{name: "missing source", src: "/nosuch", dst: "/x", wantErr: "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := t.TempDir()
			if tc.before != nil {
				if err := tc.before(dst); err != nil {
					t.Fatal(err)
				}
			}
			err := Copy(context.Background(), openRoot(t, src), tc.src, openRoot(t, dst), tc.dst, Options{IntoContainer: true})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tree(t, dst, true); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func mkdir(name string) func(string) error {
	return func(dst string) error { return os.Mkdir(filepath.Join(dst, name), 0o755) }
}

func write(name, content string) func(string) error {
	return func(dst string) error { return os.WriteFile(filepath.Join(dst, name), []byte(content), 0o644) }
}

// TestCopyOwnersAndTimes: -a keeps owners into a container; without it
// root owns the copies; times are kept, directories' too.
func TestCopyOwnersAndTimes(t *testing.T) {
	src := newSource(t)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, p := range []string{"file.txt", "dir/sub", "dir"} {
		if err := os.Chtimes(filepath.Join(src, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	dst := t.TempDir()
	if err := Copy(context.Background(), openRoot(t, src), "/", openRoot(t, dst), "/copy", Options{IntoContainer: true, KeepOwner: true}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dst, "copy", "file.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1000 || st.Gid != 1001 {
		t.Errorf("-a: owner %d:%d, want 1000:1001", st.Uid, st.Gid)
	}
	for _, p := range []string{"copy/file.txt", "copy/dir", "copy/dir/sub"} {
		fi, err := os.Lstat(filepath.Join(dst, p))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(old) {
			t.Errorf("%s: mtime %v, want %v", p, fi.ModTime(), old)
		}
	}
}

// TestCopyStaysInRoot: links in the destination, absolute or climbing,
// resolve inside its root; a link where a directory's content goes is
// refused, not followed.
func TestCopyStaysInRoot(t *testing.T) {
	src := newSource(t)
	outside := t.TempDir()
	dst := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dst, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../..", filepath.Join(dst, "up")); err != nil {
		t.Fatal(err)
	}
	root := openRoot(t, dst)
	for _, p := range []string{"/escape/x", "/up/x", "/up/escape2"} {
		if err := Copy(context.Background(), openRoot(t, src), "/file.txt", root, p, Options{IntoContainer: true}); err != nil && !strings.Contains(err.Error(), "no such file") {
			t.Errorf("%s: %v", p, err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("written outside the root: %v", entries)
	}
	// "/up/x" is /x of the root.
	if b, err := os.ReadFile(filepath.Join(dst, "x")); err != nil || string(b) != "hello" {
		t.Errorf("/up/x: %q %v, want the root's /x", b, err)
	}
	// A directory copied where a link to outside is: refused.
	if err := os.Symlink(outside, filepath.Join(dst, "dir")); err != nil {
		t.Fatal(err)
	}
	if err := Copy(context.Background(), openRoot(t, src), "/dir", root, "/", Options{IntoContainer: true}); err == nil {
		t.Error("a directory copied over a link: no error")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("written outside the root through a link: %v", entries)
	}
}

// TestTar: a tree out as a tar, named after its last element, and back in.
func TestTar(t *testing.T) {
	src := newSource(t)
	var b bytes.Buffer
	if err := WriteTar(context.Background(), &b, openRoot(t, src), "/dir", Options{}); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(b.Bytes()))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	sort.Strings(names)
	if got, want := strings.Join(names, " "), "dir/ dir/link dir/sub/ dir/sub/deep.txt"; got != want {
		t.Errorf("tar entries %q, want %q", got, want)
	}
	dst := t.TempDir()
	if err := ExtractTar(context.Background(), bytes.NewReader(b.Bytes()), openRoot(t, dst), "/", Options{IntoContainer: true}); err != nil {
		t.Fatal(err)
	}
	if got, want := tree(t, dst, false), "dir drwxr-x---\ndir/link Lrwxrwxrwx -> /etc/passwd\ndir/sub drwxr-x---\ndir/sub/deep.txt -rw------- deep"; got != want {
		t.Errorf("extracted:\n%s\nwant:\n%s", got, want)
	}
	// Names that climb stay inside.
	var evil bytes.Buffer
	tw := tar.NewWriter(&evil)
	tw.WriteHeader(&tar.Header{Name: "../../../evil.txt", Mode: 0o644, Size: 4, Typeflag: tar.TypeReg})
	tw.Write([]byte("evil"))
	tw.Close()
	sub := filepath.Join(dst, "dir", "sub")
	if err := ExtractTar(context.Background(), &evil, openRoot(t, sub), "/", Options{IntoContainer: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sub, "evil.txt")); err != nil {
		t.Errorf("a climbing name did not land inside: %v", err)
	}
	if err := ExtractTar(context.Background(), bytes.NewReader(b.Bytes()), openRoot(t, dst), "/dir/sub/deep.txt", Options{}); err == nil || !strings.Contains(err.Error(), "must be a directory") {
		t.Errorf("into a file: %v", err)
	}
}

// TestSpecialBits: setuid, setgid and sticky bits survive a copy and a
// tar archive.
func TestSpecialBits(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "suid"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "suid"), 0o755|os.ModeSetuid|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "sticky"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "sticky"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	const want = "sticky dtrwxrwxrwx\nsuid ugrwxr-xr-x x"
	dst := t.TempDir()
	for _, name := range []string{"suid", "sticky"} {
		if err := Copy(context.Background(), openRoot(t, src), "/"+name, openRoot(t, dst), "/", Options{IntoContainer: true}); err != nil {
			t.Fatal(err)
		}
	}
	if got := tree(t, dst, false); got != want {
		t.Errorf("copied: %q, want %q", got, want)
	}
	var b bytes.Buffer
	if err := WriteTar(context.Background(), &b, openRoot(t, src), "/suid", Options{}); err != nil {
		t.Fatal(err)
	}
	dst2 := t.TempDir()
	if err := ExtractTar(context.Background(), &b, openRoot(t, dst2), "/", Options{IntoContainer: true}); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dst2, false); got != "suid ugrwxr-xr-x x" {
		t.Errorf("through tar: %q", got)
	}
}

// TestCopyOutRace: a container that swaps a directory the copy made on
// the host (in a volume they share) for a link makes the copy fail, never
// write where the link points.
func TestCopyOutRace(t *testing.T) {
	src := t.TempDir()
	if err := os.Mkdir(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if err := os.WriteFile(filepath.Join(src, "d", itoa(uint32(i))), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := t.TempDir()
	outside := filepath.Join(tmp, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	made := filepath.Join(tmp, "out", "d")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1_000_000 {
			if _, err := os.Lstat(made); err == nil {
				os.Rename(made, made+".moved")
				os.Symlink(outside, made)
				return
			}
		}
	}()
	// The host's root, as `berth cp SERVICE:SRC DST` copies out.
	err := Copy(context.Background(), openRoot(t, src), "/", openRoot(t, "/"), filepath.Join(tmp, "out"), Options{})
	<-done
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("%d files written through the link (copy error: %v)", len(entries), err)
	}
	t.Logf("copy: %v", err)
}

// TestCopyOutSafe: to the host, a container's device nodes are not made
// and setuid or setgid bits are dropped; the content of a kernel file
// system (a running container's /proc) is left out, its files copied as
// far as they go.
func TestCopyOutSafe(t *testing.T) {
	src := t.TempDir()
	if err := unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "suid"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "suid"), 0o755|os.ModeSetuid|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "proc"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("proc", filepath.Join(src, "proc"), "proc", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(filepath.Join(src, "proc"), unix.MNT_DETACH)
	dst := t.TempDir()
	if err := Copy(context.Background(), openRoot(t, src), "/", openRoot(t, dst), "/out", Options{}); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, filepath.Join(dst, "out"), false); got != "proc dr-xr-xr-x\nsuid -rwxr-xr-x x" {
		t.Errorf("copied out:\n%s", got)
	}
	// Into a container, a device node is made.
	if err := Copy(context.Background(), openRoot(t, src), "/null", openRoot(t, dst), "/null", Options{IntoContainer: true}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "null")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("into a container, the device node: %v %v", fi, err)
	}
	// A sysfs file's size is a guess: copied as far as it goes.
	const sysfile = "/sys/kernel/mm/transparent_hugepage/enabled"
	want, err := os.ReadFile(sysfile)
	if err != nil {
		t.Fatal(err)
	}
	if err := Copy(context.Background(), openRoot(t, "/"), sysfile, openRoot(t, dst), "/enabled", Options{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "enabled")); string(got) != string(want) {
		t.Errorf("sysfs file: %q, want %q", got, want)
	}
	var b bytes.Buffer
	if err := WriteTar(context.Background(), &b, openRoot(t, "/"), sysfile, Options{}); err != nil {
		t.Errorf("a sysfs file to tar: %v", err)
	}
}

// TestExtractTarTypes: an entry's type is its type flag's, not its mode
// bits'.
func TestExtractTarTypes(t *testing.T) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o40755, Size: 1})
	tw.Write([]byte("x"))
	tw.Close()
	dst := t.TempDir()
	if err := ExtractTar(context.Background(), &b, openRoot(t, dst), "/", Options{IntoContainer: true}); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dst, false); got != "f -rwxr-xr-x x" {
		t.Errorf("got %q", got)
	}
}
