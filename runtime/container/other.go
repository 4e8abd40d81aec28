//go:build !linux

package container

// Containers need Linux: namespaces, cgroups, overlayfs. Elsewhere the
// package only describes them, so that callers build.

// Init returns at once: there is no container init outside Linux.
func Init() {}
