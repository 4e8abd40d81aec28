// Package offline finds the images tests/imagebuild builds from Debian
// packages (busybox, redis:7, postgres:15), for the tests and benchmarks
// that run containers: no registry is reachable where they run.
package offline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/runtime/image"
)

// Archive returns the path of the docker-save tarball of image name
// ("busybox", "redis", "postgres"): in IMAGEBUILD_OUT, as `make test` sets
// it, else in the repository's bin/images, as `make images` leaves it.
func Archive(name string) (string, error) {
	var dirs []string
	if d := os.Getenv("IMAGEBUILD_OUT"); d != "" {
		dirs = append(dirs, d)
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dirs = append(dirs, filepath.Join(d, "bin", "images"))
				break
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, name+".tar")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no offline %s image: run `make images` (or set IMAGEBUILD_OUT)", name)
}

// Load loads image name into the store under root (created if needed) and
// returns it.
func Load(ctx context.Context, root, name string) (*image.Image, error) {
	archive, err := Archive(name)
	if err != nil {
		return nil, err
	}
	s, err := image.Open(root)
	if err != nil {
		return nil, err
	}
	refs, err := s.LoadFile(ctx, archive, nil)
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%s holds no tagged image", archive)
	}
	return s.Get(ctx, refs[0])
}
