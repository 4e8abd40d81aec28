package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/internal/atomicfile"
)

type configOptions struct {
	format       string
	output       string
	quiet        bool
	services     bool
	volumes      bool
	networks     bool
	images       bool
	profiles     bool
	hash         string
	variables    bool
	environment  bool
	noInterp     bool
	noNormalize  bool
	noPaths      bool
	noConsistent bool
	noEnvResolve bool
}

func newConfigCommand(g *globalOptions) *cobra.Command {
	var o configOptions
	cmd := &cobra.Command{
		Use:   "config [OPTIONS] [SERVICE...]",
		Short: "Parse, resolve and render compose file in canonical format",
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if o.quiet {
				out = io.Discard
			}
			return runConfig(cmd, g, o, args, out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "", "Format the output. Values: [yaml | json]")
	f.StringVarP(&o.output, "output", "o", "", "Save to file (default to stdout)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only validate the configuration, don't print anything")
	f.BoolVar(&o.services, "services", false, "Print the service names, one per line.")
	f.BoolVar(&o.volumes, "volumes", false, "Print the volume names, one per line.")
	f.BoolVar(&o.networks, "networks", false, "Print the network names, one per line.")
	f.BoolVar(&o.images, "images", false, "Print the image names, one per line.")
	f.BoolVar(&o.profiles, "profiles", false, "Print the profile names, one per line.")
	f.StringVar(&o.hash, "hash", "", `Print the service config hash, one per line ("*" for all services).`)
	f.BoolVar(&o.variables, "variables", false, "Print model variables and default values.")
	f.BoolVar(&o.environment, "environment", false, "Print environment used for interpolation.")
	f.BoolVar(&o.noInterp, "no-interpolate", false, "Don't interpolate environment variables")
	f.BoolVar(&o.noNormalize, "no-normalize", false, "Don't normalize compose model")
	f.BoolVar(&o.noPaths, "no-path-resolution", false, "Don't resolve file paths")
	f.BoolVar(&o.noConsistent, "no-consistency", false, "Don't check model consistency - warning: may produce invalid Compose output")
	f.BoolVar(&o.noEnvResolve, "no-env-resolution", false, "Don't resolve service env files")
	return cmd
}

func runConfig(cmd *cobra.Command, g *globalOptions, o configOptions, args []string, out io.Writer) error {
	ctx := cmd.Context()
	lo := g.projectOptions()
	lo.Services = args
	lo.NoInterpolate = o.noInterp
	lo.NoNormalize = o.noNormalize
	lo.NoResolvePaths = o.noPaths
	lo.NoConsistency = o.noConsistent
	lo.NoEnvResolution = o.noEnvResolve

	printLines := func(lines []string, err error) error {
		if err != nil {
			return err
		}
		for _, l := range lines {
			fmt.Fprintln(out, l)
		}
		return nil
	}
	switch {
	case o.services:
		return printLines(compose.Services(ctx, lo))
	case o.volumes:
		return printLines(compose.Volumes(ctx, lo))
	case o.networks:
		return printLines(compose.Networks(ctx, lo))
	case o.hash != "":
		var names []string
		if o.hash != "*" {
			names = strings.Split(o.hash, ",")
		}
		hashes, err := compose.Hashes(ctx, lo, names)
		if err != nil {
			return err
		}
		for _, h := range hashes {
			fmt.Fprintf(out, "%s %s\n", h.Service, h.Hash)
		}
		return nil
	case o.profiles:
		return printLines(compose.Profiles(ctx, lo))
	case o.images:
		return printLines(compose.Images(ctx, lo))
	case o.variables:
		vars, err := compose.Variables(ctx, lo)
		if err != nil {
			return err
		}
		return compose.WriteVariables(out, vars, o.format)
	case o.environment:
		return printLines(compose.Environment(ctx, lo))
	}

	format, err := compose.ParseConfigFormat(o.format)
	if err != nil {
		return err
	}
	content, err := compose.Config(ctx, lo, format)
	if err != nil {
		return err
	}
	if o.quiet {
		return nil
	}
	if o.output != "" && len(content) > 0 {
		return atomicfile.Write(o.output, 0o644, func(w io.Writer) error {
			_, err := w.Write(content)
			return err
		})
	}
	_, err = out.Write(content)
	return err
}
