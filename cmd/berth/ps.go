package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/internal/hostpaths"
	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/spec"
	"github.com/berth-dev/berth/runtime/supervisor"
)

func newPsCommand(g *globalOptions, s streams) *cobra.Command {
	var o compose.PsOptions
	var quiet, services, noTrunc bool
	var format string
	var status, filters []string
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS] [SERVICE...]",
		Short: "List containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				if _, _, err := parsePsTemplate(format); err != nil {
					return err
				}
			}
			for _, f := range filters {
				k, v, ok := strings.Cut(f, "=")
				if !ok || k != "status" {
					return fmt.Errorf("invalid --filter %q: only status=<status> is supported", f)
				}
				status = append(status, v)
			}
			for _, st := range status {
				switch st {
				case "paused", "restarting", "removing", "running", "dead", "created", "exited":
				default:
					return fmt.Errorf("invalid status %q: use paused, restarting, removing, running, dead, created or exited", st)
				}
			}
			if len(status) > 0 {
				o.All = true // a status asks for those containers, running or not
			}
			eng, err := g.engine()
			if err != nil {
				return err
			}
			o.Services = args
			cs, err := compose.Ps(cmd.Context(), g.projectOptions(), eng, o)
			if err != nil {
				return err
			}
			if len(status) > 0 {
				cs = slices.DeleteFunc(cs, func(c compose.ContainerStatus) bool { return !slices.Contains(status, psState(c)) })
			}
			if services {
				var names []string
				for _, c := range cs {
					if !slices.Contains(names, c.Service()) {
						names = append(names, c.Service())
					}
				}
				for _, n := range names {
					fmt.Fprintln(s.out, n)
				}
				return nil
			}
			return printPs(s.out, cs, psOptions{quiet: quiet, format: format, trunc: !noTrunc}, time.Now())
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.All, "all", "a", false, "Show all stopped containers (including those created by the run command)")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	f.BoolVar(&services, "services", false, "Display services")
	f.StringArrayVar(&status, "status", nil, "Filter services by status. Values: [paused | restarting | removing | running | dead | created | exited]")
	f.StringArrayVar(&filters, "filter", nil, "Filter services by a property (supported filters: status)")
	f.StringVar(&format, "format", "table", "Format the output. Values: [table | json | TEMPLATE | table TEMPLATE] (a Go template of the fields of --format json)")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	f.Bool("orphans", true, "Include orphaned services (not declared by project)")
	return cmd
}

// psRow is a container as `ps --format json` prints it: docker compose's
// fields, one object per line.
type psRow struct {
	Command      string        `json:"Command"`
	CreatedAt    string        `json:"CreatedAt"`
	ExitCode     int           `json:"ExitCode"`
	Health       string        `json:"Health"`
	ID           string        `json:"ID"`
	Image        string        `json:"Image"`
	Labels       string        `json:"Labels"`
	LocalVolumes string        `json:"LocalVolumes"`
	Mounts       string        `json:"Mounts"`
	Name         string        `json:"Name"`
	Names        string        `json:"Names"`
	Networks     string        `json:"Networks"`
	Ports        string        `json:"Ports"`
	Project      string        `json:"Project"`
	Publishers   []psPublisher `json:"Publishers"`
	RunningFor   string        `json:"RunningFor"`
	Service      string        `json:"Service"`
	Size         string        `json:"Size"`
	State        string        `json:"State"`
	Status       string        `json:"Status"`
}

// psPublisher is a published port (docker compose's Publishers entries).
type psPublisher struct {
	URL           string `json:"URL"`
	TargetPort    int    `json:"TargetPort"`
	PublishedPort int    `json:"PublishedPort"`
	Protocol      string `json:"Protocol"`
}

// psOptions say how ps prints: ids only (quiet), the format, and whether
// ID and Command are cut as docker compose cuts them (the first 12 digits;
// 20 characters) unless --no-trunc.
type psOptions struct {
	quiet  bool
	format string
	trunc  bool
}

