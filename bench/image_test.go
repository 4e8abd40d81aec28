// Package bench measures berth against the tools it replaces, each figure
// next to a baseline measured in the same run on the same machine: layer
// unpacking against GNU tar, pulls against skopeo. See README.md.
package bench

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	// This binary is also the init of the containers the container
	// benchmarks start: libcontainer re-executes it as `<binary> init`.
	_ "github.com/berth-dev/berth/runtime/container/reexec"
	"github.com/berth-dev/berth/runtime/image"

	"github.com/berth-dev/berth/tests/registrytest"
)

const (
	unpackLayerBytes = 100 << 20 // file content of BenchmarkUnpack's layer
	pullLayers       = 5
	pullLayerBytes   = 40 << 20 // per layer: 200 MiB in all, incompressible
)

// shared holds the inputs every run of a benchmark reuses. They take seconds
// to build and a benchmark function is called several times per run (once
// with b.N = 1, then with the real b.N, times -count), and the two sides of
// each comparison must read the very same input; so they are built once,
// on first use, and TestMain removes them.
var shared *fixtures

func TestMain(m *testing.M) {
	root, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	shared = newFixtures(root)
	code := m.Run()
	shared.close()
	os.Exit(code)
}

type fixtures struct {
	root    string
	busybox func() (*image.Image, error)
	layer   func() (unpackInput, error)
	pull    func() (pullInput, error)
	reg     *registrytest.Registry // started by pull, stopped by close
}

type unpackInput struct {
	path string
	size int64
}

type pullInput struct {
	ref        string // host/repo:tag
	user, pass string
	size       int64 // manifest, config and compressed layers
}

func newFixtures(root string) *fixtures {
	f := &fixtures{root: root}
	f.layer = sync.OnceValues(f.buildUnpackInput)
	f.busybox = sync.OnceValues(f.loadBusybox)
	f.pull = sync.OnceValues(f.buildPullInput)
	return f
}

// close runs once every benchmark has returned.
func (f *fixtures) close() {
	if f.reg != nil {
		f.reg.Stop()
	}
	os.RemoveAll(f.root)
}

func needRoot(b *testing.B) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root: unpacking sets owners, as the image store does")
	}
}

// needTool returns the path of an external program a benchmark compares
// against; without it the comparison cannot be made, so the benchmark is
// skipped with what to install.
func needTool(b *testing.B, prog, pkg string) string {
	b.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		b.Skipf("%s is not installed (apt-get install %s): %v", prog, pkg, err)
	}
	return p
}

// needRegistry skips a pull benchmark on a machine without the programs
// that serve its image.
func needRegistry(b *testing.B) {
	b.Helper()
	needTool(b, "docker-registry", "docker-registry")
	needTool(b, "htpasswd", "apache2-utils")
}

// BenchmarkUnpack is berth's extractor on a plain layer tar: the work of
// `berth pull` once a layer is downloaded and decompressed, without the
// final syncfs (tar does not sync either).
func BenchmarkUnpack(b *testing.B) {
	needRoot(b)
	in, err := shared.layer()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	benchUnpack(b, in, func(dst string) error {
		f, err := os.Open(in.path)
		if err != nil {
			return err
		}
		defer f.Close()
		return image.Extract(ctx, bufio.NewReaderSize(f, 1<<20), dst)
	})
}

// BenchmarkUnpackTar is the baseline for BenchmarkUnpack: GNU tar, which as
// root also restores owners, modes and times.
func BenchmarkUnpackTar(b *testing.B) {
	needRoot(b)
	bin := needTool(b, "tar", "tar")
	in, err := shared.layer()
	if err != nil {
		b.Fatal(err)
	}
	benchUnpack(b, in, func(dst string) error {
		out, err := exec.Command(bin, "-xf", in.path, "-C", dst).CombinedOutput()
		if err != nil {
			return fmt.Errorf("tar -xf: %w: %s", err, out)
		}
		return nil
	})
}

// benchUnpack times unpack into a fresh directory per iteration.
func benchUnpack(b *testing.B, in unpackInput, unpack func(dst string) error) {
	mkdir := func(dst string) error { return os.Mkdir(dst, 0o700) }
	last := benchFresh(b, in.size, mkdir, func(dst string) error {
		if err := unpack(dst); err != nil {
			return fmt.Errorf("unpacking %s: %w", in.path, err)
		}
		return nil
	})
	if err := checkUnpacked(last); err != nil {
		b.Fatal(err)
	}
}

