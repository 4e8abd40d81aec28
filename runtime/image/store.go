package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/flock"
)

// Store is the image store under <root>: blobs by digest, layers unpacked by
// diffID, and an index from references to images.
//
//	blobs/sha256/<hex>     manifests, configs, layer blobs as obtained
//	layers/sha256/<hex>/   unpacked layers, the lower directories of overlayfs
//	index.json             reference -> manifest and config digests
//	tmp/                   work in progress, removed on open
//
// Every write lands under tmp/ and is renamed into place once complete and
// verified, so a crash at any point leaves a store that works: what was not
// renamed is garbage, removed by the next Open.
type Store struct {
	root string

	mu       sync.Mutex
	inflight map[string]*flight // layer fetches under way in this process, by diffID
}

type flight struct {
	done chan struct{}
	err  error
}

// Record is what the index says of a reference.
type Record struct {
	Manifest v1.Hash   `json:"manifest"`
	Config   v1.Hash   `json:"config"`
	Size     int64     `json:"size"` // bytes of the layers, unpacked
	Pulled   time.Time `json:"pulled"`
}

// Image is an image of the store, ready for the runtime.
type Image struct {
	Ref    string
	Record Record
	Config v1.ConfigFile
	// Layers are the unpacked layer directories, bottom first.
	Layers []string
}

// ID is the image ID docker shows: the config digest.
func (i *Image) ID() string { return i.Record.Config.String() }

// Open opens (creating it if needed) the store under root.
func Open(root string) (*Store, error) {
	s := &Store{root: root, inflight: map[string]*flight{}}
	for _, d := range []string{"", "blobs/sha256", "layers/sha256", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("opening image store: %w", err)
		}
	}
	// What a crashed or interrupted command left half-written. Another
	// command may be writing there right now: only entries nobody holds a
	// lock on are removed (see tempDir).
	entries, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		return nil, fmt.Errorf("opening image store: %w", err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".lock") {
			continue
		}
		p := filepath.Join(root, "tmp", e.Name())
		if unlock, ok := flock.TryLock(p + ".lock"); ok {
			os.RemoveAll(p)
			os.Remove(p + ".lock")
			unlock()
		}
	}
	// Lock files whose work directory is gone, and that nobody holds.
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".lock"); ok {
			p := filepath.Join(root, "tmp", name)
			if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
				if unlock, ok := flock.TryLock(p + ".lock"); ok {
					os.Remove(p + ".lock")
					unlock()
				}
			}
		}
	}
	return s, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) blobPath(h v1.Hash) string {
	return filepath.Join(s.root, "blobs", h.Algorithm, h.Hex)
}

func (s *Store) layerPath(diffID v1.Hash) string {
	return filepath.Join(s.root, "layers", diffID.Algorithm, diffID.Hex)
}

// tempDir makes a work directory under tmp/, locked for as long as the
// caller works in it, so that Open in another process leaves it alone.
func (s *Store) tempDir() (string, func(), error) {
	b := make([]byte, 8)
	rand.Read(b)
	p := filepath.Join(s.root, "tmp", hex.EncodeToString(b))
	unlock, err := flock.Lock(context.Background(), p+".lock")
	if err != nil {
		return "", nil, err
	}
	if err := os.Mkdir(p, 0o700); err != nil {
		unlock()
		return "", nil, fmt.Errorf("creating work directory: %w", err)
	}
	return p, func() {
		os.RemoveAll(p)
		os.Remove(p + ".lock")
		unlock()
	}, nil
}

// writeBlob stores r under digest want, verifying it; r is read to EOF.
func (s *Store) writeBlob(r io.Reader, want v1.Hash) error {
	dst := s.blobPath(want)
	if _, err := os.Stat(dst); err == nil {
		_, err := io.Copy(io.Discard, r)
		return err
	}
	dir, done, err := s.tempDir()
	if err != nil {
		return err
	}
	defer done()
	tmp := filepath.Join(dir, "blob")
	if _, err := writeVerified(tmp, r, want); err != nil {
		return err
	}
	return commit(tmp, dst)
}

