//go:build !linux

package dns

import (
	"fmt"
	"runtime"
	"syscall"

	"github.com/containerd/errdefs"
)

// reuseAddrAndPort fails: berth's networks, and the sharing of a gateway
// address between berth processes, exist on Linux only.
func reuseAddrAndPort(network, address string, c syscall.RawConn) error {
	return fmt.Errorf("embedded DNS server on %s %s: not supported on %s: %w", network, address, runtime.GOOS, errdefs.ErrNotImplemented)
}
