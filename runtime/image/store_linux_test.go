package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// testRegistry is go-containerregistry's in-process registry behind a
// middleware that tests use to inject faults.
type testRegistry struct {
	*httptest.Server
	inner      http.Handler
	mu         sync.Mutex
	middleware func(w http.ResponseWriter, r *http.Request, next http.Handler) bool // true: handled
	blobGets   map[string]int
}

func newRegistry(t *testing.T) *testRegistry {
	t.Helper()
	reg := &testRegistry{blobGets: map[string]int{}}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	reg.inner = inner
	reg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			reg.mu.Lock()
			reg.blobGets[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
			reg.mu.Unlock()
		}
		reg.mu.Lock()
		mw := reg.middleware
		reg.mu.Unlock()
		if mw != nil && mw(w, r, inner) {
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.Close)
	return reg
}

func (r *testRegistry) host() string { return strings.TrimPrefix(r.URL, "http://") }

func (r *testRegistry) setMiddleware(mw func(w http.ResponseWriter, r *http.Request, next http.Handler) bool) {
	r.mu.Lock()
	r.middleware = mw
	r.mu.Unlock()
}

func (r *testRegistry) gets(digest v1.Hash) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets[digest.String()]
}

func (r *testRegistry) push(t *testing.T, repo string, img v1.Image) string {
	t.Helper()
	ref := r.host() + "/" + repo
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

func newStore(t *testing.T) *Store {
	t.Helper()
	needRoot(t)
	s, err := Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomImage(t *testing.T, layers int) v1.Image {
	t.Helper()
	img, err := random.Image(64*1024, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func diffIDs(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.RootFS.DiffIDs
}

// assertClean checks the store holds no work in progress.
func assertClean(t *testing.T, s *Store) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(s.Root(), "tmp"))
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("work left in tmp/: %s", e.Name())
		}
	}
}

