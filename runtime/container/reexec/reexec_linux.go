// Package reexec makes the binary that imports it the init of a container
// when libcontainer re-executes it (`<binary> init`): import it, blank,
// from main and from every test binary that starts containers.
//
// The work happens at import, on purpose, as for libcontainer's nsenter:
// the process is then inside the container's new namespaces, half set up,
// and must run no more of berth than it needs. Go initialises packages in
// dependency order, then by import path: this package depends on
// libcontainer alone, so its init runs before that of the packages berth
// needs only to load compose files (compiling JSON schemas and regular
// expressions, over 10 ms per process) — time every container start
// would pay.
package reexec

import (
	"os"

	"github.com/opencontainers/runc/libcontainer"
	// nsenter's cgo constructor runs before the Go runtime in `<binary>
	// init` and joins or creates the namespaces.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"

	// The minimal init of init: true, PID 1 of such containers: this
	// binary, executed as /sbin/docker-init.
	_ "github.com/berth-dev/berth/runtime/container/pid1"

	// The init's heap in huge pages: a third of a container's start was
	// page faults on virtual machines (see the package).
	_ "github.com/berth-dev/berth/internal/hugeheap"
)

func init() {
	// libcontainer passes its sync pipe in the environment: without it,
	// `init` is a user's command line, not libcontainer's re-execution.
	if len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv("_LIBCONTAINER_SYNCPIPE") != "" {
		libcontainer.Init() // never returns
	}
}