func printPs(w io.Writer, cs []compose.ContainerStatus, o psOptions, now time.Time) error {
	quiet, format := o.quiet, o.format
	if quiet {
		for _, c := range cs {
			fmt.Fprintln(w, c.ID)
		}
		return nil
	}
	rows := make([]psRow, 0, len(cs))
	for _, c := range cs {
		var labels []string
		for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
			labels = append(labels, k+"="+c.Labels[k])
		}
		ports, publishers := psPorts(c)
		// Mounts and LocalVolumes as docker ps's: a volume by its name
		// (cut to 15 characters), a bind mount by its source; tmpfs
		// mounts are not among them.
		var mounts []string
		localVolumes := 0
		for _, m := range c.Mounts {
			switch {
			case m.Volume != "":
				mounts = append(mounts, ellipsis(m.Volume, 15))
				localVolumes++
			case m.Type == "bind":
				mounts = append(mounts, ellipsis(m.Source, 15))
			}
		}
		id, command := c.ID, strings.Join(c.Command, " ")
		if o.trunc {
			id, command = id[:min(len(id), 12)], ellipsis(command, 20)
		}
		rows = append(rows, psRow{
			Command: strconv.Quote(command), CreatedAt: c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
			ExitCode: c.ExitCode, Health: c.Health, ID: id, Image: c.Image, Labels: strings.Join(labels, ","),
			LocalVolumes: strconv.Itoa(localVolumes), Mounts: strings.Join(mounts, ","), Networks: strings.Join(slices.Sorted(slices.Values(c.Networks)), ","),
			Name: c.Name, Names: c.Name, Project: c.Project(), Publishers: publishers, Ports: ports,
			RunningFor: units.HumanDuration(now.Sub(c.Created)) + " ago", Service: c.Service(), Size: "0B",
			State: psState(c), Status: statusText(c, now),
		})
	}
	if format != "table" && format != "json" {
		t, table, err := parsePsTemplate(format)
		if err != nil {
			return err
		}
		return printPsTemplate(w, t, table, rows)
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Image, r.Command, r.Service, r.RunningFor, r.Status, r.Ports)
	}
	return tw.Flush()
}

// ellipsis cuts s to max characters, the last one "…" when cut (docker
// ps's Ellipsis).
func ellipsis(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}

// psPorts are a container's ports as ps shows them, in docker compose's
// PORTS column (displayPorts), and its Publishers, sorted as docker
// compose's (URL, target, published, protocol): the published ones
// ("127.0.0.1:8001->8000/tcp") and those only exposed ("80/tcp"), these
// without URL nor published port.
func psPorts(c compose.ContainerStatus) (string, []psPublisher) {
	publishers := []psPublisher{}
	if !c.Running() {
		return "", publishers // a stopped container holds no port
	}
	published := map[string]bool{}
	for _, p := range c.Ports {
		ip := p.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		publishers = append(publishers, psPublisher{URL: ip, TargetPort: p.ContainerPort, PublishedPort: p.HostPort, Protocol: p.Protocol})
		published[fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)] = true
	}
	for _, e := range c.Exposed {
		if published[e] {
			continue
		}
		port, proto, _ := strings.Cut(e, "/")
		n, err := strconv.Atoi(port)
		if err != nil {
			continue
		}
		publishers = append(publishers, psPublisher{TargetPort: n, Protocol: proto})
	}
	ports := displayPorts(publishers)
	slices.SortStableFunc(publishers, func(a, b psPublisher) int {
		return cmp.Or(strings.Compare(a.URL, b.URL), cmp.Compare(a.TargetPort, b.TargetPort), cmp.Compare(a.PublishedPort, b.PublishedPort), strings.Compare(a.Protocol, b.Protocol))
	})
	return ports, publishers
}

