//go:build !linux

// Package reexec makes the binary that imports it the init of a container
// when libcontainer re-executes it; containers need Linux, so elsewhere it
// does nothing.
package reexec