// benchFresh times run b.N times, each writing to a fresh path under a
// temporary directory, and returns the last path. setup (may be nil)
// prepares the path untimed. The outputs stay until the test binary ends
// (under shared.root, which TestMain removes): on ext4 without a journal,
// creating files soon after deleting many costs several times more (the
// allocator skips inodes freed in the last minutes, fs/ext4/ialloc.c's
// recently_deleted), so deleting one iteration's output, or one
// benchmark's (b.TempDir goes when the benchmark function returns, which
// Go calls with b.N = 1 first), would make the next one measure that. Besides CPU time it
// reports cpu-ms/op, the CPU time of this process and its children per
// iteration.
func benchFresh(b *testing.B, size int64, setup, run func(dst string) error) string {
	out, err := os.MkdirTemp(shared.root, "out-")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	dst := ""
	var cpu time.Duration
	for i := range b.N {
		b.StopTimer()
		dst = filepath.Join(out, fmt.Sprint(i))
		if setup != nil {
			if err := setup(dst); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		before := cpuTime()
		if err := run(dst); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - before
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	return dst
}

// cpuTime is the CPU time, user and system, used so far by this process and
// the children it waited for: on a 2-core machine a side can only be faster
// than the other if it also needs less CPU.
func cpuTime() time.Duration {
	var t time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			t += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return t
}

// checkUnpacked guards the figures against a side that silently did
// nothing.
func checkUnpacked(dir string) error {
	files := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files++
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("checking the unpacked layer: %w", err)
	}
	if files < 1000 {
		return fmt.Errorf("checking the unpacked layer: only %d files in %s", files, dir)
	}
	return nil
}

// BenchmarkPull is `berth pull` of a 5-layer, 224 MB image from a real
// registry on loopback into an empty store: download, digest checks,
// decompression, unpacking and the syncs that make the store crash-safe.
func BenchmarkPull(b *testing.B) {
	needRoot(b)
	needRegistry(b)
	in, err := shared.pull()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	keys := keychain{in.user, in.pass}
	var s *image.Store
	var img *image.Image
	open := func(dst string) (err error) {
		s, err = image.Open(dst)
		return err
	}
	benchFresh(b, in.size, open, func(string) (err error) {
		if img, err = s.Pull(ctx, in.ref, image.PullOptions{Keychain: keys}); err != nil {
			return fmt.Errorf("pulling %s: %w", in.ref, err)
		}
		return nil
	})
	if len(img.Layers) != pullLayers {
		b.Fatalf("pulled %d layers, want %d", len(img.Layers), pullLayers)
	}
}

// BenchmarkPullSkopeo is the baseline for BenchmarkPull: skopeo copies the
// same image into a directory. It downloads and checks digests but unpacks
// nothing, so berth matching it means unpacking is hidden behind the
// download.
func BenchmarkPullSkopeo(b *testing.B) {
	benchSkopeo(b, false)
}

// BenchmarkPullSkopeoUntar is the same work as BenchmarkPull done with
// tools: skopeo copies the image, then GNU tar unpacks its layers in order
// into one directory (no whiteouts, no layer sharing, no syncs: less than
// berth does).
func BenchmarkPullSkopeoUntar(b *testing.B) {
	benchSkopeo(b, true)
}

func benchSkopeo(b *testing.B, untar bool) {
	needRoot(b)
	needRegistry(b)
	bin := needTool(b, "skopeo", "skopeo")
	tarBin := needTool(b, "tar", "tar")
	in, err := shared.pull()
	if err != nil {
		b.Fatal(err)
	}
	last := benchFresh(b, in.size, nil, func(dst string) error {
		if err := skopeoCopy(bin, in, dst); err != nil {
			return err
		}
		if untar {
			return untarLayers(tarBin, dst)
		}
		return nil
	})
	entries, err := os.ReadDir(last)
	if err != nil {
		b.Fatal(err)
	}
	// The layers, the config, manifest.json and the version file, and the
	// unpacked root.
	want := pullLayers + 3
	if untar {
		want++
		if err := checkUnpacked(filepath.Join(last, "rootfs")); err != nil {
			b.Fatal(err)
		}
	}
	if len(entries) != want {
		b.Fatalf("skopeo wrote %d files, want %d", len(entries), want)
	}
}

// skopeoCopy copies the pull benchmarks' image into the directory dst.
func skopeoCopy(bin string, in pullInput, dst string) error {
	// --insecure-policy: the signature policy is not what is measured,
	// and the machine's /etc/containers/policy.json may be missing.
	cmd := exec.Command(bin, "--insecure-policy", "copy", "--quiet",
		"--src-tls-verify=false", "--src-creds", in.user+":"+in.pass,
		"docker://"+in.ref, "dir:"+dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("skopeo copy: %w: %s", err, out)
	}
	return nil
}

// BenchmarkPullPaired is BenchmarkPull and BenchmarkPullSkopeo in one:
// each iteration pulls with berth and copies with skopeo, in turn first,
// so that both sides meet the same machine. The figures of separate
// benchmarks drift apart when this machine's disk is throttled after a
// few GB of writes (both sides then slow down, by up to 2x); the ratio of
// paired ones does not. It reports berth-ms/op, skopeo-ms/op and
// berth/skopeo (of the sums); ns/op is the two together.
func BenchmarkPullPaired(b *testing.B) {
	needRoot(b)
	needRegistry(b)
	bin := needTool(b, "skopeo", "skopeo")
	in, err := shared.pull()
	if err != nil {
		b.Fatal(err)
	}
	out, err := os.MkdirTemp(shared.root, "out-")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	keys := keychain{in.user, in.pass}
	var berth, skopeo time.Duration
	timed := func(total *time.Duration, run func() error) {
		b.StartTimer()
		t0 := time.Now()
		err := run()
		*total += time.Since(t0)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		dir := filepath.Join(out, fmt.Sprint(i))
		s, err := image.Open(filepath.Join(dir, "berth"))
		if err != nil {
			b.Fatal(err)
		}
		pull := func() error {
			img, err := s.Pull(ctx, in.ref, image.PullOptions{Keychain: keys})
			if err == nil && len(img.Layers) != pullLayers {
				err = fmt.Errorf("pulled %d layers, want %d", len(img.Layers), pullLayers)
			}
			return err
		}
		cp := func() error { return skopeoCopy(bin, in, filepath.Join(dir, "skopeo")) }
		if i%2 == 0 {
			timed(&berth, pull)
			timed(&skopeo, cp)
		} else {
			timed(&skopeo, cp)
			timed(&berth, pull)
		}
	}
	b.ReportMetric(float64(berth.Milliseconds())/float64(b.N), "berth-ms/op")
	b.ReportMetric(float64(skopeo.Milliseconds())/float64(b.N), "skopeo-ms/op")
	b.ReportMetric(berth.Seconds()/skopeo.Seconds(), "berth/skopeo")
}

// untarLayers unpacks the layers of the image skopeo copied to dir, in the
// manifest's order, into dir/rootfs.
func untarLayers(tarBin, dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return err
	}
	m, err := v1.ParseManifest(strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	root := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	for _, l := range m.Layers {
		cmd := exec.Command(tarBin, "-xzf", filepath.Join(dir, l.Digest.Hex), "-C", root)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("tar -xzf: %w: %s", err, out)
		}
	}
	return nil
}

