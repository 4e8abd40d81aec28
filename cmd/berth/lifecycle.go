package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/supervisor"
)

func newDownCommand(g *globalOptions, s streams) *cobra.Command {
	var o compose.DownOptions
	var timeout timeoutFlag
	var volumes bool
	cmd := &cobra.Command{
		Use:   "down [OPTIONS] [SERVICES]",
		Short: "Stop and remove containers, networks",
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("remove-orphans") {
				if v, ok := g.getenv("COMPOSE_REMOVE_ORPHANS"); ok {
					o.RemoveOrphans, _ = strconv.ParseBool(v)
				}
			}
			eng, err := g.engine()
			if err != nil {
				return err
			}
			var images compose.ImageRemover
			if o.RemoveImages != "" {
				store, err := g.imageStore()
				if err != nil {
					return err
				}
				images = store
			}
			pr := g.newProgress(s.err, false)
			o.Progress, o.Warn, o.Timeout, o.Volumes, o.Services = pr.event, pr.warn, timeout.d, volumes, args
			return compose.Down(cmd.Context(), g.projectOptions(), eng, images, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.RemoveOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	f.VarP(&timeout, "timeout", "t", "Specify a shutdown timeout in seconds")
	f.BoolVarP(&volumes, "volumes", "v", false, "Remove named volumes declared in the \"volumes\" section of the Compose file and anonymous volumes attached to containers")
	f.StringVar(&o.RemoveImages, "rmi", "", `Remove images used by services. "local" remove only images that don't have a custom tag ("local"|"all")`)
	return cmd
}

func newCreateCommand(g *globalOptions, s streams) *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [SERVICE...]",
		Short: "Creates containers for a service",
		RunE: func(cmd *cobra.Command, args []string) error {
			f.o.NoStart, f.detach = true, true
			return runUp(cmd.Context(), g, s, &f, args)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.o.ForceRecreate, "force-recreate", false, "Recreate containers even if their configuration and image haven't changed")
	fl.BoolVar(&f.o.NoRecreate, "no-recreate", false, "If containers already exist, don't recreate them")
	fl.BoolVar(&f.o.RemoveOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	fl.StringArrayVar(&f.scale, "scale", nil, "Scale SERVICE to NUM instances")
	fl.StringVar(&f.pull, "pull", "policy", `Pull image before running ("always"|"missing"|"never")`)
	fl.BoolVar(&f.quietPull, "quiet-pull", false, "Pull without printing progress information")
	fl.BoolVar(&f.build, "build", false, "Build images before starting containers")
	fl.BoolVar(&f.noBuild, "no-build", false, "Don't build an image, even if it's policy")
	fl.BoolVarP(&f.yes, "yes", "y", false, `Assume "yes" as answer to all prompts and run non-interactively`)
	return cmd
}

// newActionCommand makes start, stop, restart, kill, pause and unpause:
// the same shape, a different verb.
func newActionCommand(g *globalOptions, s streams, use, short string, verb func(context.Context, *engine, compose.ActionOptions) error, flags func(*cobra.Command, *compose.ActionOptions)) *cobra.Command {
	var o compose.ActionOptions
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] [SERVICE...]",
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := g.engine()
			if err != nil {
				return err
			}
			o.Services = args
			pr := g.newProgress(s.err, false)
			o.Progress, o.Warn = pr.event, pr.warn
			return verb(cmd.Context(), eng, o)
		},
	}
	if flags != nil {
		flags(cmd, &o)
	}
	return cmd
}

func timeoutFlagOn(cmd *cobra.Command, o *compose.ActionOptions) {
	t := &timeoutFlag{}
	cmd.Flags().VarP(t, "timeout", "t", "Specify a shutdown timeout in seconds")
	cmd.PreRun = func(*cobra.Command, []string) { o.Timeout = t.d }
}