// displayPorts writes ports as docker ps and docker compose ps do. By
// container port (then address, published port, protocol): a run of
// consecutive ports exposed, or published each on the same port of one
// address, is one entry ("8000-8002/tcp", "127.0.0.1:20000-20999->20000-20999/tcp"),
// ended by the first port that does not continue it; the runs still open
// at the end follow, in the order they began; the ports published on
// another port come last ("0.0.0.0:8080->80/tcp").
func displayPorts(publishers []psPublisher) string {
	ps := slices.Clone(publishers)
	slices.SortStableFunc(ps, func(a, b psPublisher) int {
		return cmp.Or(cmp.Compare(a.TargetPort, b.TargetPort), compareAddr(a.URL, b.URL), cmp.Compare(a.PublishedPort, b.PublishedPort), strings.Compare(a.Protocol, b.Protocol))
	})
	type run struct {
		addr, proto string
		first, last int
	}
	format := func(r *run) string {
		ports := strconv.Itoa(r.first)
		if r.last != r.first {
			ports += "-" + strconv.Itoa(r.last)
		}
		if r.addr != "" {
			ports = net.JoinHostPort(r.addr, ports) + "->" + ports
		}
		return ports + "/" + r.proto
	}
	var out, remapped []string
	runs := map[string]*run{}
	var began []string // the keys of runs, in the order they began
	for _, p := range ps {
		if p.URL != "" && p.PublishedPort != p.TargetPort {
			remapped = append(remapped, fmt.Sprintf("%s->%d/%s", net.JoinHostPort(p.URL, strconv.Itoa(p.PublishedPort)), p.TargetPort, p.Protocol))
			continue
		}
		key := p.URL + "/" + p.Protocol
		r := runs[key]
		switch {
		case r == nil:
			runs[key] = &run{addr: p.URL, proto: p.Protocol, first: p.TargetPort, last: p.TargetPort}
			began = append(began, key)
		case p.TargetPort == r.last+1:
			r.last = p.TargetPort
		default:
			out = append(out, format(r))
			runs[key] = &run{addr: p.URL, proto: p.Protocol, first: p.TargetPort, last: p.TargetPort}
		}
	}
	for _, key := range began {
		out = append(out, format(runs[key]))
	}
	return strings.Join(append(out, remapped...), ", ")
}

// compareAddr orders addresses as netip does, those that do not parse
// (none: exposed only) first.
func compareAddr(a, b string) int {
	x, errA := netip.ParseAddr(a)
	y, errB := netip.ParseAddr(b)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return x.Compare(y)
}

// psState is the container's state as Docker names it.
func psState(c compose.ContainerStatus) string {
	if c.Restarting && c.Status == "exited" {
		return "restarting"
	}
	return c.Status
}

// statusText says what a container does as docker does: "Up 2 minutes
// (healthy)", "Exited (3) 5 seconds ago", "Restarting (1) 2 seconds ago",
// "Created".
func statusText(c compose.ContainerStatus, now time.Time) string {
	health := ""
	switch c.Health {
	case "starting":
		health = " (health: starting)"
	case "healthy", "unhealthy":
		health = " (" + c.Health + ")"
	}
	switch {
	case c.Status == "running":
		return "Up " + units.HumanDuration(now.Sub(c.StartedAt)) + health
	case c.Status == "paused":
		return "Up " + units.HumanDuration(now.Sub(c.StartedAt)) + " (Paused)"
	case c.Status == "exited" && c.Restarting:
		return fmt.Sprintf("Restarting (%d) %s ago", c.ExitCode, units.HumanDuration(now.Sub(c.FinishedAt)))
	case c.Status == "exited":
		return fmt.Sprintf("Exited (%d) %s ago", c.ExitCode, units.HumanDuration(now.Sub(c.FinishedAt)))
	}
	return "Created"
}

