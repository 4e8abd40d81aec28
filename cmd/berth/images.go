package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/runtime/image"
)

// berthRoot is BERTH_ROOT, where berth keeps its state: /var/lib/berth
// unless set.
func (g *globalOptions) berthRoot() string { return g.paths().Root }

// imageStore opens the image store under BERTH_ROOT.
func (g *globalOptions) imageStore() (*image.Store, error) {
	return image.Open(g.paths().Images())
}

func newPullCommand(g *globalOptions, s streams) *cobra.Command {
	var o compose.PullOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] [SERVICE...]",
		Short: "Pull service images",
		RunE: func(cmd *cobra.Command, args []string) error {
			switch o.Policy {
			case "", "missing", "always":
			default:
				return fmt.Errorf("invalid --policy %q: use missing or always", o.Policy)
			}
			store, err := g.imageStore()
			if err != nil {
				return err
			}
			lo := g.projectOptions()
			lo.Services = args
			o.Parallel = g.parallel
			r := newPullRenderer(s.err, g.progressMode(s.err, quiet))
			o.Events = r.event
			err = compose.Pull(cmd.Context(), lo, store, o)
			r.close()
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "Pull without printing progress information")
	f.BoolVar(&o.IgnoreFailures, "ignore-pull-failures", false, "Pull what it can and ignores images with pull failures")
	f.BoolVar(&o.IncludeDeps, "include-deps", false, "Also pull services declared as dependencies")
	f.StringVar(&o.Policy, "policy", "", "Apply pull policy (\"missing\"|\"always\")")
	return cmd
}

func newImagesCommand(g *globalOptions) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [SERVICE...]",
		Short: "List the images of the project's services",
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := g.imageStore()
			if err != nil {
				return err
			}
			lo := g.projectOptions()
			lo.Services = args
			images, err := compose.ServiceImages(cmd.Context(), lo, store)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, si := range images {
					if si.Image != nil {
						fmt.Fprintln(out, si.Image.ID())
					}
				}
				return nil
			}
			type row struct {
				Service    string `json:"Service"`
				Repository string `json:"Repository"`
				Tag        string `json:"Tag"`
				ID         string `json:"ID"`
				Size       int64  `json:"Size"`
				Present    bool   `json:"Present"`
			}
			var rows []row
			for _, si := range images {
				repo, tag := image.Short(mustNormalize(si.Ref))
				r := row{Service: si.Service, Repository: repo, Tag: tag}
				if si.Image != nil {
					r.ID, r.Size, r.Present = si.Image.ID(), si.Image.Record.Size, true
				}
				rows = append(rows, r)
			}
			switch format {
			case "json":
				if rows == nil {
					rows = []row{}
				}
				return json.NewEncoder(out).Encode(rows)
			case "", "table":
				tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
				fmt.Fprintln(tw, "SERVICE\tREPOSITORY\tTAG\tIMAGE ID\tSIZE")
				for _, r := range rows {
					id, size := "<missing>", ""
					if r.Present {
						id, size = shortID(r.ID), units.HumanSizeWithPrecision(float64(r.Size), 3)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Service, r.Repository, r.Tag, id, size)
				}
				return tw.Flush()
			default:
				return fmt.Errorf("invalid --format %q: use table or json", format)
			}
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "Format the output. Values: [table | json]")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	return cmd
}

func newImageCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image COMMAND",
		Short: "Manage images in berth's store",
	}
	var quiet bool
	ls := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List images",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := g.imageStore()
			if err != nil {
				return err
			}
			images, err := store.List(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, img := range images {
					fmt.Fprintln(out, shortID(img.ID()))
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			for _, img := range images {
				repo, tag := image.Short(img.Ref)
				if strings.HasPrefix(img.Ref, "sha256:") {
					repo, tag = "<none>", "<none>"
				}
				created := "N/A"
				if !img.Config.Created.IsZero() {
					created = units.HumanDuration(time.Since(img.Config.Created.Time)) + " ago"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", repo, tag, shortID(img.ID()), created, units.HumanSizeWithPrecision(float64(img.Record.Size), 3))
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	rm := &cobra.Command{
		Use:     "rm IMAGE [IMAGE...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more images",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := g.imageStore()
			if err != nil {
				return err
			}
			removed, err := store.Remove(cmd.Context(), args...)
			for _, r := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "Untagged: %s\n", r)
			}
			return err
		},
	}
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove layers and blobs no image uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := g.imageStore()
			if err != nil {
				return err
			}
			freed, err := store.Prune(cmd.Context())
			fmt.Fprintf(cmd.OutOrStdout(), "Total reclaimed space: %s\n", units.HumanSizeWithPrecision(float64(freed), 3))
			return err
		},
	}
	cmd.AddCommand(ls, rm, prune)
	return cmd
}

func newLoadCommand(g *globalOptions, s streams) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load images from a docker save archive or an OCI layout tarball",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := g.imageStore()
			if err != nil {
				return err
			}
			var loaded []string
			if input != "" && input != "-" {
				loaded, err = store.LoadFile(cmd.Context(), input, nil)
			} else if f, ok := s.in.(*os.File); ok && isTerminal(f) {
				return errors.New("requested load from stdin, but stdin is a terminal: use -i FILE, or redirect the archive")
			} else {
				loaded, err = store.Load(cmd.Context(), s.in, nil)
			}
			for _, ref := range loaded {
				if !quiet {
					fmt.Fprintf(cmd.OutOrStdout(), "Loaded image: %s\n", ref)
				}
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return cmd
}

func newSaveCommand(g *globalOptions, s streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save images to a tar archive (docker save format)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := g.imageStore()
			if err != nil {
				return err
			}
			if output == "" || output == "-" {
				if f, ok := s.out.(*os.File); ok && isTerminal(f) {
					return errors.New("cowardly refusing to save to a terminal: use -o FILE, or redirect the output")
				}
				return store.Save(cmd.Context(), args, s.out)
			}
			return atomicfile.Write(output, 0o644, func(w io.Writer) error { return store.Save(cmd.Context(), args, w) })
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func mustNormalize(ref string) string {
	if n, err := image.Normalize(ref); err == nil {
		return n
	}
	return ref
}
