//go:build unix

package logs

import (
	"os"
	"syscall"
)

// unlinked reports whether f has no name left: a rotation deleted it.
func unlinked(f *os.File) bool {
	st, err := f.Stat()
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Nlink == 0
}
