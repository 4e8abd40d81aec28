package hugeexe

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// newDir is a directory for a test's mount (under /run, as BERTH_RUN is),
// unmounted at the end.
func newDir(t *testing.T) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("mounting a tmpfs needs root")
	}
	if err := supported(); err != nil {
		t.Fatalf("this machine's kernel: %v", err)
	}
	run, err := os.MkdirTemp("/run", "berth-hugeexe-")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(run, "exe")
	t.Cleanup(func() {
		unix.Unmount(dir, unix.MNT_DETACH)
		os.RemoveAll(run)
	})
	return dir
}

// TestEnsure: the first call mounts a tmpfs with huge pages and copies
// the binary into it, in 2 MiB pages; the next one finds both; the copy
// comes locked, shared.
func TestEnsure(t *testing.T) {
	dir := newDir(t)
	src, err := os.Executable() // the test binary, a few MiB
	if err != nil {
		t.Fatal(err)
	}
	c, err := Ensure(context.Background(), dir, src)
	if err != nil {
		t.Fatal(err)
	}
	defer c.File.Close()

	opts := mountOptions(t, dir)
	for _, want := range []string{"tmpfs", "huge=within_size", "mode=700", "nosuid", "nodev"} {
		if !strings.Contains(opts, want) {
			t.Errorf("mount of %s: %q, want %s in it", dir, opts, want)
		}
	}
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(c.Path); err != nil || !bytes.Equal(got, want) {
		t.Errorf("the copy %s differs from %s (%v)", c.Path, src, err)
	}
	if st, err := os.Stat(c.Path); err != nil || st.Mode().Perm() != 0o500 {
		t.Errorf("the copy's mode: %v (%v), want 0500", st.Mode(), err)
	}
	if kb := pmdMapped(t, c.Path); kb < 2048 {
		t.Errorf("mapped, the copy has %d kB in 2 MiB pages, want its first 2 MiB at least", kb)
	}
	if !held(c.Path) {
		t.Errorf("an exclusive lock on %s was granted: the copy should come under a shared one", c.Path)
	}

	again, err := Ensure(context.Background(), dir, src)
	if err != nil {
		t.Fatal(err)
	}
	defer again.File.Close()
	if again.Path != c.Path || !sameFile(t, again.File, c.File) {
		t.Errorf("second Ensure: %s, a new copy; want %s again", again.Path, c.Path)
	}
	if n := len(mounts(t, dir)); n != 1 {
		t.Errorf("%d mounts on %s, want 1", n, dir)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%s holds %d files, want the copy alone", dir, len(entries))
	}
}

// TestEnsureRemovesUnheld: copies no process holds (an older binary's,
// an interrupted copy) go at the next Ensure; one a process holds stays.
func TestEnsureRemovesUnheld(t *testing.T) {
	dir := newDir(t)
	src, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Ensure(context.Background(), dir, src)
	if err != nil {
		t.Fatal(err)
	}
	c.File.Close()
	old, kept, partial := filepath.Join(dir, "berth-old"), filepath.Join(dir, "berth-running"), filepath.Join(dir, ".berth-new")
	for _, p := range []string{old, kept, partial} {
		if err := os.WriteFile(p, []byte("binary"), 0o500); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(kept)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}

	c, err = Ensure(context.Background(), dir, src)
	if err != nil {
		t.Fatal(err)
	}
	defer c.File.Close()
	for p, want := range map[string]bool{old: false, partial: false, kept: true, c.Path: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

// TestEnsureErrors: what cannot be copied or mounted says what and where,
// and mounts nothing.
func TestEnsureErrors(t *testing.T) {
	dir := newDir(t)
	if _, err := Ensure(context.Background(), dir, filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing binary: %v", err)
	}
	if opts := mountOptions(t, dir); opts != "" {
		t.Errorf("mounted %s for a missing binary: %s", dir, opts)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil { // a file where the mount goes
		t.Fatal(err)
	}
	src, _ := os.Executable()
	if _, err := Ensure(context.Background(), dir, src); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("a file in the way: %v", err)
	}
	if opts := mountOptions(t, dir); opts != "" {
		t.Errorf("mounted %s: %s", dir, opts)
	}
}

// TestEnsureFull: a tmpfs too small for the copy (one mounted there
// before, or full) gives an error that says so, and leaves no part of a
// copy behind.
func TestEnsureFull(t *testing.T) {
	dir := newDir(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("berth-exe", dir, "tmpfs", 0, "size=1m,huge=within_size"); err != nil {
		t.Fatal(err)
	}
	src, _ := os.Executable()
	_, err := Ensure(context.Background(), dir, src)
	if err == nil || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), dir) {
		t.Errorf("a full tmpfs: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left in %s: %v", dir, entries)
	}
}

// mountOptions is the mountinfo line of the mount on dir ("" if none).
func mountOptions(t *testing.T, dir string) string {
	t.Helper()
	return strings.Join(mounts(t, dir), "\n")
}

// mounts are the mountinfo lines of the mounts on dir.
func mounts(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			out = append(out, l)
		}
	}
	return out
}

// pmdMapped maps path at a 2 MiB boundary, reads it all, and says how
// many kB of it the kernel mapped in 2 MiB pages.
func pmdMapped(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	const huge = 2 << 20
	size := uintptr(st.Size())
	region, err := unix.MmapPtr(-1, 0, nil, size+huge, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.MunmapPtr(region, size+huge)
	at := unsafe.Pointer((uintptr(region) + huge - 1) &^ (huge - 1))
	p, err := unix.MmapPtr(int(f.Fd()), 0, at, size, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_FIXED)
	if err != nil {
		t.Fatal(err)
	}
	mem := unsafe.Slice((*byte)(p), size)
	for i := 0; i < len(mem); i += 4096 {
		sink += mem[i]
	}
	sm, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	start := strconv.FormatUint(uint64(uintptr(p)), 16) + "-"
	in := false
	s := bufio.NewScanner(sm)
	for s.Scan() {
		l := s.Text()
		if f := strings.Fields(l); len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = strings.HasPrefix(l, start)
			continue
		}
		if v, ok := strings.CutPrefix(l, "ShmemPmdMapped:"); ok && in {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kb
		}
	}
	t.Fatalf("no mapping at %s in smaps", start)
	return 0
}

// sink keeps pmdMapped's reads.
var sink byte

// held says whether another open file of path could not get an
// exclusive lock on it.
func held(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil
}

func sameFile(t *testing.T, a, b *os.File) bool {
	t.Helper()
	sa, err := a.Stat()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(sa, sb)
}