// writeVerified writes r to path and checks its digest.
func writeVerified(path string, r io.Reader, want v1.Hash) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("writing blob: %w", err)
	}
	h := newHasher(want)
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("writing blob %s: %w", want, err)
	}
	if got := h.sum(); got != want {
		return n, fmt.Errorf("blob %s: %w: its content has digest %s", want, errDigestMismatch, got)
	}
	return n, nil
}

var errDigestMismatch = errors.New("digest mismatch")

// commit renames a finished file or directory into place. Losing the race
// to an identical one is fine: content-addressed entries are equal.
func commit(tmp, dst string) error {
	err := os.Rename(tmp, dst)
	if err == nil || errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return atomicfile.SyncDir(filepath.Dir(dst))
	}
	return fmt.Errorf("committing %s: %w", filepath.Base(dst), err)
}

type hasher struct {
	hash.Hash
	alg string
}

func newHasher(h v1.Hash) *hasher { return &hasher{Hash: sha256.New(), alg: h.Algorithm} }

func (h *hasher) sum() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// hasLayer reports whether a layer is unpacked.
func (s *Store) hasLayer(diffID v1.Hash) bool {
	_, err := os.Stat(s.layerPath(diffID))
	return err == nil
}

// ensureLayer makes the layer with diffID available, calling fetch to store
// it (with storeLayer) when it is not, once however many images and
// processes want it at the same time.
func (s *Store) ensureLayer(ctx context.Context, diffID v1.Hash, fetch func(ctx context.Context) error) error {
	if s.hasLayer(diffID) {
		return nil
	}
	s.mu.Lock()
	if f, ok := s.inflight[diffID.String()]; ok {
		s.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	s.inflight[diffID.String()] = f
	s.mu.Unlock()

	f.err = s.fetchLayer(ctx, diffID, fetch)
	close(f.done)
	s.mu.Lock()
	delete(s.inflight, diffID.String())
	s.mu.Unlock()
	return f.err
}

func (s *Store) fetchLayer(ctx context.Context, diffID v1.Hash, fetch func(ctx context.Context) error) error {
	// Another berth process may be fetching the same layer.
	unlock, err := flock.Lock(ctx, filepath.Join(s.root, "layers", diffID.Algorithm, "."+diffID.Hex+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if s.hasLayer(diffID) {
		return nil
	}
	return fetch(ctx)
}

// storeLayer reads a layer's blob from r once, as it arrives: it keeps the
// blob under the digest blob (unless that blob is already stored) and, in
// the same pass, decompresses it (gzip, zstd or none) and unpacks it. Both
// digests are checked over the whole stream, and the filesystem synced,
// before the blob and the layer directory are renamed into place; a failure
// or a crash before that leaves nothing behind but the work directory,
// which Open removes.
//
// verified says that r checks the blob's digest itself, as the registry
// client's reader does (it fails at the end of a blob whose digest is
// wrong): hashing it twice would only cost time.
func (s *Store) storeLayer(ctx context.Context, r io.Reader, blob, diffID v1.Hash, verified bool) error {
	dir, done, err := s.tempDir()
	if err != nil {
		return err
	}
	defer done()
	root := filepath.Join(dir, "layer")
	if err := os.Mkdir(root, 0o755); err != nil {
		return fmt.Errorf("creating work directory: %w", err)
	}
	var bw *blobWriter
	if _, err := os.Stat(s.blobPath(blob)); err != nil {
		f, err := os.OpenFile(filepath.Join(dir, "blob"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("writing blob: %w", err)
		}
		defer f.Close()
		bw = &blobWriter{f: f}
		if blob != diffID && !verified {
			// A compressed blob; an uncompressed one is the diffID,
			// checked below.
			bw.h = newHasher(blob)
		}
		r = io.TeeReader(r, bw)
	}
	br := bufio.NewReaderSize(r, 1<<20)
	dr, closeD, err := decompress(br)
	if err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	defer closeD()
	h := newHasher(diffID)
	xerr := Extract(ctx, io.TeeReader(dr, h), root)
	if xerr != nil && ctx.Err() != nil {
		return xerr
	}
	// What follows the compressed stream still belongs to the blob; and
	// when the content is broken, the blob's digest says why first.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return fmt.Errorf("reading layer %s: %w", blob, err)
	}
	if bw != nil {
		if bw.err != nil {
			return fmt.Errorf("writing blob %s: %w", blob, bw.err)
		}
		if bw.h != nil {
			if got := bw.h.sum(); got != blob {
				return fmt.Errorf("blob %s: %w: its content has digest %s", blob, errDigestMismatch, got)
			}
		}
	}
	if xerr != nil {
		return fmt.Errorf("unpacking layer %s: %w", diffID, xerr)
	}
	if got := h.sum(); got != diffID {
		return fmt.Errorf("layer %s: %w: its content has diffID %s", diffID, errDigestMismatch, got)
	}
	if err := syncTree(root); err != nil {
		return err
	}
	if bw != nil {
		if err := commit(bw.f.Name(), s.blobPath(blob)); err != nil {
			return err
		}
	}
	return commit(root, s.layerPath(diffID))
}

// decompress recognises gzip and zstd by their magic numbers; anything else
// is taken as a plain tar.
func decompress(r *bufio.Reader) (io.Reader, func(), error) {
	magic, _ := r.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("reading gzip: %w", err)
		}
		return z, func() { z.Close() }, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("reading zstd: %w", err)
		}
		return z, z.Close, nil
	default:
		return r, func() {}, nil
	}
}

