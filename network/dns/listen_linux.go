package dns

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// reuseAddrAndPort sets SO_REUSEADDR and SO_REUSEPORT on a socket before it
// is bound, so that several berth processes can serve one gateway address
// (socket(7): every socket bound to the address needs SO_REUSEPORT, and
// they must belong to one effective user).
func reuseAddrAndPort(network, address string, c syscall.RawConn) error {
	var errs []error
	err := c.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, 1); err != nil {
				errs = append(errs, err)
			}
		}
	})
	if err := errors.Join(append(errs, err)...); err != nil {
		return fmt.Errorf("set SO_REUSEADDR and SO_REUSEPORT on %s %s: %w", network, address, err)
	}
	return nil
}
