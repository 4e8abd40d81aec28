// Package project loads Compose projects and models the relations between
// their services: the dependency graph and the per-service config hash.
//
// Loading is compose-go's (the library docker compose itself uses), called with
// the options and in the order docker compose v2 uses, so that berth reads the
// same files, interpolates the same way and names projects identically.
package project

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// Options says which files make up a project and how to read them. The zero
// value loads the project found from the current directory, fully resolved,
// like `docker compose config` does.
type Options struct {
	// Files are the compose files (-f), "-" for stdin. Empty: COMPOSE_FILE,
	// then discovery of compose.yaml & co. in the working directory or its parents.
	Files []string
	// Name is the project name (-p). Empty: COMPOSE_PROJECT_NAME, the
	// top-level `name:`, then the project directory's base name.
	Name string
	// WorkingDir is the project directory (--project-directory). Empty: the
	// directory of the first compose file.
	WorkingDir string
	// Profiles to enable (--profile). Empty: COMPOSE_PROFILES.
	Profiles []string
	// EnvFiles replace the project's .env file (--env-file).
	EnvFiles []string
	// Environ is the process environment as KEY=VALUE pairs. It is passed in
	// rather than read here so that loading depends on nothing global.
	Environ []string
	// Services restricts the project to these services and what they depend on.
	Services []string

	NoInterpolate      bool // keep ${VAR} as written
	NoNormalize        bool // keep the model as written (no default network, no implicit depends_on)
	NoResolvePaths     bool // keep relative paths relative
	NoConsistency      bool // skip cross-reference checks
	NoEnvResolution    bool // do not read env_file into environment
	KeepEnvFiles       bool // keep env_file entries after resolving them (config drops them)
	AllResources       bool // keep networks, volumes... that no service uses
	SkipValidation     bool // skip schema validation (used to list variables of a broken file)
	ResolveEnvironment bool // merge env_file into environment, as containers will see it
	// ValidationCache is a directory where loads remember the projects
	// they validated against the Compose schema, so as not to validate
	// them again while nothing changed (see validcache.go). Empty: always
	// validate.
	ValidationCache string
	// CheckContainerNames rejects two services with one container_name.
	// Like docker compose, only where containers are about to be described
	// or created, not when listing services, volumes or hashes.
	CheckContainerNames bool
}

// Load reads, merges, interpolates and validates a project. On error nothing
// has been written anywhere; the error is an *Error when it can be located.
func Load(ctx context.Context, o Options) (p *types.Project, err error) {
	defer recoverLoader(&err)
	po, err := o.prepare()
	if err != nil {
		return nil, err
	}
	marker := o.skipKnownValid(po)
	p, err = po.LoadProject(ctx)
	if err == nil {
		p, err = o.postProcess(p)
	}
	if err != nil {
		return nil, o.locate(err, po)
	}
	rememberValid(marker)
	return p, nil
}

// LoadModel reads and merges the project's files into a raw YAML tree,
// without binding it to the typed model (used by `config --no-interpolate`
// and `config --variables`).
func LoadModel(ctx context.Context, o Options) (m map[string]any, err error) {
	defer recoverLoader(&err)
	po, err := o.prepare()
	if err != nil {
		return nil, err
	}
	m, err = po.LoadModel(ctx)
	if err != nil {
		return nil, o.locate(err, po)
	}
	return m, nil
}

// Environment is the project's environment as docker compose resolves a
// bare `-e KEY` of run and exec with it: the process's, then the env files
// (.env, --env-file). Without compose files (a project known by its name)
// it is the process's.
func Environment(o Options) map[string]string {
	if po, err := o.composeOptions(); err == nil {
		return po.Environment
	}
	return types.NewMapping(o.Environ)
}

// prepare finds the project's files and environment, and checks the files
// are safe to hand to the loader.
func (o Options) prepare() (*cli.ProjectOptions, error) {
	po, err := o.composeOptions()
	if err != nil {
		return nil, o.locate(err, nil)
	}
	if err := checkFiles(po.ConfigPaths); err != nil {
		return nil, o.locate(err, po)
	}
	return po, nil
}

func (o Options) composeOptions() (*cli.ProjectOptions, error) {
	registerFormats()
	fns := []cli.ProjectOptionsFn{
		cli.WithInterpolation(!o.NoInterpolate),
		cli.WithResolvedPaths(!o.NoResolvePaths),
		cli.WithNormalization(!o.NoNormalize),
		cli.WithConsistency(!o.NoConsistency),
		cli.WithDefaultProfiles(o.Profiles...),
	}
	if !o.KeepEnvFiles {
		fns = append(fns, cli.WithDiscardEnvFile)
	}
	if o.NoEnvResolution {
		fns = append(fns, cli.WithoutEnvironmentResolution)
	}
	if o.SkipValidation {
		fns = append(fns, cli.WithLoadOptions(func(lo *loader.Options) { lo.SkipValidation = true }))
	}
	// The order below is docker compose's: the process environment first,
	// then .env (looked up twice, because the project directory may only be
	// known once the compose files have been found), profiles and name last.
	fns = append(fns,
		cli.WithWorkingDirectory(o.WorkingDir),
		cli.WithEnv(o.Environ),
	)
	if !hasVar(o.Environ, "PWD") {
		pwd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("finding the current directory: %w", err)
		}
		fns = append(fns, cli.WithEnv([]string{"PWD=" + pwd}))
	}
	fns = append(fns,
		cli.WithEnvFiles(o.EnvFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithEnvFiles(o.EnvFiles...),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(o.Profiles...),
		cli.WithName(o.Name),
	)
	po, err := cli.NewProjectOptions(o.Files, fns...)
	if err != nil {
		return nil, err
	}
	return po, nil
}

// postProcess does what docker compose does after compose-go: keep the
// selected services (and their dependencies), drop resources nobody uses,
// and check what berth's graph checks (cycles and references through every
// key, not only depends_on).
func (o Options) postProcess(p *types.Project) (*types.Project, error) {
	if p.Name == "" {
		return nil, errors.New("project name can't be empty: use --project-name or a top-level name: attribute")
	}
	p, err := p.WithServicesEnabled(o.Services...)
	if err != nil {
		return nil, err
	}
	p, err = p.WithSelectedServices(o.Services)
	if err != nil {
		return nil, err
	}
	if !o.AllResources {
		p = p.WithoutUnnecessaryResources()
	}
	if !o.NoConsistency {
		if _, err := NewGraph(p); err != nil {
			return nil, err
		}
	}
	if o.CheckContainerNames && !o.NoConsistency {
		if err := p.CheckContainerNameUnicity(); err != nil {
			return nil, err
		}
	}
	if o.ResolveEnvironment && !o.NoEnvResolution {
		p, err = p.WithServicesEnvironmentResolved(!o.KeepEnvFiles)
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// errLoaderPanic marks a panic of the loader turned into an error.
var errLoaderPanic = errors.New("the compose loader failed on this input")

// recoverLoader turns a panic in compose-go into an error: no input, however
// malformed, may crash berth. The fuzz target fails on it, so such a bug is
// found and reported upstream rather than hidden.
func recoverLoader(err *error) {
	if r := recover(); r != nil {
		*err = &Error{Err: fmt.Errorf("%w: %v", errLoaderPanic, r), Hint: "please report this to berth with the compose file"}
	}
}

func hasVar(environ []string, name string) bool {
	for _, kv := range environ {
		if len(kv) > len(name) && kv[len(name)] == '=' && kv[:len(name)] == name {
			return true
		}
	}
	return false
}
