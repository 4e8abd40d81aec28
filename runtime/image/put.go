package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// Progress reports bytes of an image obtained so far.
type Progress struct {
	Ref         string
	Done, Total int64 // bytes of the layers still to fetch; Total 0 when unknown
	Status      string
}

// blobSource says how to obtain a layer's blob and how the manifest refers
// to it.
type blobSource int

const (
	// compressedBlobs keeps each layer as the image ships it (a registry's
	// gzip or zstd blob), under the image's own manifest.
	compressedBlobs blobSource = iota
	// uncompressedBlobs keeps each layer as a plain tar whose digest is its
	// diffID: docker save archives hold uncompressed layers, and compressing
	// them only to name them would cost seconds per image.
	uncompressedBlobs
)

// putOptions tune put.
type putOptions struct {
	source   blobSource
	jobs     int
	progress func(Progress)
	retries  int
}

// put stores img under the references keys (already normalised): its layers
// (each fetched and unpacked once), config and manifest, then the index.
func (s *Store) put(ctx context.Context, keys []string, img v1.Image, o putOptions) (*Image, error) {
	cfgRaw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	cfgDigest, _, err := v1.SHA256(bytes.NewReader(cfgRaw))
	if err != nil {
		return nil, err
	}
	if o.source == compressedBlobs {
		// The manifest names the config by digest; the registry client
		// does not check the body against it.
		m, err := img.Manifest()
		if err != nil {
			return nil, fmt.Errorf("reading image manifest: %w", err)
		}
		if m.Config.Digest != cfgDigest {
			return nil, fmt.Errorf("image config: %w: the manifest says %s, the registry sent %s", errDigestMismatch, m.Config.Digest, cfgDigest)
		}
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(cfgRaw)))
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading image layers: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return nil, fmt.Errorf("image has %d layers but its config lists %d", len(layers), len(cfg.RootFS.DiffIDs))
	}

	report := o.progress
	if report == nil {
		report = func(Progress) {}
	}
	var done, total atomic.Int64
	for _, l := range layers {
		if d, err := l.DiffID(); err == nil && s.hasLayer(d) && o.source == compressedBlobs {
			continue
		}
		if n, err := l.Size(); err == nil {
			total.Add(n)
		}
	}
	tick := func(n int64) {
		report(Progress{Ref: keys[0], Done: done.Add(n), Total: total.Load(), Status: "downloading"})
	}

	descs := make([]v1.Descriptor, len(layers))
	eg, egctx := errgroup.WithContext(ctx)
	eg.SetLimit(max(o.jobs, 1))
	for i, l := range layers {
		eg.Go(func() error {
			diffID := cfg.RootFS.DiffIDs[i]
			if d, err := l.DiffID(); err == nil && d != diffID {
				return fmt.Errorf("layer %d: %w: the image config says diffID %s, the layer %s", i, errDigestMismatch, diffID, d)
			}
			desc, err := s.putLayer(egctx, l, diffID, o, tick)
			if err != nil {
				return err
			}
			descs[i] = desc
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}

	manifestRaw, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("reading image manifest: %w", err)
	}
	if o.source == uncompressedBlobs {
		manifestRaw, err = json.Marshal(v1.Manifest{
			SchemaVersion: 2,
			MediaType:     types.OCIManifestSchema1,
			Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: cfgDigest, Size: int64(len(cfgRaw))},
			Layers:        descs,
		})
		if err != nil {
			return nil, err
		}
	}
	manifestDigest, _, err := v1.SHA256(strings.NewReader(string(manifestRaw)))
	if err != nil {
		return nil, err
	}
	if err := s.writeBlob(strings.NewReader(string(cfgRaw)), cfgDigest); err != nil {
		return nil, err
	}
	if err := s.writeBlob(strings.NewReader(string(manifestRaw)), manifestDigest); err != nil {
		return nil, err
	}
	var size int64
	for _, d := range cfg.RootFS.DiffIDs {
		size += diskUsage(s.layerPath(d))
	}
	rec := Record{Manifest: manifestDigest, Config: cfgDigest, Size: size, Pulled: time.Now().UTC()}
	err = s.updateIndex(ctx, func(idx *index) error {
		for _, k := range keys {
			idx.Images[k] = rec
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	report(Progress{Ref: keys[0], Done: done.Load(), Total: total.Load(), Status: "done"})
	return s.image(keys[0], rec)
}

// putLayer stores one layer's blob and unpacks it, and returns the
// manifest's descriptor for it.
func (s *Store) putLayer(ctx context.Context, l v1.Layer, diffID v1.Hash, o putOptions, tick func(int64)) (v1.Descriptor, error) {
	if o.source == uncompressedBlobs {
		desc := v1.Descriptor{MediaType: types.OCIUncompressedLayer, Digest: diffID}
		err := s.ensureLayer(ctx, diffID, func(ctx context.Context) error {
			return s.readLayer(ctx, l.Uncompressed, diffID, diffID, false, tick)
		})
		if err != nil {
			return desc, err
		}
		blob := s.blobPath(diffID)
		fi, err := os.Stat(blob)
		if err != nil {
			// Unpacked from another image's blob: keep this one's too, so
			// that the image can be saved.
			rc, err := l.Uncompressed()
			if err != nil {
				return desc, fmt.Errorf("reading layer %s: %w", diffID, err)
			}
			defer rc.Close()
			if err := s.writeBlob(rc, diffID); err != nil {
				return desc, err
			}
			if fi, err = os.Stat(blob); err != nil {
				return desc, err
			}
		}
		desc.Size = fi.Size()
		return desc, nil
	}

	digest, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("reading layer digest: %w", err)
	}
	size, _ := l.Size()
	mt, _ := l.MediaType()
	desc := v1.Descriptor{MediaType: mt, Digest: digest, Size: size}
	err = s.ensureLayer(ctx, diffID, func(ctx context.Context) error {
		// The registry client checks the blob's digest as it reads.
		open, verified := l.Compressed, true
		if _, err := os.Stat(s.blobPath(digest)); err == nil {
			// The blob is here (its layer was pruned): unpack it again.
			open = func() (io.ReadCloser, error) { return os.Open(s.blobPath(digest)) }
		}
		err := retry(ctx, o.retries, func() error { return s.readLayer(ctx, open, digest, diffID, verified, tick) })
		if err != nil {
			return fmt.Errorf("fetching layer %s: %w", digest, err)
		}
		return nil
	})
	return desc, err
}

// readLayer opens a layer's blob and stores it with storeLayer, counting its
// bytes for the progress report.
func (s *Store) readLayer(ctx context.Context, open func() (io.ReadCloser, error), blob, diffID v1.Hash, verified bool, tick func(int64)) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	var n atomic.Int64
	err = s.storeLayer(ctx, countingReader{ctxReader{ctx, rc}, func(k int64) { n.Add(k); tick(k) }}, blob, diffID, verified)
	if err != nil {
		tick(-n.Load()) // the bytes will come again
		if strings.Contains(err.Error(), "error verifying") {
			return fmt.Errorf("%w: %w", errDigestMismatch, err)
		}
	}
	return err
}

// retry runs fn up to 1+retries times, backing off, until it succeeds, the
// context ends, the content itself is wrong (a digest mismatch does not
// heal) or the registry answered with an error status (the registry client
// already retried 429 and 5xx). A connection cut while a body is read is for
// the reader to retry.
func retry(ctx context.Context, retries int, fn func() error) error {
	var err error
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt*attempt) * 200 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err = fn()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// transient reports whether err is a network failure worth another try: a
// connection reset, refused or cut mid-body. A registry's answer (an HTTP
// error, already retried by the client for 429 and 5xx), a missing platform
// or wrong content do not heal by trying again.
func transient(err error) bool {
	var status *transport.Error
	if errors.As(err, &status) || errors.Is(err, errDigestMismatch) {
		return false
	}
	var netErr net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) || errors.As(err, &netErr)
}

type countingReader struct {
	r    io.Reader
	tick func(int64)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.tick(int64(n))
	}
	return n, err
}

// keysFor normalises references for the index.
func keysFor(refs []string) ([]string, error) {
	keys := make([]string, 0, len(refs))
	for _, r := range refs {
		k, err := Normalize(r)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