func TestPullAndGet(t *testing.T) {
	s, reg := newStore(t), newRegistry(t)
	img := randomImage(t, 3)
	ref := reg.push(t, "team/app:1", img)

	got, err := s.Pull(context.Background(), ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := img.ConfigName(); got.ID() != want.String() {
		t.Errorf("ID %s, want %s", got.ID(), want)
	}
	if got.Ref != reg.host()+"/team/app:1" || len(got.Layers) != 3 {
		t.Errorf("ref %s, %d layers", got.Ref, len(got.Layers))
	}
	for i, d := range diffIDs(t, img) {
		if got.Layers[i] != s.layerPath(d) {
			t.Errorf("layer %d at %s", i, got.Layers[i])
		}
	}
	again, err := s.Get(context.Background(), ref)
	if err != nil || again.ID() != got.ID() {
		t.Fatalf("Get: %v", err)
	}
	if _, err := s.Get(context.Background(), got.ID()[:19]); err != nil {
		t.Errorf("Get by short ID: %v", err)
	}
	if _, err := s.Get(context.Background(), "nothere:1"); !errdefs.IsNotFound(err) {
		t.Errorf("Get of a missing image: %v", err)
	}
	// A second pull fetches no layer again.
	m, _ := img.Manifest()
	before := reg.gets(m.Layers[0].Digest)
	if _, err := s.Pull(context.Background(), ref, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if reg.gets(m.Layers[0].Digest) != before {
		t.Error("a stored layer was downloaded again")
	}
	assertClean(t, s)
}

func TestPullSharedLayersOnce(t *testing.T) {
	s, reg := newStore(t), newRegistry(t)
	base := randomImage(t, 2)
	var refs []string
	var images []v1.Image
	for i := range 2 {
		top, err := random.Layer(32*1024, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(base, top)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, img)
		refs = append(refs, reg.push(t, fmt.Sprintf("shared/app%d:1", i), img))
	}
	// Both at once: the shared layers are fetched once.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, ref := range refs {
		wg.Go(func() { _, errs[i] = s.Pull(context.Background(), ref, PullOptions{}) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	m, _ := base.Manifest()
	for _, l := range m.Layers {
		if n := reg.gets(l.Digest); n != 1 {
			t.Errorf("shared layer %s downloaded %d times", l.Digest.Hex[:12], n)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(s.Root(), "layers", "sha256"))
	dirs := 0
	for _, e := range entries {
		if e.IsDir() {
			dirs++
		}
	}
	if dirs != 4 {
		t.Errorf("%d unpacked layers, want 4 (2 shared + 2 own)", dirs)
	}

	// Removing one image keeps what the other uses.
	if _, err := s.Remove(context.Background(), refs[0]); err != nil {
		t.Fatal(err)
	}
	kept, err := s.Get(context.Background(), refs[1])
	if err != nil {
		t.Fatalf("the other image broke: %v", err)
	}
	for _, l := range kept.Layers {
		if _, err := os.Stat(l); err != nil {
			t.Errorf("layer of the remaining image removed: %v", err)
		}
	}
	entries, _ = os.ReadDir(filepath.Join(s.Root(), "layers", "sha256"))
	dirs = 0
	for _, e := range entries {
		if e.IsDir() {
			dirs++
		}
	}
	if dirs != 3 {
		t.Errorf("%d unpacked layers after rm, want 3", dirs)
	}
}

func TestPullRetriesAndFaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   func(calls *atomic.Int32) func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
		wantErr string
	}{
		{"429 then success", func(calls *atomic.Int32) func(http.ResponseWriter, *http.Request, http.Handler) bool {
			return func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if strings.Contains(r.URL.Path, "/blobs/") && calls.Add(1) <= 2 {
					w.Header().Set("Retry-After", "0")
					http.Error(w, "slow down", http.StatusTooManyRequests)
					return true
				}
				return false
			}
		}, ""},
		{"503 then success", func(calls *atomic.Int32) func(http.ResponseWriter, *http.Request, http.Handler) bool {
			return func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if strings.Contains(r.URL.Path, "/manifests/") && calls.Add(1) <= 1 {
					http.Error(w, "busy", http.StatusServiceUnavailable)
					return true
				}
				return false
			}
		}, ""},
		{"connection cut mid-blob", func(calls *atomic.Int32) func(http.ResponseWriter, *http.Request, http.Handler) bool {
			return func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") || calls.Add(1) > 1 {
					return false
				}
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				body := rec.Body.Bytes()
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				w.WriteHeader(rec.Code)
				w.Write(body[:len(body)/2])
				w.(http.Flusher).Flush()
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return true
			}
		}, ""},
		{"corrupted blob", func(calls *atomic.Int32) func(http.ResponseWriter, *http.Request, http.Handler) bool {
			return func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
					return false
				}
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				body := rec.Body.Bytes()
				if len(body) > 100 && !strings.HasPrefix(string(body), "{") {
					body[len(body)/2] ^= 0xff
				}
				w.WriteHeader(rec.Code)
				w.Write(body)
				return true
			}
		}, "digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, reg := newStore(t), newRegistry(t)
			img := randomImage(t, 2)
			ref := reg.push(t, "faults/app:1", img)
			var calls atomic.Int32
			reg.setMiddleware(tc.fault(&calls))
			_, err := s.Pull(context.Background(), ref, PullOptions{})
			if tc.wantErr == "" && err != nil {
				t.Fatalf("pull failed: %v", err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one about %q", err, tc.wantErr)
				}
				// Nothing of the bad blob was committed, and a clean pull
				// then succeeds.
				for _, d := range diffIDs(t, img) {
					if s.hasLayer(d) {
						m, _ := img.Manifest()
						_ = m
					}
				}
				assertClean(t, s)
				reg.setMiddleware(nil)
				if _, err := s.Pull(context.Background(), ref, PullOptions{}); err != nil {
					t.Fatalf("pull after the fault: %v", err)
				}
			}
			assertClean(t, s)
		})
	}
}

