package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
)

// volumeListFlags are the output flags `volumes` and `volume ls` share.
type volumeListFlags struct {
	format string
	quiet  bool
}

func (f *volumeListFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.format, "format", "table", "Format the output. Values: [table | json]")
	cmd.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "Only display volume names")
}

func (f *volumeListFlags) check() error {
	if f.format != "table" && f.format != "json" {
		return fmt.Errorf("invalid --format %q: use table or json", f.format)
	}
	return nil
}

func newVolumesCommand(g *globalOptions, s streams) *cobra.Command {
	var f volumeListFlags
	cmd := &cobra.Command{
		Use:   "volumes [OPTIONS] [SERVICE...]",
		Short: "List volumes",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			eng, err := g.engine()
			if err != nil {
				return err
			}
			vols, err := compose.ProjectVolumes(cmd.Context(), g.projectOptions(), eng, args)
			if err != nil {
				return err
			}
			return printVolumes(s.out, vols, f)
		},
	}
	f.add(cmd)
	return cmd
}

// volumeRow is a volume as docker's `--format json` prints it (the
// formatter's fields, in its order); Labels are sorted.
type volumeRow struct {
	Availability string `json:"Availability"`
	Driver       string `json:"Driver"`
	Group        string `json:"Group"`
	Labels       string `json:"Labels"`
	Links        string `json:"Links"`
	Mountpoint   string `json:"Mountpoint"`
	Name         string `json:"Name"`
	Scope        string `json:"Scope"`
	Size         string `json:"Size"`
	Status       string `json:"Status"`
}

// printVolumes prints volumes as `docker volume ls` does: names only
// (-q), one JSON object a line, or a table of driver and name.
func printVolumes(w io.Writer, vols []compose.VolumeInfo, f volumeListFlags) error {
	switch {
	case f.quiet:
		for _, v := range vols {
			fmt.Fprintln(w, v.Name)
		}
		return nil
	case f.format == "json":
		enc := json.NewEncoder(w)
		for _, v := range vols {
			var labels []string
			for _, k := range slices.Sorted(maps.Keys(v.Labels)) {
				labels = append(labels, k+"="+v.Labels[k])
			}
			r := volumeRow{Availability: "N/A", Driver: compose.VolumeDriver, Group: "N/A", Labels: strings.Join(labels, ","),
				Links: "N/A", Mountpoint: v.Mountpoint, Name: v.Name, Scope: compose.VolumeScope, Size: "N/A", Status: "N/A"}
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	// Docker's formatter pads its columns to at least 10 characters.
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
	for _, v := range vols {
		fmt.Fprintf(tw, "%s\t%s\n", compose.VolumeDriver, v.Name)
	}
	return tw.Flush()
}

func newVolumeCommand(g *globalOptions, s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume COMMAND",
		Short: "Manage volumes",
	}
	cmd.AddCommand(newVolumeLsCommand(g, s), newVolumeInspectCommand(g, s), newVolumeRmCommand(g, s),
		newVolumePruneCommand(g, s), newVolumeCreateCommand(g, s))
	return cmd
}

func newVolumeLsCommand(g *globalOptions, s streams) *cobra.Command {
	var f volumeListFlags
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			match, err := compose.ParseVolumeFilters(filters, "dangling", "driver", "label", "name")
			if err != nil {
				return err
			}
			eng, err := g.engine()
			if err != nil {
				return err
			}
			vols, err := compose.ListVolumes(cmd.Context(), eng, eng.Volumes())
			if err != nil {
				return err
			}
			vols = slices.DeleteFunc(vols, func(v compose.VolumeInfo) bool { return !match.Match(v) })
			return printVolumes(s.out, vols, f)
		},
	}
	f.add(cmd)
	cmd.Flags().StringArrayVar(&filters, "filter", nil, `Provide filter values (e.g. "dangling=true")`)
	return cmd
}

