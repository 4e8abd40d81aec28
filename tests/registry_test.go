package tests

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-dev/berth/runtime/image"
	"github.com/berth-dev/berth/tests/registrytest"
)

// These tests pull from Debian's docker-registry (the CNCF distribution
// server, what most private registries run) rather than go-containerregistry's
// in-process registry, which runtime/image's own tests use: the real server
// answers auth, content types and index handling its own way, and that is
// what users pull from.

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the image store sets owners and creates device nodes when it unpacks layers")
	}
}

// needTool returns the path of an external program a test needs. A developer
// without it gets a skip that says what to install; in CI (CI=true) its
// absence means the machine was set up wrong, and the test fails so that a
// missing package cannot turn the suite green by skipping it.
func needTool(t testing.TB, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		msg := fmt.Sprintf("%s is not installed (apt-get install %s): %v", prog, pkg, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// startRegistry runs docker-registry on a free loopback port, with storage
// in a temporary directory and htpasswd basic auth for one user. It returns
// the registry's host:port and the account; the server is killed and its
// files removed when the test ends, whether it passed or not.
func startRegistry(t testing.TB) (host, user, pass string) {
	t.Helper()
	bin := needTool(t, "docker-registry", "docker-registry")
	htpasswd := needTool(t, "htpasswd", "apache2-utils")
	// Registered before the server starts, so removed after it is killed
	// (cleanups run last-in first-out).
	dir := t.TempDir()
	r, err := registrytest.Start(bin, htpasswd, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("docker-registry log (end):\n%s", r.Log(4000))
		}
	})
	return r.Host, r.User, r.Pass
}

// keychain answers every registry with one account, as a user's
// ~/.docker/config.json would for this registry; an empty user is anonymous.
type keychain struct{ user, pass string }

func (k keychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	if k.user == "" {
		return authn.Anonymous, nil
	}
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

func pushImage(t testing.TB, host, user, pass, repo string, img v1.Image) string {
	t.Helper()
	ref := host + "/" + repo
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref
}

func newStore(t testing.TB) *image.Store {
	t.Helper()
	s, err := image.Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unpackedLayers lists the layer directories of a store, as diffID hex.
func unpackedLayers(t testing.TB, s *image.Store) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Root(), "layers", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}

func diffIDs(t testing.TB, img v1.Image) []string {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range cfg.RootFS.DiffIDs {
		ids = append(ids, d.Hex)
	}
	return ids
}

// checkUnpacked compares a layer's regular files with what the store
// unpacked for it.
func checkUnpacked(t testing.TB, l v1.Layer, dir string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		files++
		fi, err := os.Lstat(filepath.Join(dir, hdr.Name))
		if err != nil {
			t.Errorf("%s of the layer was not unpacked: %v", hdr.Name, err)
			continue
		}
		if fi.Size() != hdr.Size {
			t.Errorf("%s: %d bytes unpacked, the layer has %d", hdr.Name, fi.Size(), hdr.Size)
		}
	}
	if files == 0 {
		t.Fatal("the test layer has no file to compare")
	}
}

func TestRegistryCredentials(t *testing.T) {
	needRoot(t)
	host, user, pass := startRegistry(t)
	img, err := random.Image(64*1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := pushImage(t, host, user, pass, "private/app:1", img)
	s := newStore(t)
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		keys keychain
	}{
		{"wrong password", keychain{user, "not-" + pass}},
		{"unknown user", keychain{"mallory", pass}},
		{"anonymous", keychain{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Pull(ctx, ref, image.PullOptions{Keychain: tc.keys})
			if err == nil {
				t.Fatal("pulled without the right credentials")
			}
			// What the user needs to see: which image, and that the
			// registry refused the credentials (not a network or
			// content problem).
			msg := err.Error()
			if !strings.Contains(msg, ref) || !strings.Contains(msg, "UNAUTHORIZED") {
				t.Errorf("unclear error, want the reference and UNAUTHORIZED: %v", err)
			}
			if _, err := s.Get(ctx, ref); !errdefs.IsNotFound(err) {
				t.Errorf("refused pull left the image in the index: %v", err)
			}
			if n := unpackedLayers(t, s); len(n) != 0 {
				t.Errorf("refused pull unpacked %d layers", len(n))
			}
		})
	}

	got, err := s.Pull(ctx, ref, image.PullOptions{Keychain: keychain{user, pass}})
	if err != nil {
		t.Fatalf("pull with the right credentials: %v", err)
	}
	if want, _ := img.ConfigName(); got.ID() != want.String() {
		t.Errorf("image ID %s, want %s", got.ID(), want)
	}
	if got.Ref != ref {
		t.Errorf("stored as %s, want %s", got.Ref, ref)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Layers) != len(layers) {
		t.Fatalf("%d layers stored, the image has %d", len(got.Layers), len(layers))
	}
	for i, l := range layers {
		checkUnpacked(t, l, got.Layers[i])
	}
}

