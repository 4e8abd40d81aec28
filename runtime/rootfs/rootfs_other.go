//go:build !linux

package rootfs

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// ResolveUser needs Linux (openat2 with RESOLVE_IN_ROOT); off Linux use
// ResolveUserFrom with the files' content.
func ResolveUser(root, user string, groupAdd []string) (User, error) {
	return User{}, errNotSupported()
}

// MkdirWorkingDir needs Linux (openat2 with RESOLVE_IN_ROOT).
func MkdirWorkingDir(root, dir string, uid, gid uint32) error {
	return errNotSupported()
}

func errNotSupported() error {
	return fmt.Errorf("%w: preparing a container's root filesystem is not supported on this OS: berth runs containers on Linux", errdefs.ErrNotImplemented)
}
