// Command berth runs Compose projects on its own embedded container runtime.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
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
	// A project's supervisor (`berth supervise`, started by the CLI) runs
	// from its package's initialisation too, before the compose loader's
	// and the command line's packages are initialised (see its doc).
	_ "github.com/berth-dev/berth/runtime/supervisor/entry"
)

func main() {
	tuneGC(os.Args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], streams{in: os.Stdin, out: os.Stdout, err: os.Stderr}, os.Environ())
	stop()
	os.Exit(code)
}

// tuneGC lets a command's heap grow to 64 MiB before the garbage
// collector first runs: most commands end long before (a tenth of the
// time of `ps` went to collecting), and long ones (attached up, logs -f)
// stay within that. Not `up`: collecting keeps its heap small, so it
// touches fewer new pages, each a page fault (a huge page here: 1-5 ms on
// virtual machines), than the collections cost. Alternating binaries, up
// -d of 10 services 576-589 ms median against 619-645 with no
// collection, of 50 services 3.12 s against 3.26 (bench/README.md,
// session 7); `ps` of 50 containers the other way round, 80 ms of CPU
// against 130. GOGC, when set, wins. (The supervisor, which lives for
// days, sets its own: runtime/supervisor/entry.)
func tuneGC(args []string) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	if i := commandAt(args); i < len(args) && args[i] == "up" {
		return
	}
	debug.SetMemoryLimit(64 << 20)
	debug.SetGCPercent(-1)
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
	root.SetArgs(commandShorthands(args))
	if err := root.ExecuteContext(ctx); err != nil {
		var code exitCode
		if errors.As(err, &code) {
			return int(code)
		}
		var failed exitError
		if errors.As(err, &failed) {
			fmt.Fprintln(s.err, failed.err)
			return failed.code
		}
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// Interrupted (Ctrl-C, SIGTERM): the user knows; a command
			// such as logs -f ends so, with the shell's status for it.
			return 130
		}
		fmt.Fprintln(s.err, err)
		return 1
	}
	return 0
}

// localShorthands are the commands whose own flags use a letter of a
// global flag: `rm -f` is --force as in docker compose, where global flags
// only come before the command; berth also takes global flags after it,
// so the letter is spelled out before the flags are parsed.
var localShorthands = map[string]map[string]string{
	"rm":           {"f": "--force"},
	"logs":         {"f": "--follow"},
	"run":          {"p": "--publish"},
	"volume rm":    {"f": "--force"},
	"volume prune": {"f": "--force"},
}

// runWithValue are run's flags that take the next argument: what follows
// run's SERVICE is the container's command, never rewritten, so the
// rewriting stops at the first argument that is not a flag or a flag's
// value.
var runWithValue = map[string]bool{
	"-e": true, "--env": true, "-l": true, "--label": true, "--name": true, "-u": true, "--user": true,
	"-w": true, "--workdir": true, "--entrypoint": true, "--cap-add": true, "--cap-drop": true,
	"--pull": true, "-v": true, "--volume": true, "--volumes": true, "-p": true, "--publish": true,
}

// commandGroups are the commands whose subcommand comes next: their
// localShorthands are keyed "group subcommand".
var commandGroups = map[string]bool{"volume": true}

// globalWithValue are the global flags that take the next argument.
var globalWithValue = map[string]bool{
	"-f": true, "--file": true, "-p": true, "--project-name": true, "--project-directory": true,
	"--profile": true, "--env-file": true, "--ansi": true, "--progress": true, "--parallel": true,
}

// commandAt is the index in args of the command's name: the first
// argument that is neither a global flag nor a global flag's value;
// len(args) when there is none.
func commandAt(args []string) int {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case globalWithValue[a]:
			i++
		case !strings.HasPrefix(a, "-"):
			return i
		}
	}
	return len(args)
}

// commandShorthands rewrites, after a command of localShorthands, its
// letters (alone, "-f", or grouped, "-fs") into their long flags.
func commandShorthands(args []string) []string {
	i := commandAt(args)
	if i == len(args) {
		return args
	}
	out := append(make([]string, 0, len(args)), args[:i+1]...)
	command := args[i]
	if commandGroups[command] && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
		i++
		out = append(out, args[i])
		command += " " + args[i]
	}
	local := localShorthands[command]
	if local == nil {
		return append(out, args[i+1:]...)
	}
	for i++; i < len(args); i++ {
		a := args[i]
		if a == "--" || command == "run" && !strings.HasPrefix(a, "-") {
			return append(out, args[i:]...)
		}
		if command == "run" && runWithValue[a] && i+1 < len(args) {
			if long, ok := local[strings.TrimPrefix(a, "-")]; ok {
				a = long
			}
			out = append(out, a, args[i+1])
			i++
			continue
		}
		if len(a) < 2 || a[0] != '-' || a[1] == '-' {
			out = append(out, a)
			continue
		}
		rest := ""
		for _, r := range a[1:] {
			if long, ok := local[string(r)]; ok {
				out = append(out, long)
			} else {
				rest += string(r)
			}
		}
		if rest != "" {
			out = append(out, "-"+rest)
		}
	}
	return out
}
