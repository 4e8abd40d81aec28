// Package compose implements berth's verbs (config, up, down, ...) with the
// semantics of docker compose. It knows projects and services, not Linux:
// the runtime, network and volume layers do the system work.
package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/project"
)

// ConfigFormat is how `config` renders the project.
type ConfigFormat string

const (
	FormatYAML ConfigFormat = "yaml"
	FormatJSON ConfigFormat = "json"
)

// ParseConfigFormat checks a --format value.
func ParseConfigFormat(s string) (ConfigFormat, error) {
	switch f := ConfigFormat(strings.ToLower(s)); f {
	case "", FormatYAML:
		return FormatYAML, nil
	case FormatJSON:
		return FormatJSON, nil
	default:
		return "", fmt.Errorf("unsupported format %q: use yaml or json", s)
	}
}

// Config renders the fully resolved project in canonical form, as `docker
// compose config` does: merged, interpolated, normalised, env_file folded into
// environment. A literal $ is written $$ so the output loads back unchanged.
func Config(ctx context.Context, lo project.Options, format ConfigFormat) ([]byte, error) {
	if lo.NoInterpolate {
		model, err := project.LoadModel(ctx, lo)
		if err != nil {
			return nil, err
		}
		return renderModel(model, format)
	}
	lo.ResolveEnvironment = !lo.NoEnvResolution
	lo.CheckContainerNames = true
	p, err := project.Load(ctx, lo)
	if err != nil {
		return nil, err
	}
	var out []byte
	switch format {
	case FormatJSON:
		out, err = p.MarshalJSON()
	default:
		out, err = p.MarshalYAML()
	}
	if err != nil {
		return nil, fmt.Errorf("rendering project %q: %w", p.Name, err)
	}
	return bytes.ReplaceAll(out, []byte("$"), []byte("$$")), nil
}

func renderModel(model map[string]any, format ConfigFormat) ([]byte, error) {
	if format == FormatJSON {
		return json.MarshalIndent(model, "", "  ")
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(model); err != nil {
		return nil, fmt.Errorf("rendering the project model: %w", err)
	}
	return b.Bytes(), nil
}

// Services lists the enabled services, each after the services it depends on.
func Services(ctx context.Context, lo project.Options) ([]string, error) {
	lo.Services, lo.NoEnvResolution = nil, true
	if lo.NoInterpolate {
		model, err := project.LoadModel(ctx, lo)
		if err != nil {
			return nil, err
		}
		services, _ := model["services"].(map[string]any)
		return slices.Sorted(maps.Keys(services)), nil
	}
	p, err := project.Load(ctx, lo)
	if err != nil {
		return nil, err
	}
	g, err := project.NewGraph(p)
	if err != nil {
		return nil, err
	}
	return g.Order(), nil
}

// Volumes lists the project's volumes (those its services use), sorted.
func Volumes(ctx context.Context, lo project.Options) ([]string, error) {
	return resourceNames(ctx, lo, func(p *types.Project) []string { return p.VolumeNames() })
}

// Networks lists the project's networks (those its services use), sorted.
func Networks(ctx context.Context, lo project.Options) ([]string, error) {
	return resourceNames(ctx, lo, func(p *types.Project) []string { return p.NetworkNames() })
}

func resourceNames(ctx context.Context, lo project.Options, names func(*types.Project) []string) ([]string, error) {
	lo.Services, lo.NoEnvResolution = nil, true
	p, err := project.Load(ctx, lo)
	if err != nil {
		return nil, err
	}
	return names(p), nil
}

// Images lists the image of each selected service (<project>-<service> for a
// service that only builds), then of its pre_start hooks, by service name.
func Images(ctx context.Context, lo project.Options) ([]string, error) {
	p, err := project.Load(ctx, lo)
	if err != nil {
		return nil, err
	}
	var images []string
	add := func(name string, spec types.ContainerSpec, hooks []types.PreStartHook) {
		img := imageRef(p.Name, name, spec.Image)
		images = append(images, img)
		for _, h := range hooks {
			if h.Image != "" && h.Image != img {
				images = append(images, h.Image)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		add(name, s.ContainerSpec, s.PreStart)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Jobs)) {
		add(name, p.Jobs[name].ContainerSpec, nil)
	}
	return images, nil
}

// Profiles lists every profile named by a service, enabled or not, sorted.
func Profiles(ctx context.Context, lo project.Options) ([]string, error) {
	p, err := project.Load(ctx, lo)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, s := range p.AllServices() {
		for _, prof := range s.Profiles {
			set[prof] = true
		}
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// ServiceHash is a service with its configuration hash.
type ServiceHash struct {
	Service string
	Hash    string
}

// Hashes returns the configuration hash of the named services (all of them
// when names is empty), sorted by service, computed on the service as its
// containers would be created (env_file folded into environment).
func Hashes(ctx context.Context, lo project.Options, names []string) ([]ServiceHash, error) {
	resolveEnv := !lo.NoEnvResolution
	lo.Services, lo.NoEnvResolution = nil, true
	p, err := project.Load(ctx, lo)
	if err != nil {
		return nil, err
	}
	p, err = p.WithSelectedServices(names, types.IgnoreDependencies)
	if err != nil {
		return nil, &project.Error{Err: err, Hint: "run `berth config --services` to list the project's services"}
	}
	if resolveEnv {
		if p, err = p.WithServicesEnvironmentResolved(true); err != nil {
			return nil, err
		}
	}
	var out []ServiceHash
	for _, name := range p.ServiceNames() {
		h, err := project.ServiceHash(p.Services[name])
		if err != nil {
			return nil, err
		}
		out = append(out, ServiceHash{Service: name, Hash: h})
	}
	return out, nil
}

// Variables returns the variables the project's files use, with their
// defaults, read from the files as written (nothing interpolated or validated).
func Variables(ctx context.Context, lo project.Options) (map[string]template.Variable, error) {
	lo.NoInterpolate, lo.NoEnvResolution, lo.SkipValidation = true, true, true
	model, err := project.LoadModel(ctx, lo)
	if err != nil {
		return nil, err
	}
	return template.ExtractVariables(model, template.DefaultPattern), nil
}

// WriteVariables renders variables as a table, JSON or YAML.
func WriteVariables(w io.Writer, vars map[string]template.Variable, format string) error {
	switch strings.ToLower(format) {
	case "", "table", "pretty":
		tw := tabwriter.NewWriter(w, 20, 1, 3, ' ', 0)
		fmt.Fprintln(tw, "NAME\tREQUIRED\tDEFAULT VALUE\tALTERNATE VALUE")
		for _, name := range slices.Sorted(maps.Keys(vars)) {
			v := vars[name]
			fmt.Fprintf(tw, "%s\t%t\t%s\t%s\n", name, v.Required, v.DefaultValue, v.PresenceValue)
		}
		return tw.Flush()
	case "json":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "    ")
		if err := enc.Encode(vars); err != nil {
			return fmt.Errorf("rendering variables: %w", err)
		}
		_, err := fmt.Fprintln(w) // docker compose ends this output with an empty line
		return err
	case "yaml":
		out, err := yaml.Marshal(vars)
		if err != nil {
			return fmt.Errorf("rendering variables: %w", err)
		}
		_, err = w.Write(out)
		return err
	default:
		return fmt.Errorf("unsupported format %q: use table, json or yaml", format)
	}
}

// Environment returns the variables interpolation sees, as sorted KEY=VALUE.
func Environment(ctx context.Context, lo project.Options) ([]string, error) {
	p, err := project.Load(ctx, lo)
	if err != nil {
		return nil, err
	}
	return p.Environment.Values(), nil
}
