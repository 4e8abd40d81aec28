// Command berth runs Compose projects on its own embedded container runtime.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	// The container init hook. To start a container, libcontainer
	// re-executes this binary as `berth init` inside the container's new
	// namespaces; that process must become the container's init before
	// anything of berth runs (cobra, flags, the environment are not for
	// it), and as early as it can: reexec does it while the packages are
	// initialised, before the compose loader's (see its doc). In every
	// other process it does nothing. Test binaries that start containers
	// import it too.
	_ "github.com/berth-dev/berth/runtime/container/reexec"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], streams{in: os.Stdin, out: os.Stdout, err: os.Stderr}, os.Environ())
	stop()
	os.Exit(code)
}

// streams are the command's standard input and outputs.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// run executes one berth command line and returns its exit code. Errors are
// printed as the user should read them: what is wrong, where, what to do;
// never a stack trace.
func run(ctx context.Context, args []string, s streams, environ []string) int {
	root := newRootCommand(s, environ)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var code exitCode
		if errors.As(err, &code) {
			return int(code)
		}
		fmt.Fprintln(s.err, err)
		return 1
	}
	return 0
}
