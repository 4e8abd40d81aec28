//go:build !linux

package image

import (
	"context"
	"errors"
	"io"
)

// Extract needs Linux (openat2 and overlayfs whiteouts).
func Extract(ctx context.Context, r io.Reader, dir string) error {
	return errors.New("unpacking image layers is not supported on this OS: berth runs containers on Linux")
}

func syncTree(dir string) error { return errors.New("not supported on this OS") }
