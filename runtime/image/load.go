package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Load stores the images of a `docker save` archive or of an OCI image
// layout tarball read from r, and returns their references (an untagged
// image is named by its ID).
func (s *Store) Load(ctx context.Context, r io.Reader, progress func(Progress)) ([]string, error) {
	dir, done, err := s.tempDir()
	if err != nil {
		return nil, err
	}
	defer done()
	// Both formats need random access: a stream lands on disk first.
	archive := filepath.Join(dir, "archive.tar")
	f, err := os.OpenFile(archive, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("loading images: %w", err)
	}
	_, err = io.Copy(f, ctxReader{ctx, r})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("loading images: reading the archive: %w", err)
	}
	return s.loadArchive(ctx, archive, dir, progress)
}

// LoadFile is Load from an archive file, read in place.
func (s *Store) LoadFile(ctx context.Context, archive string, progress func(Progress)) ([]string, error) {
	if _, err := os.Stat(archive); err != nil {
		return nil, fmt.Errorf("loading images: %w", err)
	}
	dir, done, err := s.tempDir()
	if err != nil {
		return nil, err
	}
	defer done()
	return s.loadArchive(ctx, archive, dir, progress)
}

func (s *Store) loadArchive(ctx context.Context, archive, dir string, progress func(Progress)) ([]string, error) {
	kind, err := archiveKind(archive)
	if err != nil {
		return nil, err
	}
	o := putOptions{jobs: 4, progress: progress}
	if kind == "oci" {
		return s.loadOCI(ctx, archive, dir, o)
	}
	o.source = uncompressedBlobs
	return s.loadDocker(ctx, archive, o)
}

// archiveKind tells a docker save archive (manifest.json) from an OCI layout
// (oci-layout, index.json).
func archiveKind(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	oci := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("loading images: not a tar archive: %w", err)
		}
		switch strings.TrimPrefix(hdr.Name, "./") {
		case "manifest.json":
			return "docker", nil
		case "oci-layout", "index.json":
			oci = true
		}
	}
	if oci {
		return "oci", nil
	}
	return "", errors.New("loading images: neither a docker save archive (manifest.json) nor an OCI image layout (oci-layout, index.json)")
}

func (s *Store) loadDocker(ctx context.Context, archive string, o putOptions) ([]string, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(archive) }
	manifest, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("loading images: reading manifest.json: %w", err)
	}
	var loaded []string
	for _, desc := range manifest {
		var img v1.Image
		var keys []string
		if len(desc.RepoTags) == 0 {
			if len(manifest) > 1 {
				return loaded, errors.New("loading images: an untagged image in a multi-image archive")
			}
			img, err = tarball.Image(opener, nil)
		} else {
			var tag name.Tag
			tag, err = name.NewTag(desc.RepoTags[0], name.WeakValidation)
			if err == nil {
				img, err = tarball.Image(opener, &tag)
			}
			if err == nil {
				keys, err = keysFor(desc.RepoTags)
			}
		}
		if err != nil {
			return loaded, fmt.Errorf("loading %v: %w", desc.RepoTags, err)
		}
		keys, err = s.putLoaded(ctx, keys, img, o)
		loaded = append(loaded, keys...)
		if err != nil {
			return loaded, err
		}
	}
	return loaded, nil
}

// putLoaded stores an image of an archive under keys, or under its ID when
// the archive gives it no name, and returns the names it is stored under.
func (s *Store) putLoaded(ctx context.Context, keys []string, img v1.Image, o putOptions) ([]string, error) {
	if len(keys) == 0 {
		id, err := img.ConfigName()
		if err != nil {
			return nil, fmt.Errorf("loading an untagged image: %w", err)
		}
		keys = []string{id.String()}
	}
	if _, err := s.put(ctx, keys, img, o); err != nil {
		return nil, fmt.Errorf("loading %s: %w", keys[0], err)
	}
	return keys, nil
}

func (s *Store) loadOCI(ctx context.Context, archive, dir string, o putOptions) ([]string, error) {
	// The layout is untrusted too: unpacked with the layer extractor.
	root := filepath.Join(dir, "layout")
	if err := os.Mkdir(root, 0o700); err != nil {
		return nil, err
	}
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	err = Extract(ctx, f, root)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("loading images: unpacking the OCI layout: %w", err)
	}
	p, err := layout.FromPath(root)
	if err != nil {
		return nil, fmt.Errorf("loading images: %w", err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("loading images: reading index.json: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("loading images: reading index.json: %w", err)
	}
	var loaded []string
	for _, desc := range im.Manifests {
		if !desc.MediaType.IsImage() {
			continue
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return loaded, fmt.Errorf("loading %s: %w", desc.Digest, err)
		}
		ref := desc.Annotations["io.containerd.image.name"]
		if ref == "" {
			ref = desc.Annotations["org.opencontainers.image.ref.name"]
		}
		var keys []string
		if ref != "" {
			if keys, err = keysFor([]string{ref}); err != nil {
				return loaded, err
			}
		}
		keys, err = s.putLoaded(ctx, keys, img, o)
		loaded = append(loaded, keys...)
		if err != nil {
			return loaded, err
		}
	}
	if len(loaded) == 0 {
		return nil, errors.New("loading images: the OCI layout holds no image")
	}
	return loaded, nil
}