func newLifecycleCommands(g *globalOptions, s streams) []*cobra.Command {
	lo := g.projectOptions
	return []*cobra.Command{
		newActionCommand(g, s, "start", "Start services", func(ctx context.Context, e *engine, o compose.ActionOptions) error {
			return compose.Start(ctx, lo(), e, o)
		}, nil),
		newActionCommand(g, s, "stop", "Stop services", func(ctx context.Context, e *engine, o compose.ActionOptions) error {
			return compose.Stop(ctx, lo(), e, o)
		}, timeoutFlagOn),
		newActionCommand(g, s, "restart", "Restart service containers", func(ctx context.Context, e *engine, o compose.ActionOptions) error {
			return compose.Restart(ctx, lo(), e, o)
		}, func(cmd *cobra.Command, o *compose.ActionOptions) {
			timeoutFlagOn(cmd, o)
			cmd.Flags().BoolVar(&o.NoDeps, "no-deps", false, "Don't restart dependent services")
		}),
		newActionCommand(g, s, "kill", "Force stop service containers", func(ctx context.Context, e *engine, o compose.ActionOptions) error {
			return compose.Kill(ctx, lo(), e, o)
		}, func(cmd *cobra.Command, o *compose.ActionOptions) {
			cmd.Flags().StringVarP(&o.Signal, "signal", "s", "SIGKILL", "SIGNAL to send to the container")
			cmd.Flags().Bool("remove-orphans", false, "Remove containers for services not defined in the Compose file")
		}),
		newActionCommand(g, s, "pause", "Pause services", func(ctx context.Context, e *engine, o compose.ActionOptions) error {
			return compose.Pause(ctx, lo(), e, o)
		}, nil),
		newActionCommand(g, s, "unpause", "Unpause services", func(ctx context.Context, e *engine, o compose.ActionOptions) error {
			return compose.Unpause(ctx, lo(), e, o)
		}, nil),
	}
}

// parseTimeArg reads --since/--until as docker does: an RFC 3339 time, a
// Unix timestamp, or a duration before now ("10m").
func parseTimeArg(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: use an RFC 3339 time, a Unix timestamp or a duration such as 10m", s)
}

func newLogsCommand(g *globalOptions, s streams) *cobra.Command {
	var o compose.LogsOptions
	var tail, since, until string
	var noColor, noPrefix, timestamps bool
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] [SERVICE...]",
		Short: "View output from containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Services = args
			o.Tail = -1
			if tail != "all" {
				n, err := strconv.Atoi(tail)
				if err != nil {
					return fmt.Errorf("invalid --tail %q: a number of lines, or all", tail)
				}
				// A negative number is all, as docker's logs has it.
				o.Tail = max(n, -1)
			}
			now := time.Now()
			var err error
			if o.Since, err = parseTimeArg(since, now); err != nil {
				return err
			}
			if o.Until, err = parseTimeArg(until, now); err != nil {
				return err
			}
			eng, cs, err := g.selectContainers(cmd.Context(), args)
			if err != nil {
				return err
			}
			p := newLogPrinter(s.out, cs, noColor, noPrefix, timestamps)
			return compose.Logs(cmd.Context(), g.projectOptions(), eng, o, p.line)
		},
	}
	f := cmd.Flags()
	// -f too: see localShorthands.
	f.BoolVar(&o.Follow, "follow", false, "Follow log output")
	f.StringVarP(&tail, "tail", "n", "all", "Number of lines to show from the end of the logs for each container")
	f.StringVar(&since, "since", "", "Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	f.StringVar(&until, "until", "", "Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "Show timestamps")
	f.BoolVar(&noColor, "no-color", false, "Produce monochrome output")
	f.BoolVar(&noPrefix, "no-log-prefix", false, "Don't print prefix in logs")
	f.IntVar(&o.Index, "index", 0, "index of the container if service has multiple replicas")
	return cmd
}