// buildUnpackInput writes the layer BenchmarkUnpack extracts.
func (f *fixtures) buildUnpackInput() (unpackInput, error) {
	p := filepath.Join(f.root, "layer.tar")
	// A fixed seed: every run, and both sides, unpack the same tree.
	if err := writeLayerFile(p, mrand.New(mrand.NewChaCha8([32]byte{1})), unpackLayerBytes, false); err != nil {
		return unpackInput{}, fmt.Errorf("building the unpack benchmark's layer: %w", err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return unpackInput{}, err
	}
	return unpackInput{path: p, size: fi.Size()}, nil
}

// writeLayerFile writes a generated layer to p, gzipped as a registry
// serves it, or as a plain tar. BestSpeed: the content is random, no level
// finds anything to shrink, and level 1 gives up fastest.
func writeLayerFile(p string, rng *mrand.Rand, budget int64, gzipped bool) (err error) {
	file, err := os.Create(p)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := file.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(file, 1<<20)
	var w io.Writer = bw
	var zw *gzip.Writer
	if gzipped {
		if zw, err = gzip.NewWriterLevel(bw, gzip.BestSpeed); err != nil {
			return err
		}
		w = zw
	}
	if err := writeLayer(w, rng, budget); err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// writeLayer writes a layer tar shaped like a distribution's: a tree of
// directories up to 5 deep; many small files, some medium, a few of several
// megabytes (about 1,900 files for 100 MiB); symlinks, relative and absolute,
// some dangling; a few owners and modes. File contents are random, so that
// neither gzip nor the filesystem can make them cheaper than real data.
func writeLayer(w io.Writer, rng *mrand.Rand, budget int64) error {
	tw := tar.NewWriter(w)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	header := func(h *tar.Header) error {
		h.ModTime = mtime
		if rng.IntN(20) == 0 {
			h.Uid, h.Gid = 1000, 1000
		}
		return tw.WriteHeader(h)
	}

	// Directories: each under a random earlier one, parents first.
	dirs := []string{"usr", "etc", "var", "opt"}
	for _, d := range dirs {
		if err := header(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return err
		}
	}
	nDirs := int(budget / (400 << 10))
	for i := range nDirs {
		parent := dirs[rng.IntN(len(dirs))]
		if strings.Count(parent, "/") >= 4 {
			parent = dirs[rng.IntN(4)]
		}
		d := fmt.Sprintf("%s/d%04d", parent, i)
		dirs = append(dirs, d)
		if err := header(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return err
		}
	}

	// Files until the budget is spent. Sizes are log-uniform within three
	// bands: 90% from 1 to 16 KB, 9% up to 512 KB, 1% up to 8 MB.
	var files []string
	buf := make([]byte, 8<<20)
	for written := int64(0); written < budget; {
		lo, hi := 1<<10, 16<<10
		switch n := rng.IntN(100); {
		case n == 0:
			lo, hi = 512<<10, 8<<20
		case n < 10:
			lo, hi = 16<<10, 512<<10
		}
		size := int64(float64(lo) * math.Pow(float64(hi)/float64(lo), rng.Float64()))
		mode := int64(0o644)
		if rng.IntN(10) == 0 {
			mode = 0o755
		}
		name := fmt.Sprintf("%s/f%05d", dirs[rng.IntN(len(dirs))], len(files))
		if err := header(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: size}); err != nil {
			return err
		}
		content := buf[:size]
		fillRandom(rng, content)
		if _, err := tw.Write(content); err != nil {
			return err
		}
		files = append(files, name)
		written += size
	}

	// Symlinks, one for every 12 files, as /usr/lib and /etc/alternatives
	// have.
	for i := range len(files) / 12 {
		name := fmt.Sprintf("%s/l%04d", dirs[rng.IntN(len(dirs))], i)
		target := files[rng.IntN(len(files))]
		switch rng.IntN(4) {
		case 0:
			target = "/" + target
		case 1:
			target = "/nonexistent/" + target
		default:
			rel, err := filepath.Rel(path.Dir(name), target)
			if err != nil {
				return err
			}
			target = rel
		}
		if err := header(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}); err != nil {
			return err
		}
	}
	return tw.Close()
}

