package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fatih/color"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
)

// progressRenderer prints what the verbs do to containers, as docker
// compose does: on a terminal a line per resource, redrawn in place, with
// its state and elapsed time under a "[+] Running n/m" header; otherwise
// " Container demo-web-1  Started" per change (plain), one JSON object per
// change (json), or nothing (quiet).
type progressRenderer struct {
	w    io.Writer
	mode string
	mu   sync.Mutex

	// tty mode
	order []string
	state map[string]compose.Progress
	start map[string]time.Time
	took  map[string]time.Duration
	drawn int
}

func (g *globalOptions) newProgress(w io.Writer, quiet bool) *progressRenderer {
	return &progressRenderer{w: w, mode: g.progressMode(w, quiet),
		state: map[string]compose.Progress{}, start: map[string]time.Time{}, took: map[string]time.Duration{}}
}

// finalStatus tells the statuses after which a resource waits for nothing.
var finalStatus = map[string]bool{
	compose.StatusCreated: true, compose.StatusStarted: true, compose.StatusRunning: true, compose.StatusHealthy: true,
	compose.StatusExited: true, compose.StatusStopped: true, compose.StatusRemoved: true, compose.StatusRecreated: true,
	compose.StatusRestarted: true, compose.StatusKilled: true, compose.StatusError: true, "Paused": true, "Unpaused": true,
	"Saved": true, "Restored": true, compose.StatusCopied: true,
}

func (r *progressRenderer) event(p compose.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.mode {
	case "quiet":
	case "json":
		msg := map[string]string{"id": p.Resource, "status": p.Status}
		if p.Err != nil {
			msg["error"] = p.Err.Error()
		}
		b, _ := json.Marshal(msg)
		fmt.Fprintf(r.w, "%s\n", b)
	case "tty":
		if _, ok := r.state[p.Resource]; !ok {
			r.order = append(r.order, p.Resource)
		}
		if prev, ok := r.state[p.Resource]; !ok || finalStatus[prev.Status] {
			r.start[p.Resource] = time.Now()
		}
		r.state[p.Resource] = p
		if finalStatus[p.Status] {
			r.took[p.Resource] = time.Since(r.start[p.Resource])
		}
		r.redraw()
	default:
		if p.Err != nil {
			fmt.Fprintf(r.w, " %s  %s: %v\n", p.Resource, p.Status, p.Err)
			return
		}
		fmt.Fprintf(r.w, " %s  %s\n", p.Resource, p.Status)
	}
}

// redraw rewrites the block of lines drawn so far. r.mu is held.
func (r *progressRenderer) redraw() {
	var b strings.Builder
	if r.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", r.drawn)
	}
	done := 0
	for _, res := range r.order {
		if finalStatus[r.state[res].Status] {
			done++
		}
	}
	fmt.Fprintf(&b, "\x1b[2K[+] Running %d/%d\n", done, len(r.order))
	for _, res := range r.order {
		p := r.state[res]
		mark := "⠿"
		switch {
		case p.Status == compose.StatusError:
			mark = "✘"
		case finalStatus[p.Status]:
			mark = "✔"
		}
		took, ok := r.took[res]
		if !ok || !finalStatus[p.Status] {
			took = time.Since(r.start[res])
		}
		line := fmt.Sprintf(" %s %s  %s", mark, res, p.Status)
		if p.Err != nil {
			line += ": " + p.Err.Error()
		}
		fmt.Fprintf(&b, "\x1b[2K%-60s %.1fs\n", line, took.Seconds())
	}
	r.drawn = len(r.order) + 1
	io.WriteString(r.w, b.String())
}

func (r *progressRenderer) warn(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.mode {
	case "quiet":
	case "tty":
		// Above the block, which is drawn again under it.
		if r.drawn > 0 {
			fmt.Fprintf(r.w, "\x1b[%dA\x1b[J", r.drawn)
			r.drawn = 0
		}
		io.WriteString(r.w, warningLine(msg))
		if len(r.order) > 0 {
			r.redraw()
		}
	default:
		io.WriteString(r.w, warningLine(msg))
	}
}

