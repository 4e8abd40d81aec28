// Package rootfs is what berth reads from and prepares in a container's root
// filesystem before the container starts, and the files it mounts over the
// image's: /etc/hosts, /etc/hostname and /etc/resolv.conf.
//
// A root filesystem's content comes from an image, and images are
// untrusted. Everything read or created inside one is resolved by the kernel
// inside that root (openat2 with RESOLVE_IN_ROOT), never through a host path
// that a symlink of the image could lead elsewhere. The image's users are
// read from its own /etc/passwd and /etc/group, never through NSS or os/user.
//
// Parsing and generation are plain functions over bytes, so that they test
// and fuzz anywhere; opening files inside a root needs Linux.
package rootfs
