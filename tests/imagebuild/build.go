package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// The builder's own code is an input of every image: a change to it may
// change what an image holds. It is embedded so that `go run` and the test
// binary hash the same bytes without knowing where the source lies.
// Every non-test .go file of this folder belongs here (a test checks).
//
//go:embed apt.go build.go images.go main.go rootfs.go
var builderSource embed.FS

//go:embed files
var imageFiles embed.FS

// builder builds images into a directory, skipping those whose inputs have
// not changed since the tarball there was built.
type builder struct {
	out  string // the tarballs and their .inputs
	debs string // downloaded packages, kept across builds
	// logf reports the steps shared by all images; nil is silent.
	logf func(format string, args ...any)
}

// result is what became of one image.
type result struct {
	name, ref, path string
	built           bool // false: it was up to date
	size            int64
	packages        []pkg
	took            time.Duration
}

// inputs is everything an image is built from, kept next to its tarball as
// <name>.inputs. The image is rebuilt when any of it but AptState changes.
type inputs struct {
	Image string `json:"image"`
	// Builder hashes the builder's code and the image's own files.
	Builder string `json:"builder"`
	// AptState fingerprints apt's lists and configuration when Packages
	// were resolved (see aptState); it only saves asking apt again.
	AptState string `json:"aptState"`
	Packages []pkg  `json:"packages"`
}

func (in inputs) sameImage(o inputs) bool {
	return in.Image == o.Image && in.Builder == o.Builder && slices.Equal(in.Packages, o.Packages)
}

// job is one image on its way through build.
type job struct {
	spec  imageSpec
	tar   string
	prev  *inputs
	next  inputs
	start time.Time
}

// build brings every image of specs up to date, calling done for each as
// soon as it is known to be up to date or has been built.
func (b *builder) build(ctx context.Context, specs []imageSpec, done func(result)) error {
	if err := os.MkdirAll(b.out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	state, err := aptState()
	if err != nil {
		return err
	}
	var stale []*job
	for _, s := range specs {
		j := &job{spec: s, tar: filepath.Join(b.out, s.name+".tar"), start: time.Now()}
		bh, err := builderHash(s)
		if err != nil {
			return err
		}
		j.prev = readInputs(j.tar)
		j.next = inputs{Image: s.ref, Builder: bh, AptState: state}
		if j.prev != nil && j.prev.Image == s.ref && j.prev.Builder == bh && j.prev.AptState == state {
			if size, ok := fileSize(j.tar); ok {
				done(result{name: s.name, ref: s.ref, path: j.tar, size: size, packages: j.prev.Packages, took: time.Since(j.start)})
				continue
			}
		}
		stale = append(stale, j)
	}
	if len(stale) == 0 {
		return nil
	}

	if !haveAptLists() {
		b.log("apt has no package lists: running apt-get update")
		if _, err := run(ctx, "", "apt-get", "update"); err != nil {
			return fmt.Errorf("%w (the image builder needs Debian's package lists)", err)
		}
		if state, err = aptState(); err != nil {
			return err
		}
	}
	if err := b.resolve(ctx, stale, state); err != nil {
		return err
	}

	var todo []*job
	for _, j := range stale {
		if size, ok := fileSize(j.tar); ok && j.prev != nil && j.prev.sameImage(j.next) {
			// apt's lists changed, the image's packages did not.
			if err := writeInputs(j.tar, j.next); err != nil {
				return err
			}
			done(result{name: j.spec.name, ref: j.spec.ref, path: j.tar, size: size, packages: j.next.Packages, took: time.Since(j.start)})
			continue
		}
		todo = append(todo, j)
	}
	if len(todo) == 0 {
		return nil
	}

	var all []pkg
	for _, j := range todo {
		for _, p := range j.next.Packages {
			if !slices.Contains(all, p) {
				all = append(all, p)
			}
		}
	}
	start := time.Now()
	n, err := fetch(ctx, b.debs, all)
	if err != nil {
		return err
	}
	if n > 0 {
		b.log("downloaded %d packages into %s in %s", n, b.debs, time.Since(start).Round(time.Millisecond))
	}

	for _, j := range todo {
		j.start = time.Now()
		if err := b.buildImage(ctx, j); err != nil {
			return fmt.Errorf("image %s: %w", j.spec.ref, err)
		}
		size, _ := fileSize(j.tar)
		done(result{name: j.spec.name, ref: j.spec.ref, path: j.tar, built: true, size: size, packages: j.next.Packages, took: time.Since(j.start)})
	}
	return nil
}

// resolve fills in each job's packages with two apt calls for all of them.
func (b *builder) resolve(ctx context.Context, jobs []*job, state string) error {
	start := time.Now()
	var roots []string
	for _, j := range jobs {
		for _, r := range j.spec.packages {
			if !slices.Contains(roots, r) {
				roots = append(roots, r)
			}
		}
	}
	g, err := aptDepends(ctx, roots)
	if err != nil {
		return err
	}
	chosen := map[*job][]string{}
	var union []string
	for _, j := range jobs {
		deny := commonDeny()
		names, err := selectPackages(g, j.spec.packages, func(n string) bool {
			return slices.ContainsFunc(deny, func(pat string) bool { ok, _ := path.Match(pat, n); return ok })
		})
		if err != nil {
			return fmt.Errorf("image %s: %w", j.spec.ref, err)
		}
		chosen[j] = names
		for _, n := range names {
			if !slices.Contains(union, n) {
				union = append(union, n)
			}
		}
	}
	located, err := aptLocate(ctx, union)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		j.next.AptState = state
		j.next.Packages = nil
		for _, n := range chosen[j] {
			p, ok := located[n]
			if !ok {
				return fmt.Errorf("image %s: apt-get download --print-uris gave no file for %s", j.spec.ref, n)
			}
			j.next.Packages = append(j.next.Packages, p)
		}
	}
	b.log("resolved %d packages for %d images in %s", len(union), len(jobs), time.Since(start).Round(time.Millisecond))
	return nil
}

