// Package container runs containers on libcontainer, embedded in the berth
// binary (shared/DESIGN.md, decision 1): the binary re-executes itself as
// the container's init (see package reexec), so there is no runc binary, no daemon and
// no shim.
//
// A container's life, as this package sees it:
//
//	Create  mounts an overlay root filesystem (the image's layers, read-only,
//	        under a writable layer of its own), writes /etc/hosts,
//	        /etc/hostname and /etc/resolv.conf, and makes the libcontainer
//	        container (namespaces, cgroup, mounts, capabilities).
//	Start   runs the process. Its output goes through FIFOs into the log
//	        file; the FIFOs keep the container writing (never SIGPIPE, never
//	        blocked for the first MiB) when the process that started it goes
//	        away, and the next one reattaches.
//	Wait    reports the exit: code, signal, OOM kill, times; recorded in
//	        the container's state.
//	Stop    sends the stop signal, then SIGKILL after the grace period.
//	Delete  removes the cgroup, the mounts, the state and the log.
//
// State lives in two trees: root (persistent: the spec, the exit status,
// the writable layer, the logs; under BERTH_ROOT) and run (libcontainer's
// state and the FIFOs; under /run/berth, gone at reboot, as the containers
// are).
package container