func fillRandom(rng *mrand.Rand, p []byte) {
	for i := 0; i+8 <= len(p); i += 8 {
		v := rng.Uint64()
		p[i], p[i+1], p[i+2], p[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		p[i+4], p[i+5], p[i+6], p[i+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
	}
	for i := len(p) &^ 7; i < len(p); i++ {
		p[i] = byte(rng.Uint64())
	}
}

// buildPullInput builds the pull benchmarks' image, starts the registry and
// pushes the image to it.
func (f *fixtures) buildPullInput() (pullInput, error) {
	var layers []v1.Layer
	for i := range pullLayers {
		p := filepath.Join(f.root, fmt.Sprintf("pull-layer%d.tar.gz", i))
		if err := writeLayerFile(p, mrand.New(mrand.NewChaCha8([32]byte{2, byte(i)})), pullLayerBytes, true); err != nil {
			return pullInput{}, fmt.Errorf("building layer %d of the pull benchmark's image: %w", i, err)
		}
		l, err := tarball.LayerFromFile(p)
		if err != nil {
			return pullInput{}, fmt.Errorf("building layer %d of the pull benchmark's image: %w", i, err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return pullInput{}, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return pullInput{}, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Cmd = []string{"/bin/true"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return pullInput{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return pullInput{}, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return pullInput{}, err
	}
	size := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}

	reg, err := startRegistry(filepath.Join(f.root, "registry"))
	if err != nil {
		return pullInput{}, err
	}
	f.reg = reg
	ref := reg.Host + "/bench/app:1"
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return pullInput{}, err
	}
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Pass})); err != nil {
		return pullInput{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	return pullInput{ref: ref, user: reg.User, pass: reg.Pass, size: size}, nil
}

// keychain gives the registry's account, as ~/.docker/config.json would.
type keychain struct{ user, pass string }

func (k keychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

// startRegistry runs Debian's docker-registry on a loopback port, serving
// from dir, with basic auth.
func startRegistry(dir string) (*registrytest.Registry, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, fmt.Errorf("docker-registry is not installed (apt-get install docker-registry): %w", err)
	}
	htpasswd, err := exec.LookPath("htpasswd")
	if err != nil {
		return nil, fmt.Errorf("htpasswd is not installed (apt-get install apache2-utils): %w", err)
	}
	return registrytest.Start(bin, htpasswd, dir)
}