// blobWriter keeps a layer's blob while it is unpacked. A write error is
// kept for later, not returned to the reader: the unpacking goes on to its
// own end, and the disk's error is then what the caller hears.
type blobWriter struct {
	f   *os.File
	h   *hasher // nil when the blob's digest is checked elsewhere
	err error
}

func (w *blobWriter) Write(p []byte) (int, error) {
	if w.err == nil {
		_, w.err = w.f.Write(p)
	}
	if w.h != nil {
		w.h.Write(p)
	}
	return len(p), nil
}

// index is the reference index, index.json.
type index struct {
	Images map[string]Record `json:"images"`
}

func (s *Store) readIndex() (*index, error) {
	idx := &index{Images: map[string]Record{}}
	b, err := os.ReadFile(filepath.Join(s.root, "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return idx, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading image index: %w", err)
	}
	if err := json.Unmarshal(b, idx); err != nil {
		return nil, fmt.Errorf("reading image index %s: %w", filepath.Join(s.root, "index.json"), err)
	}
	if idx.Images == nil {
		idx.Images = map[string]Record{}
	}
	return idx, nil
}

// updateIndex changes the index under the store's lock and writes it back
// atomically.
func (s *Store) updateIndex(ctx context.Context, change func(*index) error) error {
	unlock, err := flock.Lock(ctx, filepath.Join(s.root, "index.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := change(idx); err != nil {
		return err
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(s.root, "index.json"), 0o600, b)
}

// Get returns the image ref names, with its config and layer directories.
func (s *Store) Get(ctx context.Context, ref string) (*Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	key, err := idx.resolve(ref)
	if err != nil {
		return nil, err
	}
	return s.image(key, idx.Images[key])
}

// resolve finds the index key of a reference, or of an image ID (the
// config digest, or a prefix of at least 4 hex digits of it, as docker).
func (idx *index) resolve(ref string) (string, error) {
	if _, ok := idx.Images[ref]; ok {
		return ref, nil
	}
	if key, err := Normalize(ref); err == nil {
		if _, ok := idx.Images[key]; ok {
			return key, nil
		}
	}
	if id := strings.TrimPrefix(ref, "sha256:"); len(id) >= 4 && strings.Trim(id, "0123456789abcdef") == "" {
		var match string
		for _, key := range slices.Sorted(maps.Keys(idx.Images)) {
			if strings.HasPrefix(idx.Images[key].Config.Hex, id) {
				if match != "" && idx.Images[match].Config != idx.Images[key].Config {
					return "", fmt.Errorf("image ID %s: %w: it names several images", ref, errdefs.ErrInvalidArgument)
				}
				if match == "" {
					match = key
				}
			}
		}
		if match != "" {
			return match, nil
		}
	}
	return "", fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
}

func (s *Store) image(key string, rec Record) (*Image, error) {
	b, err := os.ReadFile(s.blobPath(rec.Config))
	if err != nil {
		return nil, fmt.Errorf("image %s: reading config: %w", key, err)
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("image %s: reading config: %w", key, err)
	}
	img := &Image{Ref: key, Record: rec, Config: cfg}
	for _, d := range cfg.RootFS.DiffIDs {
		p := s.layerPath(d)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("image %s: layer %s is missing: pull or load the image again", key, d)
		}
		img.Layers = append(img.Layers, p)
	}
	return img, nil
}