// warningLine is a warning as docker compose prints its own and as the
// Compose loader prints its (an unset variable, an obsolete version):
// logrus's text format, "WARN[0000] msg" on a terminal and
// `time="..." level=warning msg="..."` otherwise, so that every warning of
// one command looks alike.
func warningLine(msg string) string {
	l := logrus.StandardLogger()
	e := logrus.NewEntry(l)
	e.Time, e.Level, e.Message = time.Now(), logrus.WarnLevel, msg
	b, err := l.Formatter.Format(e)
	if err != nil {
		return "WARN " + msg + "\n"
	}
	return string(b)
}

// timeoutFlag is -t/--timeout: seconds, unset means the containers' own.
type timeoutFlag struct{ d *time.Duration }

func (t *timeoutFlag) String() string {
	if t.d == nil {
		return ""
	}
	return strconv.Itoa(int(t.d.Seconds()))
}

func (t *timeoutFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("timeout %q: a number of seconds", s)
	}
	d := time.Duration(n) * time.Second
	if n < 0 {
		d = 0
	}
	t.d = &d
	return nil
}

func (t *timeoutFlag) Type() string { return "int" }

type upFlags struct {
	o                                          compose.UpRunOptions
	detach, quietPull, noColor, noLogPrefix    bool
	timestamps, attachDeps, abortOnExit        bool
	abortOnFailure, build, noBuild, yes        bool
	exitCodeFrom, pull                         string
	scale, attach, noAttach                    []string
	timeout                                    timeoutFlag
	waitTimeout                                int
	menu                                       bool
	noStartFlagSet, removeOrphansSet, waitFlag bool
}

func newUpCommand(g *globalOptions, s streams) *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "up [OPTIONS] [SERVICE...]",
		Short: "Create and start containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			f.removeOrphansSet = cmd.Flags().Changed("remove-orphans")
			return runUp(cmd.Context(), g, s, &f, args)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.detach, "detach", "d", false, "Detached mode: Run containers in the background")
	fl.BoolVar(&f.o.ForceRecreate, "force-recreate", false, "Recreate containers even if their configuration and image haven't changed")
	fl.BoolVar(&f.o.NoRecreate, "no-recreate", false, "If containers already exist, don't recreate them")
	fl.BoolVar(&f.o.AlwaysRecreateDeps, "always-recreate-deps", false, "Recreate dependent containers")
	fl.BoolVar(&f.o.NoDeps, "no-deps", false, "Don't start linked services")
	fl.BoolVar(&f.o.RemoveOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	fl.BoolVar(&f.o.NoStart, "no-start", false, "Don't start the services after creating them")
	fl.BoolVarP(&f.o.RenewAnonVolumes, "renew-anon-volumes", "V", false, "Recreate anonymous volumes instead of retrieving data from the previous containers")
	fl.StringArrayVar(&f.scale, "scale", nil, "Scale SERVICE to NUM instances. Overrides the `scale` setting in the Compose file if present")
	fl.VarP(&f.timeout, "timeout", "t", "Use this timeout in seconds for container shutdown when attached or when containers are already running")
	fl.StringVar(&f.pull, "pull", "policy", `Pull image before running ("always"|"missing"|"never")`)
	fl.BoolVar(&f.quietPull, "quiet-pull", false, "Pull without printing progress information")
	fl.BoolVar(&f.noColor, "no-color", false, "Produce monochrome output")
	fl.BoolVar(&f.noLogPrefix, "no-log-prefix", false, "Don't print prefix in logs")
	fl.BoolVar(&f.timestamps, "timestamps", false, "Show timestamps")
	fl.StringArrayVar(&f.attach, "attach", nil, "Restrict attaching to the specified services")
	fl.StringArrayVar(&f.noAttach, "no-attach", nil, "Do not attach (stream logs) to the specified services")
	fl.BoolVar(&f.attachDeps, "attach-dependencies", false, "Automatically attach to log output of dependent services")
	fl.BoolVar(&f.abortOnExit, "abort-on-container-exit", false, "Stops all containers if any container was stopped. Incompatible with -d")
	fl.BoolVar(&f.abortOnFailure, "abort-on-container-failure", false, "Stops all containers if any container exited with failure. Incompatible with -d")
	fl.StringVar(&f.exitCodeFrom, "exit-code-from", "", "Return the exit code of the selected service container. Implies --abort-on-container-exit")
	fl.BoolVar(&f.waitFlag, "wait", false, "Wait for services to be running|healthy. Implies detached mode.")
	fl.IntVar(&f.waitTimeout, "wait-timeout", 0, "Maximum duration in seconds to wait for the project to be running|healthy")
	fl.BoolVar(&f.build, "build", false, "Build images before starting containers")
	fl.BoolVar(&f.noBuild, "no-build", false, "Don't build an image, even if it's policy")
	fl.BoolVarP(&f.yes, "yes", "y", false, `Assume "yes" as answer to all prompts and run non-interactively`)
	fl.BoolVar(&f.menu, "menu", false, "Enable interactive shortcuts when running attached (not supported)")
	return cmd
}