func TestPullInterrupted(t *testing.T) {
	s, reg := newStore(t), newRegistry(t)
	img := randomImage(t, 2)
	ref := reg.push(t, "interrupted/app:1", img)
	ctx, cancel := context.WithCancel(context.Background())
	reg.setMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
			cancel() // the user presses Ctrl-C while the first blob downloads
		}
		return false
	})
	if _, err := s.Pull(ctx, ref, PullOptions{}); err == nil {
		t.Fatal("the interrupted pull succeeded")
	}
	for _, d := range diffIDs(t, img) {
		if s.hasLayer(d) {
			t.Errorf("layer %s committed by an interrupted pull", d.Hex[:12])
		}
	}
	if _, err := s.Get(context.Background(), ref); !errdefs.IsNotFound(err) {
		t.Errorf("the interrupted image is in the index: %v", err)
	}
	reg.setMiddleware(nil)
	// The next command cleans and the pull succeeds.
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	assertClean(t, s2)
	if _, err := s2.Pull(context.Background(), ref, PullOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestPullPlatform(t *testing.T) {
	s, reg := newStore(t), newRegistry(t)
	var idx v1.ImageIndex = empty.Index
	for _, arch := range []string{"amd64", "arm64", "s390x"} {
		img := randomImage(t, 1)
		cfg, _ := img.ConfigFile()
		cfg = cfg.DeepCopy()
		cfg.OS, cfg.Architecture = "linux", arch
		img, err := mutate.ConfigFile(img, cfg)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	tag, _ := name.NewTag(reg.host()+"/multi/app:1", name.Insecure)
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	got, err := s.Pull(context.Background(), tag.String(), PullOptions{Platform: "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Config.Architecture != "arm64" {
		t.Errorf("picked %s, want arm64", got.Config.Architecture)
	}
	got, err = s.Pull(context.Background(), tag.String(), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Config.Architecture != runtime.GOARCH {
		t.Errorf("picked %s, want the host's %s", got.Config.Architecture, runtime.GOARCH)
	}
}

// Token auth as Docker Hub does it: a 401 names a token service; the token
// is fetched with the user's credentials and then sent as a bearer.
func TestPullTokenAuthAndRedirect(t *testing.T) {
	s, reg := newStore(t), newRegistry(t)
	img := randomImage(t, 1)
	ref := reg.push(t, "private/app:1", img)

	// Blobs are served from another host, as registries do with storage
	// redirects: it must never see the user's credentials.
	var leaked atomic.Int32
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		reg.inner.ServeHTTP(w, r)
	}))
	defer storage.Close()
	// The token service answers on the registry's host: go-containerregistry
	// refuses a realm on another private address (a guard against a
	// registry sending credentials to internal services).
	const token = "opaque-token"
	reg.setMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.URL.Path == "/token" {
			u, p, ok := r.BasicAuth()
			if !ok || u != "alice" || p != "s3cret" {
				http.Error(w, "bad credentials", http.StatusUnauthorized)
				return true
			}
			fmt.Fprintf(w, `{"token": %q}`, token)
			return true
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="test",scope="repository:private/app:pull"`, reg.URL+"/token"))
			http.Error(w, "auth required", http.StatusUnauthorized)
			return true
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			r2 := r.Clone(r.Context())
			r2.Header.Del("Authorization")
			http.Redirect(w, r, storage.URL+r.URL.Path, http.StatusTemporaryRedirect)
			return true
		}
		return false
	})
	// Wrong credentials: a clear failure.
	if _, err := s.Pull(context.Background(), ref, PullOptions{Keychain: staticKeychain{"alice", "wrong"}}); err == nil {
		t.Fatal("pulled with wrong credentials")
	}
	if _, err := s.Pull(context.Background(), ref, PullOptions{Keychain: staticKeychain{"alice", "s3cret"}}); err != nil {
		t.Fatal(err)
	}
	if leaked.Load() != 0 {
		t.Errorf("credentials sent to the redirect target %d times", leaked.Load())
	}
}

type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: k.user, Password: k.pass}), nil
}

func TestLoadDockerArchiveAndSave(t *testing.T) {
	s := newStore(t)
	a, b := randomImage(t, 2), randomImage(t, 1)
	refs := map[name.Reference]v1.Image{}
	for _, r := range []struct {
		ref string
		img v1.Image
	}{{"app:1", a}, {"app:latest", a}, {"registry.example.com/team/tool:2", b}} {
		tag, _ := name.NewTag(r.ref)
		refs[tag] = r.img
	}
	var archive bytes.Buffer
	if err := tarball.MultiRefWrite(refs, &archive); err != nil {
		t.Fatal(err)
	}
	loaded, err := s.Load(context.Background(), bytes.NewReader(archive.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(loaded, " "); !strings.Contains(got, "docker.io/library/app:1") || !strings.Contains(got, "docker.io/library/app:latest") || !strings.Contains(got, "registry.example.com/team/tool:2") {
		t.Errorf("loaded %s", got)
	}
	aID, _ := a.ConfigName()
	for _, ref := range []string{"app:1", "app", "docker.io/library/app:latest"} {
		img, err := s.Get(context.Background(), ref)
		if err != nil || img.ID() != aID.String() {
			t.Errorf("Get(%s): %v", ref, err)
		}
	}

	// save then load into another store: same images.
	var saved bytes.Buffer
	if err := s.Save(context.Background(), []string{"app:1", "registry.example.com/team/tool:2"}, &saved); err != nil {
		t.Fatal(err)
	}
	s2 := newStore(t)
	if _, err := s2.Load(context.Background(), &saved, nil); err != nil {
		t.Fatal(err)
	}
	img, err := s2.Get(context.Background(), "registry.example.com/team/tool:2")
	bID, _ := b.ConfigName()
	if err != nil || img.ID() != bID.String() {
		t.Errorf("round trip: %v", err)
	}
	assertClean(t, s)
}

func TestLoadOCILayout(t *testing.T) {
	s := newStore(t)
	img := randomImage(t, 2)
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"io.containerd.image.name": "docker.io/library/oci:1"})); err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	loaded, err := s.Load(context.Background(), &archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0] != "docker.io/library/oci:1" {
		t.Errorf("loaded %v", loaded)
	}
	if _, err := s.Get(context.Background(), "oci:1"); err != nil {
		t.Error(err)
	}
}

func TestLoadRejectsGarbage(t *testing.T) {
	s := newStore(t)
	for name, data := range map[string][]byte{
		"not a tar":   []byte("hello"),
		"empty tar":   layerTar(t),
		"no manifest": layerTar(t, entry{name: "x", body: "y"}),
	} {
		if _, err := s.Load(context.Background(), bytes.NewReader(data), nil); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	assertClean(t, s)
}

// Open cleans what a crash left in tmp/, but never work another process
// holds a lock on.
func TestOpenCleansOnlyAbandonedWork(t *testing.T) {
	s := newStore(t)
	busy, done, err := s.tempDir()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	abandoned := filepath.Join(s.Root(), "tmp", "abandoned")
	if err := os.MkdirAll(filepath.Join(abandoned, "half-a-layer"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Root(), "tmp", "stale.lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 { // twice: a second Open must not break the first's view
		if _, err := Open(s.Root()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(busy); err != nil {
		t.Errorf("work in progress removed: %v", err)
	}
	if _, err := os.Stat(busy + ".lock"); err != nil {
		t.Errorf("a held lock file removed: %v", err)
	}
	if _, err := os.Stat(abandoned); !os.IsNotExist(err) {
		t.Errorf("abandoned work kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "tmp", "stale.lock")); !os.IsNotExist(err) {
		t.Errorf("stale lock kept: %v", err)
	}
}

// A full disk fails the pull with the system's error and commits nothing:
// no layer, no index entry, no work left behind.
func TestPullDiskFull(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t)
	img, err := random.Image(300*1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.push(t, "big/app:1", img)
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=512k,mode=0700"); err != nil {
		t.Fatalf("mounting a small tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	s, err := Open(filepath.Join(mnt, "images"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Pull(context.Background(), ref, PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("error %v, want no space left on device", err)
	}
	if _, err := s.Get(context.Background(), ref); !errdefs.IsNotFound(err) {
		t.Errorf("the image is in the index: %v", err)
	}
	for _, d := range diffIDs(t, img) {
		if s.hasLayer(d) {
			t.Errorf("layer %s committed", d.Hex[:12])
		}
	}
	assertClean(t, s)
	// With room again, the same store works.
	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_REMOUNT, "size=16m,mode=0700"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(context.Background(), ref, PullOptions{}); err != nil {
		t.Fatalf("pull once there is room: %v", err)
	}
}
