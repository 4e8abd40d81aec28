package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/supervisor"
)

func newPsCommand(g *globalOptions, s streams) *cobra.Command {
	var o compose.PsOptions
	var quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS] [SERVICE...]",
		Short: "List containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("invalid --format %q: use table or json", format)
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
			return printPs(s.out, cs, quiet, format, time.Now())
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.All, "all", "a", false, "Show all stopped containers")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	f.StringVar(&format, "format", "table", "Format the output. Values: [table | json]")
	return cmd
}

// psRow is a container as `ps --format json` prints it (docker compose's
// field names).
type psRow struct {
	ID       string `json:"ID"`
	Name     string `json:"Name"`
	Image    string `json:"Image"`
	Command  string `json:"Command"`
	Service  string `json:"Service"`
	Project  string `json:"Project"`
	Created  int64  `json:"CreatedAt"`
	State    string `json:"State"`
	Status   string `json:"Status"`
	ExitCode int    `json:"ExitCode"`
}

func printPs(w io.Writer, cs []compose.ContainerStatus, quiet bool, format string, now time.Time) error {
	if quiet {
		for _, c := range cs {
			fmt.Fprintln(w, c.ID)
		}
		return nil
	}
	rows := make([]psRow, 0, len(cs))
	for _, c := range cs {
		rows = append(rows, psRow{
			ID: c.ID, Name: c.Name, Image: c.Image, Command: fmt.Sprintf("%q", strings.Join(c.Command, " ")),
			Service: c.Service(), Project: c.Labels[compose.ProjectLabel], Created: c.Created.Unix(),
			State: c.Status, Status: statusText(c, now), ExitCode: c.ExitCode,
		})
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%s\t\n", r.Name, r.Image, truncate(r.Command, 22), r.Service,
			units.HumanDuration(now.Sub(time.Unix(r.Created, 0))), r.Status)
	}
	return tw.Flush()
}

// statusText says what a container does as docker does: "Up 2 minutes",
// "Exited (3) 5 seconds ago", "Created".
func statusText(c compose.ContainerStatus, now time.Time) string {
	switch c.Status {
	case "running":
		return "Up " + units.HumanDuration(now.Sub(c.StartedAt))
	case "paused":
		return "Up " + units.HumanDuration(now.Sub(c.StartedAt)) + " (Paused)"
	case "exited":
		return fmt.Sprintf("Exited (%d) %s ago", c.ExitCode, units.HumanDuration(now.Sub(c.FinishedAt)))
	}
	return "Created"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-2] + "…\""
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
			if !force {
				o.Confirm = func(names []string) bool {
					fmt.Fprintf(s.err, "Going to remove %s\n? Are you sure? [y/N] ", strings.Join(names, ", "))
					line, _ := bufio.NewReader(s.in).ReadString('\n')
					return strings.EqualFold(strings.TrimSpace(line), "y")
				}
			}
			removed, err := compose.Rm(cmd.Context(), g.projectOptions(), eng, o)
			for _, name := range removed {
				fmt.Fprintf(s.err, " Container %s  Removed\n", name)
			}
			if err == nil && len(removed) == 0 && o.Confirm == nil {
				fmt.Fprintln(s.err, "No stopped containers")
			}
			return err
		},
	}
	f := cmd.Flags()
	// -f too: see localShorthands.
	f.BoolVar(&force, "force", false, "Don't ask to confirm removal")
	f.BoolVarP(&o.Stop, "stop", "s", false, "Stop the containers, if required, before removing")
	return cmd
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
			Labels: ct.Spec.Labels, Created: st.Created, StartedAt: st.StartedAt, Status: st.Status,
		}
		if st.Exit != nil {
			cs.ExitCode, cs.FinishedAt = st.Exit.Code, st.Exit.FinishedAt
		}
		if p := cs.Project(); p != "" && c.root != "" {
			sv, ok := states[p]
			if !ok {
				sv, _ = supervisor.ReadState(supervisorState(c.root, p))
				states[p] = sv
			}
			if s, ok := sv.Containers[ct.ID]; ok {
				cs.RestartCount, cs.Restarting = s.RestartCount, s.Restarting
				if s.Health != nil && cs.Running() {
					cs.Health = s.Health.Status
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
