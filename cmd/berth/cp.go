package main

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
)

func newCpCommand(g *globalOptions, s streams) *cobra.Command {
	var o compose.CopyOptions
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] SERVICE:SRC_PATH DEST_PATH|-\n  berth cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH",
		Short: "Copy files/folders between a service container and the local filesystem",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := g.engine()
			if err != nil {
				return err
			}
			o.Source, o.Destination = args[0], args[1]
			o.Stdin, o.Stdout = s.in, s.out
			o.Progress = g.newProgress(s.err, false).event
			return compose.Copy(cmd.Context(), g.projectOptions(), eng, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.All, "all", false, "Include containers created by the run command")
	f.BoolVarP(&o.Archive, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	f.BoolVarP(&o.FollowLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	f.IntVar(&o.Index, "index", 0, "Index of the container if service has multiple replicas")
	return cmd
}

func newExportCommand(g *globalOptions, s streams) *cobra.Command {
	var o compose.ExportOptions
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] SERVICE",
		Short: "Export a service container's filesystem as a tar archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := g.engine()
			if err != nil {
				return err
			}
			o.Service, o.Output = args[0], s.out
			if output == "" || output == "-" {
				if f, ok := s.out.(*os.File); ok && isTerminal(f) {
					return errors.New("cowardly refusing to write an archive to a terminal: use -o FILE or redirect the output")
				}
				return compose.Export(cmd.Context(), g.projectOptions(), eng, o)
			}
			// Whole or not at all: written aside, renamed when complete.
			tmp, err := os.CreateTemp(filepath.Dir(output), ".berth-export-")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			o.Output = tmp
			err = compose.Export(cmd.Context(), g.projectOptions(), eng, o)
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := os.Chmod(tmp.Name(), 0o644); err != nil {
				return err
			}
			return os.Rename(tmp.Name(), output)
		},
	}
	cmd.Flags().IntVar(&o.Index, "index", 0, "index of the container if service has multiple replicas.")
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}
