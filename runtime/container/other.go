//go:build !linux

// Containers need Linux: namespaces, cgroups, overlayfs. Elsewhere the
// package builds, and does nothing.
package container
