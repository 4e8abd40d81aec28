package image

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Save writes the images refs to w as a `docker save` archive, which
// `docker load` and `berth load` read.
func (s *Store) Save(ctx context.Context, refs []string, w io.Writer) error {
	images := map[name.Reference]v1.Image{}
	for _, ref := range refs {
		img, err := s.Get(ctx, ref)
		if err != nil {
			return err
		}
		tag, err := name.NewTag(img.Ref, name.WeakValidation)
		if err != nil {
			return fmt.Errorf("saving %s: only tagged images can be saved: %w", ref, err)
		}
		v, err := s.v1Image(img.Record)
		if err != nil {
			return err
		}
		images[tag] = v
	}
	return tarball.MultiRefWrite(images, w)
}

// v1Image exposes a stored image to go-containerregistry's writers.
func (s *Store) v1Image(rec Record) (v1.Image, error) {
	return partial.CompressedToImage(&storedImage{s: s, rec: rec})
}

type storedImage struct {
	s   *Store
	rec Record
}

func (i *storedImage) RawManifest() ([]byte, error) { return os.ReadFile(i.s.blobPath(i.rec.Manifest)) }

func (i *storedImage) RawConfigFile() ([]byte, error) { return os.ReadFile(i.s.blobPath(i.rec.Config)) }

func (i *storedImage) MediaType() (types.MediaType, error) {
	m, err := i.s.manifest(i.rec.Manifest)
	if err != nil {
		return "", err
	}
	if m.MediaType == "" {
		return types.OCIManifestSchema1, nil
	}
	return m.MediaType, nil
}

func (i *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	m, err := i.s.manifest(i.rec.Manifest)
	if err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		if l.Digest == h {
			return &storedLayer{s: i.s, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in image %s", h, i.rec.Manifest)
}

type storedLayer struct {
	s    *Store
	desc v1.Descriptor
}

func (l *storedLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storedLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *storedLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.s.blobPath(l.desc.Digest))
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w (pull or load the image again)", l.desc.Digest, err)
	}
	return f, nil
}