// List returns every image of the store, by reference.
func (s *Store) List(ctx context.Context) ([]*Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, key := range slices.Sorted(maps.Keys(idx.Images)) {
		img, err := s.image(key, idx.Images[key])
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// Remove removes references from the index, then every blob and layer no
// remaining image uses. It returns what it removed.
func (s *Store) Remove(ctx context.Context, refs ...string) (removed []string, err error) {
	err = s.updateIndex(ctx, func(idx *index) error {
		for _, ref := range refs {
			key, err := idx.resolve(ref)
			if err != nil {
				return err
			}
			delete(idx.Images, key)
			removed = append(removed, key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	_, err = s.Prune(ctx)
	return removed, err
}

// Prune removes the blobs and unpacked layers that no image of the index
// uses, and returns the bytes freed.
func (s *Store) Prune(ctx context.Context) (int64, error) {
	unlock, err := flock.Lock(ctx, filepath.Join(s.root, "index.lock"))
	if err != nil {
		return 0, err
	}
	defer unlock()
	idx, err := s.readIndex()
	if err != nil {
		return 0, err
	}
	keepBlobs, keepLayers := map[string]bool{}, map[string]bool{}
	for _, rec := range idx.Images {
		keepBlobs[rec.Manifest.Hex], keepBlobs[rec.Config.Hex] = true, true
		m, err := s.manifest(rec.Manifest)
		if err != nil {
			return 0, err
		}
		for _, l := range m.Layers {
			keepBlobs[l.Digest.Hex] = true
		}
		cfg, err := s.config(rec.Config)
		if err != nil {
			return 0, err
		}
		for _, d := range cfg.RootFS.DiffIDs {
			keepLayers[d.Hex] = true
		}
	}
	var freed int64
	for dir, keep := range map[string]map[string]bool{"blobs/sha256": keepBlobs, "layers/sha256": keepLayers} {
		entries, err := os.ReadDir(filepath.Join(s.root, dir))
		if err != nil {
			return freed, err
		}
		for _, e := range entries {
			if keep[e.Name()] || e.Name()[0] == '.' {
				continue
			}
			p := filepath.Join(s.root, dir, e.Name())
			freed += diskUsage(p)
			if err := os.RemoveAll(p); err != nil {
				return freed, fmt.Errorf("pruning %s: %w", e.Name(), err)
			}
		}
	}
	return freed, nil
}

func (s *Store) manifest(h v1.Hash) (*v1.Manifest, error) {
	f, err := os.Open(s.blobPath(h))
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", h, err)
	}
	defer f.Close()
	m, err := v1.ParseManifest(f)
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", h, err)
	}
	return m, nil
}

func (s *Store) config(h v1.Hash) (*v1.ConfigFile, error) {
	f, err := os.Open(s.blobPath(h))
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", h, err)
	}
	defer f.Close()
	c, err := v1.ParseConfigFile(f)
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", h, err)
	}
	return c, nil
}

// diskUsage is the space a file or tree takes, hard links counted once.
func diskUsage(root string) int64 {
	var total int64
	seen := map[uint64]bool{}
	filepath.Walk(root, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
			total += st.Blocks * 512
		}
		return nil
	})
	return total
}