// newScaleCommand is docker compose's scale: up -d of the services named,
// each at its number of replicas (existing ones kept, the highest numbers
// removed first), their dependencies started unless --no-deps.
func newScaleCommand(g *globalOptions, s streams) *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "scale [SERVICE=REPLICAS...]",
		Short: "Scale services",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			scale, err := parseScale(args)
			if err != nil {
				return err
			}
			services := slices.Sorted(maps.Keys(scale))
			f.detach, f.scale, f.pull = true, args, "policy"
			return runUp(cmd.Context(), g, s, &f, services)
		},
	}
	cmd.Flags().BoolVar(&f.o.NoDeps, "no-deps", false, "Don't start linked services")
	return cmd
}

// pullFlag checks --pull; "policy" (the default) defers to the services'.
func pullFlag(v string) (string, error) {
	switch v {
	case "policy", "":
		return "", nil
	case "always", "missing", "never":
		return v, nil
	}
	return "", fmt.Errorf("invalid --pull %q: use always, missing or never", v)
}

func parseScale(scale []string) (map[string]int, error) {
	out := map[string]int{}
	for _, s := range scale {
		name, num, ok := strings.Cut(s, "=")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("invalid --scale %q: use SERVICE=NUM", s)
		}
		out[name] = n
	}
	return out, nil
}

func runUp(ctx context.Context, g *globalOptions, s streams, f *upFlags, args []string) error {
	if f.build {
		return fmt.Errorf("up --build: berth does not build images; load them with `berth load -i FILE`")
	}
	if f.exitCodeFrom != "" {
		f.abortOnExit = true
		f.o.ExitCodeFrom = f.exitCodeFrom
	}
	if f.waitFlag {
		f.detach = true
		f.o.Wait = true
		f.o.WaitTimeout = time.Duration(f.waitTimeout) * time.Second
	}
	if f.detach && (f.abortOnExit || f.abortOnFailure) {
		return fmt.Errorf("--abort-on-container-exit and --abort-on-container-failure cannot be combined with --detach")
	}
	if f.abortOnExit && f.abortOnFailure {
		return fmt.Errorf("--abort-on-container-exit and --abort-on-container-failure cannot be combined")
	}
	if !f.removeOrphansSet {
		if v, ok := g.getenv("COMPOSE_REMOVE_ORPHANS"); ok {
			f.o.RemoveOrphans, _ = strconv.ParseBool(v)
		}
	}
	var err error
	if f.o.Pull, err = pullFlag(f.pull); err != nil {
		return err
	}
	if f.o.Scale, err = parseScale(f.scale); err != nil {
		return err
	}
	f.o.Services = args
	f.o.Compatibility = g.compatibility
	f.o.Timeout = f.timeout.d
	if g.parallel > 0 {
		f.o.Parallel = g.parallel
	}
	pr := g.newProgress(s.err, false)
	f.o.Progress, f.o.Warn = pr.event, pr.warn
	var pullOut io.Writer = s.err
	if f.quietPull {
		pullOut = io.Discard
	}
	pulls := newPullRenderer(pullOut, g.progressMode(s.err, f.quietPull))
	f.o.PullEvents = pulls.event

	images, err := g.imageStore()
	if err != nil {
		return err
	}
	eng, err := g.engine()
	if err != nil {
		return err
	}
	lo := g.projectOptions()
	lo.Services = args

	// Ctrl-C during the start goes on to stop what started, attached or
	// not, as docker compose does.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	upCtx, cancelUp := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelUp()
	interrupted := make(chan struct{})
	upDone := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			close(interrupted)
			cancelUp()
		case <-upDone:
		}
	}()

	began := time.Now()
	res, err := compose.Up(upCtx, lo, g.environMap(), images, eng, f.o)
	close(upDone)
	pulls.close()
	select {
	case <-interrupted:
		return gracefulStop(ctx, g, s, eng, f, sigs)
	default:
	}
	if err != nil {
		return err
	}
	if f.detach || f.o.NoStart {
		return nil
	}
	return attachUp(context.WithoutCancel(ctx), g, s, eng, f, res, sigs, began)
}