func newExecCommand(g *globalOptions, s streams) *cobra.Command {
	var o compose.ExecOptions
	var noTTY bool
	var index int
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] SERVICE COMMAND [ARGS...]",
		Short: "Execute a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := g.engine()
			if err != nil {
				return err
			}
			c, err := compose.RunningContainer(cmd.Context(), g.projectOptions(), eng, args[0], index)
			if err != nil {
				return err
			}
			o.Args = args[1:]
			o.Env = compose.ExecEnv(o.Env, project.Environment(g.projectOptions()))
			in, inIsFile := s.in.(*os.File)
			out, outIsFile := s.out.(*os.File)
			o.TTY = !noTTY && inIsFile && outIsFile && isTerminal(in) && isTerminal(out)
			o.Stdout, o.Stderr = s.out, s.err
			if !o.Detach {
				o.Stdin = s.in
			}
			if o.TTY && !o.Detach {
				if w, h, err := term.GetSize(int(out.Fd())); err == nil {
					o.ConsoleWidth, o.ConsoleHeight = uint16(w), uint16(h)
				}
				state, err := term.MakeRaw(int(in.Fd()))
				if err == nil {
					defer term.Restore(int(in.Fd()), state)
				}
				resize := make(chan [2]uint16, 1)
				winch := make(chan os.Signal, 1)
				signal.Notify(winch, syscall.SIGWINCH)
				defer signal.Stop(winch)
				go func() {
					for range winch {
						if w, h, err := term.GetSize(int(out.Fd())); err == nil {
							select {
							case resize <- [2]uint16{uint16(w), uint16(h)}:
							default:
							}
						}
					}
				}()
				o.Resize = resize
			}
			code, err := eng.Exec(context.WithoutCancel(cmd.Context()), c.ID, o)
			if err != nil {
				if code == container.ExecStartFailed {
					return exitError{code, err}
				}
				return err
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.BoolVarP(&o.Detach, "detach", "d", false, "Detached mode: Run command in the background")
	f.StringArrayVarP(&o.Env, "env", "e", nil, "Set environment variables")
	f.StringVarP(&o.User, "user", "u", "", "Run the command as this user")
	f.StringVarP(&o.WorkingDir, "workdir", "w", "", "Path to workdir directory for this command")
	f.BoolVarP(&noTTY, "no-TTY", "T", false, "Disable pseudo-TTY allocation. By default `berth exec` allocates a TTY")
	f.IntVar(&index, "index", 0, "Index of the container if service has multiple replicas")
	f.BoolVar(&o.Privileged, "privileged", false, "Give extended privileges to the process")
	f.BoolP("interactive", "i", true, "Keep STDIN open even if not attached")
	return cmd
}

func newTopCommand(g *globalOptions, s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "top [SERVICES...]",
		Short: "Display the running processes",
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, cs, err := g.selectContainers(cmd.Context(), args)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if !c.Running() {
					continue
				}
				rows, err := eng.Top(cmd.Context(), c.ID)
				if err != nil {
					return err
				}
				fmt.Fprintln(s.out, c.Name)
				tw := tabwriter.NewWriter(s.out, 0, 0, 3, ' ', 0)
				for _, r := range rows {
					fmt.Fprintln(tw, strings.Join(r, "\t"))
				}
				tw.Flush()
				fmt.Fprintln(s.out)
			}
			return nil
		},
	}
}

func newWaitCommand(g *globalOptions, s streams) *cobra.Command {
	var downProject bool
	cmd := &cobra.Command{
		Use:   "wait SERVICE [SERVICE...] [OPTIONS]",
		Short: "Block until containers of all (or specified) services stop.",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := g.engine()
			if err != nil {
				return err
			}
			first, err := compose.Wait(cmd.Context(), g.projectOptions(), eng, args, func(c compose.ContainerStatus) {
				fmt.Fprintln(s.out, c.ExitCode)
			})
			if err != nil {
				return err
			}
			if downProject {
				pr := g.newProgress(s.err, false)
				if err := compose.Down(cmd.Context(), g.projectOptions(), eng, nil, compose.DownOptions{Progress: pr.event, Warn: pr.warn}); err != nil {
					return err
				}
			}
			if first != 0 {
				return exitCode(first)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&downProject, "down-project", false, "Drops project when the first container stops")
	return cmd
}

func newEventsCommand(g *globalOptions, s streams) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events [OPTIONS] [SERVICE...]",
		Short: "Receive real time events from containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := g.engine()
			if err != nil {
				return err
			}
			name, err := compose.ProjectName(cmd.Context(), g.projectOptions())
			if err != nil {
				return err
			}
			if len(args) > 0 {
				// A service the project lacks is an error, not a wait
				// for events that never come.
				if _, _, err := compose.SelectContainers(cmd.Context(), g.projectOptions(), eng, args); err != nil {
					return err
				}
			}
			err = eng.client(name).Events(cmd.Context(), func(e supervisor.Event) error {
				if len(args) > 0 && !slices.Contains(args, e.Service) {
					return nil
				}
				if asJSON {
					b, _ := json.Marshal(e)
					_, err := fmt.Fprintf(s.out, "%s\n", b)
					return err
				}
				var attrs []string
				for _, k := range slices.Sorted(maps.Keys(e.Attributes)) {
					attrs = append(attrs, k+"="+e.Attributes[k])
				}
				_, err := fmt.Fprintf(s.out, "%s container %s %s (%s)\n", e.Time.Format("2006-01-02 15:04:05.000000"), e.Action, e.ID, strings.Join(attrs, ", "))
				return err
			})
			if cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "Output events as a stream of json objects")
	return cmd
}