// volumeInspect is a volume as `docker volume inspect` prints it.
type volumeInspect struct {
	CreatedAt  string            `json:"CreatedAt"`
	Driver     string            `json:"Driver"`
	Labels     map[string]string `json:"Labels"`
	Mountpoint string            `json:"Mountpoint"`
	Name       string            `json:"Name"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
}

func newVolumeInspectCommand(g *globalOptions, s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := g.engine()
			if err != nil {
				return err
			}
			vols, verr := compose.InspectVolumes(cmd.Context(), eng, eng.Volumes(), args)
			out := make([]volumeInspect, 0, len(vols))
			for _, v := range vols {
				vi := volumeInspect{CreatedAt: v.CreatedAt.Local().Format(time.RFC3339), Driver: compose.VolumeDriver, Labels: v.Labels,
					Mountpoint: v.Mountpoint, Name: v.Name, Options: v.Options, Scope: compose.VolumeScope}
				if len(vi.Labels) == 0 {
					vi.Labels = nil
				}
				out = append(out, vi)
			}
			b, err := json.MarshalIndent(out, "", "    ")
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "%s\n", b)
			return verr
		},
	}
}

func newVolumeRmCommand(g *globalOptions, s streams) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Long:    "Remove one or more volumes. You cannot remove a volume that is in use by a container.",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := g.engine()
			if err != nil {
				return err
			}
			removed, err := compose.RemoveVolumesByName(cmd.Context(), eng, eng.Volumes(), args, force)
			for _, name := range removed {
				fmt.Fprintln(s.out, name)
			}
			return err
		},
	}
	// -f too: see localShorthands.
	cmd.Flags().BoolVar(&force, "force", false, "Do not fail on volumes that do not exist (a volume in use is never removed)")
	return cmd
}

func newVolumePruneCommand(g *globalOptions, s streams) *cobra.Command {
	var o compose.VolumePruneOptions
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force {
				what := "anonymous local volumes"
				if o.All {
					what = "all local volumes"
				}
				fmt.Fprintf(s.out, "WARNING! This will remove %s not used by at least one container.\nAre you sure you want to continue? [y/N] ", what)
				line, _ := bufio.NewReader(s.in).ReadString('\n')
				if !strings.EqualFold(strings.TrimSpace(line), "y") {
					return nil
				}
			}
			eng, err := g.engine()
			if err != nil {
				return err
			}
			removed, reclaimed, err := compose.PruneVolumes(cmd.Context(), eng, eng.Volumes(), o)
			if len(removed) > 0 {
				fmt.Fprintf(s.out, "Deleted Volumes:\n%s\n\n", strings.Join(removed, "\n"))
			}
			fmt.Fprintf(s.out, "Total reclaimed space: %s\n", units.HumanSize(float64(reclaimed)))
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.All, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	// -f too: see localShorthands.
	f.BoolVar(&force, "force", false, "Do not prompt for confirmation")
	f.StringArrayVar(&o.Filters, "filter", nil, `Provide filter values (e.g. "label=<label>")`)
	return cmd
}

func newVolumeCreateCommand(g *globalOptions, s streams) *cobra.Command {
	var labels, opts []string
	var driver string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if driver != "local" {
				return fmt.Errorf("driver %q is not supported: berth keeps local volumes", driver)
			}
			lm, err := keyValues("--label", labels, false)
			if err != nil {
				return err
			}
			om, err := keyValues("--opt", opts, true)
			if err != nil {
				return err
			}
			vm, err := g.paths().VolumeManager()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			name, err = compose.CreateVolume(vm, name, lm, om)
			if err != nil {
				return err
			}
			fmt.Fprintln(s.out, name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	f.StringArrayVar(&labels, "label", nil, "Set metadata for a volume")
	f.StringArrayVarP(&opts, "opt", "o", nil, "Set driver specific options")
	return cmd
}

// keyValues reads repeated KEY=VALUE flags; a bare KEY has an empty value
// unless needValue.
func keyValues(flag string, list []string, needValue bool) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" || needValue && !ok {
			return nil, fmt.Errorf("invalid %s %q: write KEY=VALUE", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}