func newRmCommand(g *globalOptions, s streams) *cobra.Command {
	var o compose.RmOptions
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] [SERVICE...]",
		Short: "Removes stopped service containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := g.engine()
			if err != nil {
				return err
			}
			o.Services = args
			pr := g.newProgress(s.err, false)
			o.Progress, o.Warn = pr.event, pr.warn
			asked := false
			o.Confirm = func(names []string) bool {
				asked = true
				if force {
					// As docker compose: said, not asked.
					fmt.Fprintf(s.out, "Going to remove %s\n", strings.Join(names, ", "))
					return true
				}
				fmt.Fprintf(s.err, "Going to remove %s\n? Are you sure? [y/N] ", strings.Join(names, ", "))
				line, _ := bufio.NewReader(s.in).ReadString('\n')
				return strings.EqualFold(strings.TrimSpace(line), "y")
			}
			_, err = compose.Rm(cmd.Context(), g.projectOptions(), eng, o)
			if err == nil && !asked {
				fmt.Fprintln(s.err, "No stopped containers")
			}
			return err
		},
	}
	f := cmd.Flags()
	// -f too: see localShorthands.
	f.BoolVar(&force, "force", false, "Don't ask to confirm removal")
	f.BoolVarP(&o.Stop, "stop", "s", false, "Stop the containers, if required, before removing")
	f.BoolVarP(&o.Volumes, "volumes", "v", false, "Remove any anonymous volumes attached to containers")
	return cmd
}

// containerNetworks are the networks a container is on, as docker ps
// names them: its bridged networks, or its network mode host or none.
func containerNetworks(c spec.Container) []string {
	switch c.NetworkMode {
	case "host", "none":
		return []string{c.NetworkMode}
	}
	var names []string
	for _, a := range c.Networks {
		names = append(names, a.Network)
	}
	return names
}

// containerStore gives compose the runtime's containers, with what their
// supervisors know of them (health, restarts).
type containerStore struct {
	rt   *container.Runtime
	root string // BERTH_ROOT
}

func (c containerStore) List(ctx context.Context) ([]compose.ContainerStatus, error) {
	ids, err := c.rt.List(ctx)
	if err != nil {
		return nil, err
	}
	states := map[string]supervisor.State{}
	var out []compose.ContainerStatus
	for _, id := range ids {
		ct, err := c.rt.Load(ctx, id)
		if err != nil {
			continue // removed meanwhile, or half created
		}
		st, err := ct.State(ctx)
		if err != nil {
			continue
		}
		cs := compose.ContainerStatus{
			ID: ct.ID, Name: ct.Spec.Name, Image: ct.Spec.Image, Command: ct.Spec.Process.Args,
			Labels: ct.Spec.Labels, Created: st.Created, StartedAt: st.StartedAt, Status: st.Status, Ports: ct.Spec.Ports, Exposed: ct.Spec.Exposed,
			Mounts: ct.Spec.Mounts, Networks: containerNetworks(ct.Spec),
		}
		if st.Exit != nil {
			cs.ExitCode, cs.FinishedAt = st.Exit.Code, st.Exit.FinishedAt
		}
		if p := cs.Project(); p != "" && c.root != "" {
			sv, ok := states[p]
			if !ok {
				sv, _ = supervisor.ReadState(hostpaths.Paths{Root: c.root}.SupervisorState(p))
				states[p] = sv
			}
			if s, ok := sv.Containers[ct.ID]; ok {
				cs.RestartCount, cs.Restarting = s.RestartCount, s.Restarting
				if s.Health != nil && cs.Running() {
					cs.Health = s.Health.Status
					if n := len(s.Health.Log); n > 0 {
						cs.HealthOutput = s.Health.Log[n-1].Output
					}
				}
			}
		}
		out = append(out, cs)
	}
	return out, nil
}

func (c containerStore) Remove(ctx context.Context, id string, stop bool) error {
	ct, err := c.rt.Load(ctx, id)
	if err != nil {
		return err
	}
	return ct.Delete(ctx, stop)
}
