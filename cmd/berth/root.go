package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/fatih/color"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/hostpaths"
	"github.com/berth-dev/berth/project"
)

// globalOptions are the flags every command takes, spelled as docker compose
// spells them.
type globalOptions struct {
	files      []string
	name       string
	projectDir string
	profiles   []string
	envFiles   []string
	ansi       string
	progress   string
	parallel   int
	// compatibility names containers as Compose v1 did, with "_"
	// (--compatibility, COMPOSE_COMPATIBILITY).
	compatibility bool

	environ []string // the process environment, KEY=VALUE
}

// projectOptions turns the global flags into what the loader needs.
func (g *globalOptions) projectOptions() project.Options {
	o := project.Options{
		Files:      g.files,
		Name:       g.name,
		WorkingDir: g.projectDir,
		Profiles:   g.profiles,
		EnvFiles:   g.envFiles,
		Environ:    g.environ,
	}
	// Projects validated once are not validated again while unchanged,
	// once berth has run something on this host (its run directory
	// exists; it goes at reboot).
	if _, err := os.Stat(g.runDir()); err == nil {
		o.ValidationCache = filepath.Join(g.runDir(), "validated")
	}
	return o
}

func (g *globalOptions) getenv(key string) (string, bool) { return hostpaths.Lookup(g.environ, key) }

func newRootCommand(s streams, environ []string) *cobra.Command {
	g := &globalOptions{environ: environ}
	root := &cobra.Command{
		Use:   "berth [OPTIONS] COMMAND",
		Short: "Run Compose projects on berth's own container runtime",
		Long: "berth runs Compose Spec projects (compose.yaml) without a Docker daemon.\n" +
			"It takes the commands and flags of docker compose.",
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.resolve(cmd)
		},
	}
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)

	f := root.PersistentFlags()
	f.StringArrayVarP(&g.files, "file", "f", nil, "Compose configuration files (\"-\" for stdin)")
	f.StringVarP(&g.name, "project-name", "p", "", "Project name")
	f.StringVar(&g.projectDir, "project-directory", "", "Specify an alternate working directory\n(default: the path of the, first specified, Compose file)")
	f.StringArrayVar(&g.profiles, "profile", nil, "Specify a profile to enable")
	f.StringArrayVar(&g.envFiles, "env-file", nil, "Specify an alternate environment file")
	f.StringVar(&g.ansi, "ansi", "auto", `Control when to print ANSI control characters ("never"|"always"|"auto")`)
	f.StringVar(&g.progress, "progress", "", "Set type of progress output (auto, tty, plain, json, quiet)")
	f.IntVar(&g.parallel, "parallel", -1, "Control max parallelism, -1 for unlimited")
	f.BoolVar(&g.compatibility, "compatibility", false, "Run compose in backward compatibility mode")

	root.AddCommand(
		newConfigCommand(g),
		newVersionCommand(),
		newPullCommand(g, s),
		newImagesCommand(g),
		newImageCommand(g),
		newLoadCommand(g, s),
		newSaveCommand(g, s),
		newRunCommand(g, s),
		newPsCommand(g, s),
		newRmCommand(g, s),
		newUpCommand(g, s),
		newScaleCommand(g, s),
		newDownCommand(g, s),
		newSnapshotCommand(g, s),
		newCreateCommand(g, s),
		newLogsCommand(g, s),
		newExecCommand(g, s),
		newCpCommand(g, s),
		newExportCommand(g, s),
		newTopCommand(g, s),
		newWaitCommand(g, s),
		newEventsCommand(g, s),
		newLsCommand(g, s),
		newStatsCommand(g, s),
		newPortCommand(g, s),
		newVolumesCommand(g, s),
		newVolumeCommand(g, s),
	)
	root.AddCommand(newLifecycleCommands(g, s)...)
	return root
}

// resolve applies the environment variables that stand for flags not given
// on the command line, and checks the flags' values.
func (g *globalOptions) resolve(cmd *cobra.Command) error {
	f := cmd.Flags()
	if !f.Changed("env-file") {
		if v, ok := g.getenv("COMPOSE_ENV_FILES"); ok {
			g.envFiles = strings.FieldsFunc(v, func(r rune) bool { return r == ',' })
		}
	}
	for i, file := range g.envFiles {
		abs, err := filepath.Abs(file)
		if err != nil {
			return fmt.Errorf("resolving --env-file %s: %w", file, err)
		}
		g.envFiles[i] = abs
	}
	if v, ok := g.getenv("COMPOSE_ANSI"); ok && !f.Changed("ansi") {
		g.ansi = v
	}
	switch g.ansi {
	case "never", "always", "auto":
	default:
		return fmt.Errorf("invalid --ansi value %q: use never, always or auto", g.ansi)
	}
	if v, ok := g.getenv("COMPOSE_PROGRESS"); ok && !f.Changed("progress") {
		g.progress = v
	}
	switch g.progress {
	case "", "auto", "tty", "plain", "json", "quiet", "none":
	default:
		return fmt.Errorf("invalid --progress value %q: use auto, tty, plain, json or quiet", g.progress)
	}
	if g.progress == "tty" && g.ansi == "never" {
		return fmt.Errorf("can't use --progress tty while ANSI support is disabled")
	}
	if g.progress == "plain" && g.ansi == "always" {
		return fmt.Errorf("can't use --progress plain while ANSI support is forced")
	}
	if v, ok := g.getenv("COMPOSE_COMPATIBILITY"); ok && !f.Changed("compatibility") {
		g.compatibility, _ = strconv.ParseBool(v)
	}
	if v, ok := g.getenv("COMPOSE_PARALLEL_LIMIT"); ok && !f.Changed("parallel") {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("COMPOSE_PARALLEL_LIMIT must be an integer (found: %q)", v)
		}
		g.parallel = n
	}
	if g.parallel == 0 || g.parallel < -1 {
		return fmt.Errorf("invalid --parallel value %d: use a positive number, or -1 for unlimited", g.parallel)
	}
	// fatih/color decides colours for the whole process; berth sets it once,
	// here, from the flags: NO_COLOR and --ansi never turn colours off,
	// --ansi always forces them even when the output is not a terminal.
	if v, ok := g.getenv("NO_COLOR"); (ok && v != "") || g.ansi == "never" {
		color.NoColor = true
	} else if g.ansi == "always" {
		color.NoColor = false
	}
	return nil
}

// version is berth's version: set at link time by the Makefile
// (-ldflags "-X main.version=..."), else the module version Go recorded.
var version = ""

func berthVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "v0.0.0-dev"
}
