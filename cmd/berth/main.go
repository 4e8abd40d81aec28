// Command berth runs Compose projects on its own embedded container runtime.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
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
		fmt.Fprintln(s.err, err)
		return 1
	}
	return 0
}
