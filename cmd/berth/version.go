package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newVersionCommand() *cobra.Command {
	var short bool
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  cobra.NoArgs,
		// version never loads a project, even when COMPOSE_FILE is broken.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			v := berthVersion()
			switch {
			case short:
				fmt.Fprintln(out, strings.TrimPrefix(v, "v"))
			case format == "json":
				fmt.Fprintf(out, "{\"version\":%q}\n", v)
			case format == "" || format == "pretty":
				fmt.Fprintln(out, "berth version", v)
			default:
				return fmt.Errorf("invalid --format %q: use pretty or json", format)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&short, "short", false, "Shows only berth's version number")
	cmd.Flags().StringVar(&format, "format", "", "Format the output. Values: [pretty | json]. (Default: pretty)")
	return cmd
}
