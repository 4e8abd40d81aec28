// Package openat2 is openat2(2) as berth calls it: tried again while the
// kernel refuses to finish a resolution because something changed under
// it.
package openat2

import "golang.org/x/sys/unix"

// Open is unix.Openat2, tried again (up to 100 times) when it fails with
// EAGAIN: with RESOLVE_IN_ROOT or RESOLVE_BENEATH, a rename or a mount
// anywhere on the host while ".." is resolved makes the kernel give up
// rather than risk an escape. Containers mount all the time, so under
// load a path with ".." in it meets one now and then.
func Open(dirfd int, name string, how *unix.OpenHow) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, name, how)
		if err != unix.EAGAIN || i == 100 {
			return fd, err
		}
	}
}