// gracefulStop stops the project after a Ctrl-C, a second one kills it;
// berth then exits with 130, as docker compose does.
func gracefulStop(ctx context.Context, g *globalOptions, s streams, eng *engine, f *upFlags, sigs chan os.Signal) error {
	fmt.Fprintln(s.err, "Gracefully stopping... (press Ctrl+C again to force)")
	stopProject(ctx, g, s, eng, f, f.o.Services, sigs)
	return exitCode(130)
}

// stopProject stops the services `up` brought up (all when services is
// empty); a signal meanwhile kills them, and a third one gives up waiting.
func stopProject(ctx context.Context, g *globalOptions, s streams, eng *engine, f *upFlags, services []string, sigs chan os.Signal) {
	po := g.projectOptions()
	stopCtx := context.WithoutCancel(ctx)
	done := make(chan error, 1)
	pr := g.newProgress(s.err, false)
	go func() {
		done <- compose.Stop(stopCtx, po, eng, compose.ActionOptions{Services: services, Timeout: f.timeout.d, Progress: pr.event})
	}()
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintln(s.err, err)
		}
	case <-sigs:
		killed := make(chan struct{})
		go func() {
			compose.Kill(stopCtx, po, eng, compose.ActionOptions{Services: services, Progress: pr.event})
			<-done
			close(killed)
		}()
		select {
		case <-killed:
		case <-sigs:
		}
	}
}

// attachUp prints the logs of the attached services until their containers
// stop for good, as `docker compose up` does without -d. A Ctrl-C, or an
// exit with --abort-on-container-exit, stops the project while its last
// lines are still printed.
//
// Only what the containers write from the start of `up` (began) on is
// shown, as docker compose attaches without the logs: not the output of
// an earlier run of a container up starts again, but every run of one its
// restart policy restarts meanwhile.
func attachUp(ctx context.Context, g *globalOptions, s streams, eng *engine, f *upFlags, res *compose.UpResult, sigs chan os.Signal, began time.Time) error {
	attached := res.Services
	switch {
	case len(f.attach) > 0:
		attached = f.attach
	case len(f.o.Services) > 0 && !f.attachDeps:
		attached = f.o.Services
	}
	attached = slices.DeleteFunc(slices.Clone(attached), func(s string) bool { return slices.Contains(f.noAttach, s) })
	var cs []compose.ContainerStatus
	for _, c := range res.Containers {
		if slices.Contains(attached, c.Service()) {
			cs = append(cs, c)
		}
	}
	// The services named on the command line are those whose end ends
	// up (--attach-dependencies follows their dependencies too, but does
	// not wait for them); without names, every attached one. A stop
	// stops all that is followed.
	required := func(c compose.ContainerStatus) bool {
		return len(f.o.Services) == 0 || slices.Contains(f.o.Services, c.Service())
	}
	var stopServices []string
	if len(f.o.Services) > 0 {
		stopServices = slices.Clone(f.o.Services)
		for _, c := range cs {
			if !slices.Contains(stopServices, c.Service()) {
				stopServices = append(stopServices, c.Service())
			}
		}
	}
	fmt.Fprintf(s.out, "Attaching to %s\n", strings.Join(containerNames(cs), ", "))
	pf := newLogPrinter(s.out, cs, f.noColor, f.noLogPrefix, f.timestamps)
	pf.stderr = s.err // as docker compose up attaches: a container's stderr to berth's

	var mu sync.Mutex
	code := 0
	// from is the service whose exit is up's: --exit-code-from's, else the
	// first to exit with --abort-on-container-exit (or to fail, with
	// --abort-on-container-failure), as docker compose's log printer has
	// it. The exits of the containers that the abort stops do not count.
	from := f.exitCodeFrom
	var stopping sync.Once
	stopped := make(chan struct{})
	stopBegan := false // under mu
	stop := func(before func()) {
		stopping.Do(func() {
			stopBegan = true
			go func() {
				before()
				stopProject(ctx, g, s, eng, f, stopServices, sigs)
				close(stopped)
			}()
		})
	}
	exited := func(c compose.ContainerStatus) bool {
		if c.Status != "exited" {
			return false
		}
		pf.exited(c)
		mu.Lock()
		defer mu.Unlock()
		abort := f.abortOnExit || f.abortOnFailure && c.ExitCode != 0
		if abort && from == "" {
			from = c.Service()
		}
		if c.Service() == from {
			code = c.ExitCode
		}
		if abort {
			stop(func() { fmt.Fprintf(s.out, "Aborting on container exit... (%s)\n", c.Name) })
		}
		return false
	}
	wasInterrupted := false
	followCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			mu.Lock()
			wasInterrupted = true
			stop(func() { fmt.Fprintln(s.err, "Gracefully stopping... (press Ctrl+C again to force)") })
			mu.Unlock()
		case <-followCtx.Done():
		}
	}()
	go func() {
		// Once stopped, what the containers wrote is read within a
		// moment; a container that something started again meanwhile
		// does not keep up following.
		select {
		case <-stopped:
			select {
			case <-time.After(3 * time.Second):
				cancel()
			case <-followCtx.Done():
			}
		case <-followCtx.Done():
		}
	}()
	since := began.Add(-time.Millisecond)
	err := compose.Follow(followCtx, eng, cs, compose.FollowOptions{Follow: true, Tail: -1, Since: since, Exited: exited, Required: required}, pf.line)
	cancel()
	mu.Lock()
	wait := stopBegan
	mu.Unlock()
	if wait {
		<-stopped
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if wasInterrupted {
		return exitCode(130)
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

func containerNames(cs []compose.ContainerStatus) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.DisplayName())
	}
	return names
}