func (b *builder) log(format string, args ...any) {
	if b.logf != nil {
		b.logf(format, args...)
	}
}

// buildImage assembles the image's file system, writes it as one layer and
// the image as a docker-archive tarball. The tarball replaces the old one
// only once complete, and the inputs are written last, so an interrupted
// build is simply redone.
func (b *builder) buildImage(ctx context.Context, j *job) error {
	pkgs := j.next.Packages
	entries := make([][]debEntry, len(pkgs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU())
	for i, p := range pkgs {
		g.Go(func() error {
			var err error
			entries[i], err = readDeb(gctx, filepath.Join(b.debs, p.File))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	r := newRootfs()
	for i, p := range pkgs {
		if err := r.addPackage(p.Name, entries[i]); err != nil {
			return err
		}
	}
	if err := b.finishRootfs(ctx, r, j.spec); err != nil {
		return err
	}

	layerFile, err := b.writeLayer(r, j.spec.name)
	if err != nil {
		return err
	}
	defer os.Remove(layerFile)
	layer, err := tarball.LayerFromFile(layerFile)
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	arch, err := goArch(pkgs)
	if err != nil {
		return err
	}
	created := v1.Time{Time: r.epoch.UTC()}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      created,
		Config:       j.spec.config,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return err
	}
	names := make([]string, len(pkgs))
	for i, p := range pkgs {
		names[i] = p.Name + "=" + p.Version
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: "berth tests/imagebuild from Debian packages: " + strings.Join(names, " "),
		},
	})
	if err != nil {
		return err
	}
	tag, err := name.NewTag(j.spec.ref)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(j.tar, 0o644, func(w io.Writer) error { return tarball.Write(tag, img, w) }); err != nil {
		return err
	}
	return writeInputs(j.tar, j.next)
}

// finishRootfs does what the packages' maintainer scripts and the official
// images' Dockerfiles would: accounts, directories, entrypoints, a shell.
func (b *builder) finishRootfs(ctx context.Context, r *rootfs, s imageSpec) error {
	if _, err := r.prune(slices.Concat(commonPrune(), s.prune)); err != nil {
		return err
	}
	if err := r.mergeUsr(); err != nil {
		return err
	}
	if err := b.addBusyboxLinks(ctx, r); err != nil {
		return err
	}
	writeAccounts(r, slices.Concat(baseAccounts(), s.accounts))
	r.writeFile("etc/nsswitch.conf", 0o644, []byte(nsswitch))
	for _, d := range slices.Concat(baseDirs(), s.dirs) {
		r.mkdir(d.path, d.mode, d.uid, d.gid)
	}
	// Debian's /var/run is a link to /run, where services put sockets.
	r.symlink("var/run", "/run")
	for dst, src := range s.files {
		data, err := imageFiles.ReadFile("files/" + src)
		if err != nil {
			return err
		}
		r.writeFile(dst, 0o755, data)
	}
	if s.edit != nil {
		if err := s.edit(r); err != nil {
			return err
		}
	}
	if err := r.addParents(); err != nil {
		return err
	}
	return r.checkLinks()
}

// addBusyboxLinks adds a link for each busybox applet where no package put a
// program, so the image has a shell and the usual tools. The applet list
// comes from the binary itself: it is static, so it runs on the build host.
func (b *builder) addBusyboxLinks(ctx context.Context, r *rootfs) error {
	const bin = "usr/bin/busybox"
	n := r.nodes[bin]
	if n == nil {
		return fmt.Errorf("/%s: missing (every image needs busybox-static)", bin)
	}
	// busybox picks the applet by the name it runs under, so the copy must
	// be called busybox.
	dir, err := os.MkdirTemp(b.out, ".busybox-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	exe := filepath.Join(dir, "busybox")
	if err := os.WriteFile(exe, n.data, 0o755); err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	out, err := run(ctx, "", exe, "--list-full")
	if err != nil {
		return err
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "/") {
			r.symlink(usrMerge(p), "/"+bin)
		}
	}
	return nil
}

// writeLayer writes the file system as a gzipped tar next to the images.
// Gzip's fastest level: the layers are loaded from local disk, where a
// smaller file saves less than the extra seconds cost.
func (b *builder) writeLayer(r *rootfs, name string) (file string, err error) {
	f, err := os.CreateTemp(b.out, "."+name+"-layer-*.tar.gz")
	if err != nil {
		return "", err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return "", err
	}
	if err := r.writeTar(zw); err != nil {
		return "", fmt.Errorf("layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return f.Name(), bw.Flush()
}

// goArch maps the packages' Debian architecture to the image's GOARCH-style
// one.
func goArch(pkgs []pkg) (string, error) {
	archs := map[string]string{
		"amd64": "amd64", "arm64": "arm64", "armhf": "arm", "i386": "386",
		"ppc64el": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
	}
	for _, p := range pkgs {
		if p.Arch != "all" {
			if a, ok := archs[p.Arch]; ok {
				return a, nil
			}
			return "", fmt.Errorf("package %s: architecture %s has no image name", p.Name, p.Arch)
		}
	}
	return "", errors.New("no architecture-specific package in the image")
}

// builderHash hashes the builder's code and the files the spec puts into
// the image.
func builderHash(s imageSpec) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(builderSource, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := builderSource.ReadFile(p)
		fmt.Fprintf(h, "%s %d\n%s", p, len(data), data)
		return err
	})
	if err != nil {
		return "", err
	}
	srcs := make([]string, 0, len(s.files))
	for _, src := range s.files {
		srcs = append(srcs, src)
	}
	slices.Sort(srcs)
	for _, src := range srcs {
		data, err := imageFiles.ReadFile("files/" + src)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "files/%s %d\n%s", src, len(data), data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func inputsPath(tar string) string {
	return strings.TrimSuffix(tar, ".tar") + ".inputs"
}

// readInputs returns the inputs recorded for a tarball, or nil if there are
// none that can be read: the image is then rebuilt.
func readInputs(tar string) *inputs {
	data, err := os.ReadFile(inputsPath(tar))
	if err != nil {
		return nil
	}
	var in inputs
	if json.Unmarshal(data, &in) != nil {
		return nil
	}
	return &in
}

func writeInputs(tar string, in inputs) error {
	data, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(inputsPath(tar), 0o644, append(data, '\n'))
}

func fileSize(p string) (int64, bool) {
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}
