package main

import (
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
