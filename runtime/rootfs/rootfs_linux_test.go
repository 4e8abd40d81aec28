package rootfs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds root filesystems with device nodes and foreign owners")
	}
}

// sandbox is a root filesystem next to an "outside" tree holding what an
// attacker would want berth to read or write: a passwd-like file whose
// every field carries a unique marker.
type sandbox struct {
	base, root, outside string
	marker              string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	base := t.TempDir()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	s := &sandbox{base: base, root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside"), marker: "MARKER" + hex.EncodeToString(b)}
	for _, d := range []string{s.root, filepath.Join(s.root, "etc"), s.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Were berth to read this, "app" would be root with the marker as home.
	secret := fmt.Sprintf("app:x:0:0:%[1]s:/%[1]s:/bin/sh\n%[1]s:x:0:0::/:/bin/sh\n", s.marker)
	if err := os.WriteFile(filepath.Join(s.outside, "shadow"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.outside, "group"), []byte("app:x:0:"+s.marker+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *sandbox) path(p string) string { return filepath.Join(s.root, p) }

func (s *sandbox) write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(s.path(p)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.path(p), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (s *sandbox) symlink(t *testing.T, p, target string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(s.path(p)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, s.path(p)); err != nil {
		t.Fatal(err)
	}
}

// snapshot records everything under the sandbox but the root: what must
// never change.
func (s *sandbox) snapshot(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(s.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == s.root {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d mtime=%d", st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Nano())
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (s *sandbox) checkOutside(t *testing.T, before map[string]string) {
	t.Helper()
	after := s.snapshot(t)
	for p, d := range after {
		if before[p] != d {
			t.Errorf("outside the root, %s changed: %q, was %q", p, d, before[p])
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("outside the root, %s disappeared", p)
		}
	}
}

// resolveQuickly runs ResolveUser, failing the test if it blocks.
func resolveQuickly(t *testing.T, root, user string, groupAdd []string) (User, error) {
	t.Helper()
	type result struct {
		u   User
		err error
	}
	done := make(chan result, 1)
	go func() {
		u, err := ResolveUser(root, user, groupAdd)
		done <- result{u, err}
	}()
	select {
	case r := <-done:
		return r.u, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("ResolveUser(%q) blocked", user)
		return User{}, nil
	}
}

func TestResolveUserInRoot(t *testing.T) {
	needRoot(t)
	s := newSandbox(t)
	s.write(t, "etc/passwd", testPasswd)
	s.write(t, "etc/group", testGroup)
	u, err := ResolveUser(s.root, "app", []string{"staff", "77"})
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 1000 || u.GID != 1000 || u.Home != "/home/app" || !slices.Equal(u.AdditionalGIDs, []uint32{1000, 10, 999, 50, 77}) {
		t.Errorf("got %+v", u)
	}
	if _, err := ResolveUser(filepath.Join(s.base, "nope"), "0", nil); err == nil {
		t.Error("a missing root was accepted")
	}
}

func TestResolveUserHostileRoots(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name  string
		build func(t *testing.T, s *sandbox)
		user  string
		// want is the uid when resolving succeeds; err a part of the
		// error otherwise.
		want uint32
		err  string
	}{
		{name: "absolute symlink to a host file resolves inside the root", user: "app", err: `user "app" is not in the image's /etc/passwd (the image has no /etc/passwd)`,
			build: func(t *testing.T, s *sandbox) { s.symlink(t, "etc/passwd", filepath.Join(s.outside, "shadow")) }},
		{name: "absolute symlink reads the root's file of that name", user: "app", want: 4321,
			build: func(t *testing.T, s *sandbox) {
				s.symlink(t, "etc/passwd", filepath.Join(s.outside, "shadow"))
				s.write(t, filepath.Join(s.outside, "shadow"), "app:x:4321:4321::/home/app:/bin/sh\n")
			}},
		{name: "relative symlink climbing out stays inside", user: "app", want: 4321,
			build: func(t *testing.T, s *sandbox) {
				s.symlink(t, "etc/passwd", strings.Repeat("../", 20)+strings.TrimPrefix(filepath.Join(s.outside, "shadow"), "/"))
				s.write(t, filepath.Join(s.outside, "shadow"), "app:x:4321:4321::/home/app:/bin/sh\n")
			}},
		{name: "symlinked /etc to a host directory", user: "app", err: "not in the image's /etc/passwd",
			build: func(t *testing.T, s *sandbox) {
				if err := os.Remove(s.path("etc")); err != nil {
					t.Fatal(err)
				}
				s.symlink(t, "etc", s.outside)
			}},
		{name: "symlink to ../../.. is the root, a directory", user: "app", err: "not a regular file (a directory)",
			build: func(t *testing.T, s *sandbox) { s.symlink(t, "etc/passwd", "../../..") }},
		{name: "symlink through /proc of the host", user: "app", err: "the image has no /etc/passwd",
			build: func(t *testing.T, s *sandbox) {
				s.symlink(t, "etc/passwd", "/proc/self/root"+filepath.Join(s.outside, "shadow"))
			}},
		{name: "symlink loop", user: "app", err: "too many symlinks",
			build: func(t *testing.T, s *sandbox) {
				s.symlink(t, "etc/passwd", "passwd2")
				s.symlink(t, "etc/passwd2", "/etc/passwd")
			}},
		{name: "FIFO", user: "app", err: "not a regular file (a FIFO)",
			build: func(t *testing.T, s *sandbox) {
				if err := unix.Mkfifo(s.path("etc/passwd"), 0o644); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "symlink to a FIFO", user: "1000", err: "not a regular file (a FIFO)",
			build: func(t *testing.T, s *sandbox) {
				if err := unix.Mkfifo(s.path("fifo"), 0o644); err != nil {
					t.Fatal(err)
				}
				s.symlink(t, "etc/passwd", "/fifo")
			}},
		{name: "device node", user: "app", err: "not a regular file (a device)",
			build: func(t *testing.T, s *sandbox) {
				// The host's /dev/zero: reading it would never end.
				if err := unix.Mknod(s.path("etc/passwd"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5))); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "directory", user: "app", err: "not a regular file (a directory)",
			build: func(t *testing.T, s *sandbox) {
				if err := os.Mkdir(s.path("etc/passwd"), 0o755); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "20 MiB passwd", user: "app", err: "larger than 10 MiB",
			build: func(t *testing.T, s *sandbox) {
				s.write(t, "etc/passwd", strings.Repeat("filler:x:1:1::/:/bin/sh\n", 20<<20/24+1))
			}},
		{name: "hostile group, named group", user: "0:staff", err: "/etc/group: invalid argument: not a regular file (a FIFO)",
			build: func(t *testing.T, s *sandbox) {
				if err := unix.Mkfifo(s.path("etc/group"), 0o644); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "hostile group, numeric ids never read it", user: "1000:1000", want: 1000,
			build: func(t *testing.T, s *sandbox) {
				if err := unix.Mkfifo(s.path("etc/group"), 0o644); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "group symlinked out", user: "0:app", err: `group "app" is not in the image's /etc/group (the image has no /etc/group)`,
			build: func(t *testing.T, s *sandbox) { s.symlink(t, "etc/group", filepath.Join(s.outside, "group")) }},
		{name: "no /etc, numeric", user: "1000:1000", want: 1000,
			build: func(t *testing.T, s *sandbox) {
				if err := os.Remove(s.path("etc")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "/etc is a file", user: "1000", want: 1000,
			build: func(t *testing.T, s *sandbox) {
				if err := os.Remove(s.path("etc")); err != nil {
					t.Fatal(err)
				}
				s.write(t, "etc", "not a directory")
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			tc.build(t, s)
			before := s.snapshot(t)
			u, err := resolveQuickly(t, s.root, tc.user, nil)
			t.Logf("%+v, %v", u, err)
			if err != nil && strings.Contains(err.Error(), s.marker) || strings.Contains(u.Home, s.marker) {
				t.Fatalf("the host's file was read: %+v, %v", u, err)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error with %q", u, err, tc.err)
				}
			} else if err != nil || u.UID != tc.want {
				t.Fatalf("got %+v, %v; want uid %d", u, err, tc.want)
			}
			s.checkOutside(t, before)
		})
	}
}

// TestResolveUserRefusesMounts mounts proc inside the root: a symlink into
// it must not reach the host's files through /proc/self/root, and the
// mount itself must not be crossed.
func TestResolveUserRefusesMounts(t *testing.T) {
	needRoot(t)
	s := newSandbox(t)
	if err := os.Mkdir(s.path("proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("proc", s.path("proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		t.Skipf("cannot mount proc here: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(s.path("proc"), unix.MNT_DETACH) })
	for _, target := range []string{"/proc/self/root" + filepath.Join(s.outside, "shadow"), "/proc/1/environ", "../proc/self/fd/0"} {
		if err := os.RemoveAll(s.path("etc/passwd")); err != nil {
			t.Fatal(err)
		}
		s.symlink(t, "etc/passwd", target)
		u, err := resolveQuickly(t, s.root, "app", nil)
		t.Logf("passwd -> %s: %v", target, err)
		if err == nil || strings.Contains(err.Error(), s.marker) || !strings.Contains(err.Error(), "leaves the root file system") {
			t.Errorf("passwd -> %s: got %+v, %v", target, u, err)
		}
	}
}

func TestMkdirWorkingDir(t *testing.T) {
	needRoot(t)
	s := newSandbox(t)
	if err := os.Mkdir(s.path("srv"), 0o700); err != nil {
		t.Fatal(err)
	}
	before := s.snapshot(t)
	if err := MkdirWorkingDir(s.root, "/srv/app/data/", 1234, 5678); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"srv": "0700 0:0", "srv/app": "0755 1234:5678", "srv/app/data": "0755 1234:5678"} {
		var st unix.Stat_t
		if err := unix.Lstat(s.path(p), &st); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%04o %d:%d", st.Mode&0o7777, st.Uid, st.Gid); st.Mode&unix.S_IFMT != unix.S_IFDIR || got != want {
			t.Errorf("%s: %s, want a directory %s", p, got, want)
		}
	}
	// Existing: nothing to do, nothing changed.
	if err := MkdirWorkingDir(s.root, "/srv/app", 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := MkdirWorkingDir(s.root, "", 1, 1); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(s.path("srv/app"), &st); err != nil || st.Uid != 1234 {
		t.Errorf("an existing directory was changed: uid %d, %v", st.Uid, err)
	}
	s.checkOutside(t, before)
}

func TestMkdirWorkingDirHostile(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name    string
		build   func(t *testing.T, s *sandbox)
		dir     func(s *sandbox) string
		created string // where the directory must appear inside the root
		err     string
		absent  []string // paths of the root that must not be created
	}{
		{name: "CVE-2024-21626", dir: fixed("/proc/self/fd/7"), err: "under /proc", absent: []string{"proc"}},
		{name: "dev/fd", dir: fixed("/dev/fd/7"), err: "under /dev", absent: []string{"dev"}},
		{name: "dotdot escape", dir: func(s *sandbox) string { return "/../../../../../.." + s.outside + "/x" }, err: `".." component`},
		{name: "dotdot inside", dir: fixed("/tmp/../../x"), err: `".." component`, absent: []string{"tmp", "x"}},
		{name: "relative", dir: fixed("tmp/x"), err: "not an absolute path"},
		{name: "symlink to /", build: link("app", "/"), dir: fixed("/app/data"), created: "data"},
		{name: "symlink to ..", build: link("app", ".."), dir: fixed("/app/app/data"), created: "data"},
		{name: "absolute symlink to a host directory", build: func(t *testing.T, s *sandbox) { s.symlink(t, "app", s.outside) },
			dir: fixed("/app/x/y"), created: "/OUTSIDE/x/y"},
		{name: "relative symlink climbing out", build: func(t *testing.T, s *sandbox) {
			s.symlink(t, "app", strings.Repeat("../", 20)+strings.TrimPrefix(s.outside, "/"))
		}, dir: fixed("/app/x"), created: "/OUTSIDE/x"},
		{name: "symlink in the middle", build: link("var/www", "/srv/site"), dir: fixed("/var/www/html"), created: "srv/site/html"},
		{name: "dangling symlink", build: link("app", "/opt/app/current"), dir: fixed("/app/logs"), created: "opt/app/current/logs"},
		{name: "symlink with .. after a missing directory", build: link("app", "/opt/missing/../real"), dir: fixed("/app"), created: "opt/real", absent: []string{"opt/missing"}},
		{name: "symlink to /proc", build: link("app", "/proc/self/fd/7"), dir: fixed("/app"), err: `resolves to /proc/self/fd/7, under /proc`, absent: []string{"proc"}},
		{name: "symlink to /dev/fd", build: link("app", "../dev/fd"), dir: fixed("/app/7"), err: "under /dev", absent: []string{"dev"}},
		{name: "chain of symlinks to /proc", build: func(t *testing.T, s *sandbox) {
			s.symlink(t, "a", "/b/c")
			s.symlink(t, "b", "/d")
			s.symlink(t, "d/c", "../proc")
		}, dir: fixed("/a/self/cwd"), err: "under /proc", absent: []string{"proc"}},
		{name: "through a file", build: func(t *testing.T, s *sandbox) { s.write(t, "app", "x") }, dir: fixed("/app/x"), err: "/app is a file, not a directory"},
		{name: "working dir is a file", build: func(t *testing.T, s *sandbox) { s.write(t, "app", "x") }, dir: fixed("/app"), err: "/app is a file, not a directory"},
		{name: "through a FIFO", build: func(t *testing.T, s *sandbox) {
			if err := unix.Mkfifo(s.path("app"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, dir: fixed("/app/x"), err: "/app is a FIFO, not a directory"},
		{name: "symlink loop", build: func(t *testing.T, s *sandbox) {
			s.symlink(t, "l1", "l2")
			s.symlink(t, "l2", "/l1")
		}, dir: fixed("/l1/x"), err: "too many levels of symlinks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			if tc.build != nil {
				tc.build(t, s)
			}
			before := s.snapshot(t)
			err := MkdirWorkingDir(s.root, tc.dir(s), 0, 0)
			t.Logf("%v", err)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("got %v, want an error with %q", err, tc.err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.created != "" {
				p := strings.Replace(tc.created, "/OUTSIDE", s.outside, 1)
				if fi, err := os.Lstat(s.path(p)); err != nil || !fi.IsDir() {
					t.Errorf("%s was not created inside the root: %v", p, err)
				}
			}
			for _, p := range tc.absent {
				if _, err := os.Lstat(s.path(p)); err == nil {
					t.Errorf("%s was created", p)
				}
			}
			s.checkOutside(t, before)
		})
	}
}

func fixed(dir string) func(*sandbox) string { return func(*sandbox) string { return dir } }

func link(p, target string) func(t *testing.T, s *sandbox) {
	return func(t *testing.T, s *sandbox) { s.symlink(t, p, target) }
}