func newLsCommand(g *globalOptions, s streams) *cobra.Command {
	var all, quiet bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:   "ls [OPTIONS]",
		Short: "List running compose projects",
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("invalid --format %q: use table or json", format)
			}
			// --filter name=EXPR, docker's name filter: the projects
			// whose name the regular expression matches, any of them
			// when given more than once.
			var names []*regexp.Regexp
			for _, f := range filters {
				k, v, ok := strings.Cut(f, "=")
				if !ok || k != "name" {
					return fmt.Errorf("invalid --filter %q: only name=<name> is supported", f)
				}
				re, err := regexp.Compile(v)
				if err != nil {
					return fmt.Errorf("invalid --filter %q: %w", f, err)
				}
				names = append(names, re)
			}
			eng, err := g.engine()
			if err != nil {
				return err
			}
			ps, err := compose.Projects(cmd.Context(), eng, all)
			if err != nil {
				return err
			}
			if len(names) > 0 {
				ps = slices.DeleteFunc(ps, func(p compose.ProjectStatus) bool {
					return !slices.ContainsFunc(names, func(re *regexp.Regexp) bool { return re.MatchString(p.Name) })
				})
			}
			switch {
			case quiet:
				for _, p := range ps {
					fmt.Fprintln(s.out, p.Name)
				}
			case format == "json":
				if ps == nil {
					ps = []compose.ProjectStatus{}
				}
				b, err := json.Marshal(ps)
				if err != nil {
					return err
				}
				fmt.Fprintf(s.out, "%s\n", b)
			default:
				tw := tabwriter.NewWriter(s.out, 0, 0, 3, ' ', 0)
				fmt.Fprintln(tw, "NAME\tSTATUS\tCONFIG FILES")
				for _, p := range ps {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Status, p.ConfigFiles)
				}
				tw.Flush()
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all stopped Compose projects")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display project names")
	f.StringArrayVar(&filters, "filter", nil, "Filter output based on conditions provided (name=<name>)")
	f.StringVar(&format, "format", "table", "Format the output. Values: [table | json]")
	return cmd
}

func newStatsCommand(g *globalOptions, s streams) *cobra.Command {
	var noStream, all bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [SERVICE]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" && format != "" {
				return fmt.Errorf("invalid --format %q: use table or json", format)
			}
			eng, err := g.engine()
			if err != nil {
				return err
			}
			for {
				_, cs, err := compose.SelectContainers(cmd.Context(), g.projectOptions(), eng, args)
				if err != nil {
					return err
				}
				if !all {
					cs = slices.DeleteFunc(cs, func(c compose.ContainerStatus) bool { return !c.Running() })
				}
				rows, err := sampleStats(cmd.Context(), eng, cs)
				if err != nil {
					return err
				}
				printStats(s.out, rows, format, !noStream)
				if noStream {
					return nil
				}
				if cmd.Context().Err() != nil {
					return nil
				}
			}
		},
	}
	f := cmd.Flags()
	f.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	f.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	f.StringVar(&format, "format", "table", "Format output using table or json")
	f.Bool("no-trunc", false, "Do not truncate output")
	return cmd
}

// statsRow is a container's use, docker stats's columns and JSON fields.
type statsRow struct {
	ID       string `json:"ID"`
	Name     string `json:"Name"`
	CPUPerc  string `json:"CPUPerc"`
	MemUsage string `json:"MemUsage"`
	MemPerc  string `json:"MemPerc"`
	NetIO    string `json:"NetIO"`
	BlockIO  string `json:"BlockIO"`
	PIDs     string `json:"PIDs"`
}

