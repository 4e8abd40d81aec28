// Command pid1init is berth's init of `init: true` alone
// (runtime/container/pid1): tests whose own binary is linked dynamically,
// and so cannot run inside a container, build it static and mount it at
// /sbin/docker-init instead (runtime/container's tests).
package main

import (
	"fmt"
	"os"

	_ "github.com/berth-dev/berth/runtime/container/pid1"
)

func main() {
	// The init runs from a C constructor when executed as
	// /sbin/docker-init, and never reaches here.
	fmt.Fprintln(os.Stderr, "pid1init: run as /sbin/docker-init, mounted there")
	os.Exit(2)
}
