package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/volume"
)

// newSnapshotCommand makes `berth snapshot save|restore|ls|rm`: the
// project's named volumes saved and put back in constant time.
func newSnapshotCommand(g *globalOptions, s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot COMMAND",
		Short: "Save and restore the project's named volumes",
		Long: "Save the named volumes of the project's services at one instant and put them back later,\n" +
			"in a time that does not depend on the size of the data (the volumes are btrfs subvolumes).\n" +
			"`down` and `down -v` keep snapshots; `snapshot rm` removes them.",
	}
	save := &cobra.Command{
		Use:   "save NAME [SERVICE...]",
		Short: "Save the named volumes of the services (all when none); their running containers are paused meanwhile",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := g.engine()
			if err != nil {
				return err
			}
			_, err = compose.SnapshotSave(cmd.Context(), g.projectOptions(), eng,
				compose.SnapshotOptions{Name: args[0], Services: args[1:], Progress: g.newProgress(s.err, false).event})
			return err
		},
	}
	restore := &cobra.Command{
		Use:   "restore NAME",
		Short: "Put the volumes of a snapshot back; the containers using them are killed, then started again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := g.engine()
			if err != nil {
				return err
			}
			_, err = compose.SnapshotRestore(cmd.Context(), g.projectOptions(), eng,
				compose.SnapshotOptions{Name: args[0], Progress: g.newProgress(s.err, false).event})
			return err
		},
	}
	var quiet bool
	var format string
	ls := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List the project's snapshots",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("invalid --format %q: use table or json", format)
			}
			eng, err := g.engine()
			if err != nil {
				return err
			}
			snaps, err := compose.Snapshots(cmd.Context(), g.projectOptions(), eng)
			if err != nil {
				return err
			}
			return printSnapshots(s, snaps, quiet, format)
		},
	}
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display snapshot names")
	ls.Flags().StringVar(&format, "format", "table", "Format the output. Values: [table | json]")
	rm := &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove snapshots",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := g.engine()
			if err != nil {
				return err
			}
			return compose.SnapshotRemove(cmd.Context(), g.projectOptions(), eng, args, g.newProgress(s.err, false).event)
		},
	}
	cmd.AddCommand(save, restore, ls, rm)
	return cmd
}

// snapshotJSON is one snapshot of `snapshot ls --format json`, one object
// per line like docker compose's listings.
type snapshotJSON struct {
	Name      string   `json:"Name"`
	Project   string   `json:"Project"`
	CreatedAt string   `json:"CreatedAt"`
	Services  []string `json:"Services"`
	Volumes   []string `json:"Volumes"`
}

func printSnapshots(s streams, snaps []*volume.Snapshot, quiet bool, format string) error {
	volumeNames := func(sn *volume.Snapshot) []string {
		var out []string
		for _, v := range sn.Volumes {
			out = append(out, v.Name)
		}
		return out
	}
	switch {
	case quiet:
		for _, sn := range snaps {
			fmt.Fprintln(s.out, sn.Name)
		}
	case format == "json":
		for _, sn := range snaps {
			b, err := json.Marshal(snapshotJSON{Name: sn.Name, Project: sn.Project, CreatedAt: sn.Created.Format(time.RFC3339),
				Services: sn.Services, Volumes: volumeNames(sn)})
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "%s\n", b)
		}
	default:
		tw := tabwriter.NewWriter(s.out, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCREATED\tSERVICES\tVOLUMES")
		for _, sn := range snaps {
			fmt.Fprintf(tw, "%s\t%s ago\t%s\t%s\n", sn.Name, units.HumanDuration(time.Since(sn.Created)),
				strings.Join(sn.Services, ","), strings.Join(volumeNames(sn), ","))
		}
		tw.Flush()
	}
	return nil
}