// logPrinter prints container output as docker compose does:
// "name  | line", the name padded to the longest and coloured per service.
type logPrinter struct {
	mu sync.Mutex
	w  io.Writer
	// stderr, when not nil, takes the lines the containers wrote to
	// their stderr (up); logs writes both streams to w, as docker
	// compose logs does.
	stderr     io.Writer
	width      int
	noPrefix   bool
	timestamps bool
	colors     map[string]*color.Color
	noColor    bool
}

var logColors = []color.Attribute{color.FgCyan, color.FgYellow, color.FgGreen, color.FgMagenta, color.FgBlue,
	color.FgHiCyan, color.FgHiYellow, color.FgHiGreen, color.FgHiMagenta, color.FgHiBlue}

func newLogPrinter(w io.Writer, cs []compose.ContainerStatus, noColor, noPrefix, timestamps bool) *logPrinter {
	p := &logPrinter{w: w, noPrefix: noPrefix, timestamps: timestamps, colors: map[string]*color.Color{}, noColor: noColor || color.NoColor}
	for _, c := range cs {
		p.width = max(p.width, len(c.DisplayName()))
	}
	return p
}

// colorOf is a service's colour: stable across runs, from its name.
func (p *logPrinter) colorOf(service string) *color.Color {
	if c, ok := p.colors[service]; ok {
		return c
	}
	h := fnv.New32a()
	h.Write([]byte(service))
	c := color.New(logColors[h.Sum32()%uint32(len(logColors))])
	if p.noColor {
		c.DisableColor()
	} else {
		c.EnableColor()
	}
	p.colors[service] = c
	return c
}

func (p *logPrinter) prefix(c compose.ContainerStatus) string {
	if p.noPrefix {
		return ""
	}
	name := c.DisplayName()
	if len(name) > p.width {
		p.width = len(name)
	}
	return p.colorOf(c.Service()).Sprintf("%-*s | ", p.width, name)
}

func (p *logPrinter) line(l compose.LogLine) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	b.WriteString(p.prefix(l.Container))
	if p.timestamps {
		b.WriteString(l.Time.Format(time.RFC3339Nano))
		b.WriteByte(' ')
	}
	b.Write(l.Line)
	if !strings.HasSuffix(b.String(), "\n") {
		b.WriteByte('\n')
	}
	w := p.w
	if p.stderr != nil && l.Stream == "stderr" {
		w = p.stderr
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (p *logPrinter) exited(c compose.ContainerStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s exited with code %d\n", p.colorOf(c.Service()).Sprint(c.DisplayName()), c.ExitCode)
}