// sampleStats reads each container's cgroup twice, half a second apart,
// for its CPU use in between.
func sampleStats(ctx context.Context, eng *engine, cs []compose.ContainerStatus) ([]statsRow, error) {
	first := map[string]compose.Stats{}
	for _, c := range cs {
		if st, err := eng.Stats(ctx, c.ID); err == nil {
			first[c.ID] = st
		}
	}
	start := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(500 * time.Millisecond):
	}
	elapsed := time.Since(start)
	var rows []statsRow
	for _, c := range cs {
		r := statsRow{ID: c.ID[:12], Name: c.Name, CPUPerc: "0.00%", MemUsage: "0B / 0B", MemPerc: "0.00%", NetIO: "0B / 0B", BlockIO: "0B / 0B", PIDs: "0"}
		st, err := eng.Stats(ctx, c.ID)
		if err == nil {
			if f, ok := first[c.ID]; ok && st.CPUNanos >= f.CPUNanos {
				r.CPUPerc = fmt.Sprintf("%.2f%%", float64(st.CPUNanos-f.CPUNanos)/float64(elapsed.Nanoseconds())*100)
			}
			limit := st.MemoryLimit
			if limit == 0 || limit > 1<<62 {
				limit = hostMemory()
			}
			r.MemUsage = units.BytesSize(float64(st.MemoryBytes)) + " / " + units.BytesSize(float64(limit))
			if limit > 0 {
				r.MemPerc = fmt.Sprintf("%.2f%%", float64(st.MemoryBytes)/float64(limit)*100)
			}
			// docker stats's units: decimal, three significant digits.
			r.NetIO = units.HumanSizeWithPrecision(float64(st.NetRx), 3) + " / " + units.HumanSizeWithPrecision(float64(st.NetTx), 3)
			r.BlockIO = units.HumanSizeWithPrecision(float64(st.BlockRead), 3) + " / " + units.HumanSizeWithPrecision(float64(st.BlockWrite), 3)
			r.PIDs = strconv.FormatUint(st.Pids, 10)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func hostMemory() uint64 {
	var info syscall.Sysinfo_t
	if syscall.Sysinfo(&info) != nil {
		return 0
	}
	return uint64(info.Totalram) * uint64(info.Unit)
}

func printStats(w io.Writer, rows []statsRow, format string, clear bool) {
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, r := range rows {
			enc.Encode(r)
		}
		return
	}
	if clear {
		fmt.Fprint(w, "\x1b[2J\x1b[H")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs)
	}
	tw.Flush()
}

func newPortCommand(g *globalOptions, s streams) *cobra.Command {
	var protocol string
	var index int
	cmd := &cobra.Command{
		Use:   "port [OPTIONS] SERVICE PRIVATE_PORT",
		Short: "Print the public port for a port binding",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			private, err := strconv.Atoi(args[1])
			if err != nil {
				return fmt.Errorf("invalid private port %q", args[1])
			}
			_, cs, err := g.selectContainers(cmd.Context(), args[:1])
			if err != nil {
				return err
			}
			slices.SortFunc(cs, func(a, b compose.ContainerStatus) int { return a.Number() - b.Number() })
			for _, c := range cs {
				if index > 0 && c.Number() != index || index == 0 && c.Number() != 1 && len(cs) > 1 {
					continue
				}
				for _, p := range c.Ports {
					if p.ContainerPort == private && p.Protocol == protocol {
						ip := p.HostIP
						if ip == "" {
							ip = "0.0.0.0"
						}
						fmt.Fprintf(s.out, "%s:%d\n", ip, p.HostPort)
						return nil
					}
				}
			}
			return fmt.Errorf("no port %d/%s is published for service %q", private, protocol, args[0])
		},
	}
	cmd.Flags().StringVar(&protocol, "protocol", "tcp", "tcp or udp")
	cmd.Flags().IntVar(&index, "index", 0, "Index of the container if service has multiple replicas")
	return cmd
}

// selectContainers opens the engine and lists the project's containers of
// services (all when none; one-off ones left out): what logs, top, stats
// and port start with.
func (g *globalOptions) selectContainers(ctx context.Context, services []string) (*engine, []compose.ContainerStatus, error) {
	eng, err := g.engine()
	if err != nil {
		return nil, nil, err
	}
	_, cs, err := compose.SelectContainers(ctx, g.projectOptions(), eng, services)
	return eng, cs, err
}