func TestRegistrySharedLayerUnpackedOnce(t *testing.T) {
	needRoot(t)
	host, user, pass := startRegistry(t)
	base, err := random.Image(256*1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	want := map[string]bool{}
	for _, id := range diffIDs(t, base) {
		want[id] = true
	}
	for i := range 2 {
		top, err := random.Layer(64*1024, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(base, top)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range diffIDs(t, img) {
			want[id] = true
		}
		refs = append(refs, pushImage(t, host, user, pass, fmt.Sprintf("shared/app%d:1", i), img))
	}
	if len(want) != 4 {
		t.Fatalf("test images have %d distinct layers, want 4", len(want))
	}

	// At the same time, the harder case: both pulls want the base layers
	// while neither has them yet.
	s := newStore(t)
	images := make([]*image.Image, len(refs))
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Go(func() {
			images[i], errs[i] = s.Pull(context.Background(), ref, image.PullOptions{Keychain: keychain{user, pass}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pulling %s: %v", refs[i], err)
		}
	}
	got := unpackedLayers(t, s)
	slices.Sort(got)
	if len(got) != len(want) {
		t.Errorf("%d layer directories, want %d (2 shared + 1 per image): %v", len(got), len(want), got)
	}
	for _, id := range got {
		if !want[id] {
			t.Errorf("unexpected layer directory %s", id)
		}
	}
	for i := range 2 {
		if images[0].Layers[i] != images[1].Layers[i] {
			t.Errorf("base layer %d: %s and %s, want one directory", i, images[0].Layers[i], images[1].Layers[i])
		}
	}
}

func TestRegistryMultiPlatform(t *testing.T) {
	needRoot(t)
	host, user, pass := startRegistry(t)
	arches := []string{"amd64", "arm64", "s390x"}
	if !slices.Contains(arches, runtime.GOARCH) {
		arches = append(arches, runtime.GOARCH)
	}
	var idx v1.ImageIndex = empty.Index
	byArch := map[string]v1.Image{}
	for _, arch := range arches {
		img, err := random.Image(32*1024, 1)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfg = cfg.DeepCopy()
		cfg.OS, cfg.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			t.Fatal(err)
		}
		byArch[arch] = img
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	ref := host + "/multi/app:1"
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx, remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
		t.Fatalf("pushing the index: %v", err)
	}
	keys := keychain{user, pass}

	for _, tc := range []struct{ platform, arch string }{
		{"linux/arm64", "arm64"},
		{"linux/s390x", "s390x"},
		{"", runtime.GOARCH}, // the host's
	} {
		t.Run("platform="+tc.platform, func(t *testing.T) {
			s := newStore(t)
			got, err := s.Pull(context.Background(), ref, image.PullOptions{Platform: tc.platform, Keychain: keys})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := byArch[tc.arch].ConfigName()
			if got.Config.Architecture != tc.arch || got.ID() != want.String() {
				t.Errorf("pulled %s (%s), want %s (%s)", got.Config.Architecture, got.ID(), tc.arch, want)
			}
			// Only the chosen platform's layers are fetched.
			if layers, want := unpackedLayers(t, s), diffIDs(t, byArch[tc.arch]); !slices.Equal(layers, want) {
				t.Errorf("unpacked %v, want only %v", layers, want)
			}
		})
	}

	t.Run("platform=linux/ppc64le", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Pull(context.Background(), ref, image.PullOptions{Platform: "linux/ppc64le", Keychain: keys})
		if err == nil {
			t.Fatal("pulled a platform the index does not have")
		}
		if !strings.Contains(err.Error(), "ppc64le") {
			t.Errorf("the error does not name the platform asked for: %v", err)
		}
	})
}
