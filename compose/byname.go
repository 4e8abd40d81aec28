package compose

import (
	"context"
	"errors"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/project"
)

// loadOrByName loads the project for the commands that act on what a
// project already has (down, ps, logs, stop, ...). As docker compose
// does, a project is also known by its name alone: with -p and no -f
// when its files cannot be loaded (none here, say), or with
// COMPOSE_PROJECT_NAME when loading fails. It is then rebuilt from what
// berth holds of it: its containers' services and their dependencies
// (labels), its networks and its volumes.
func loadOrByName(ctx context.Context, lo project.Options, eng Engine) (*types.Project, error) {
	p, _, err := loadOrState(ctx, lo, eng)
	return p, err
}

// loadOrState is loadOrByName, saying whether the project came from what
// berth holds (byName) rather than from its files.
func loadOrState(ctx context.Context, lo project.Options, eng Engine) (p *types.Project, byName bool, err error) {
	p, err = project.Load(ctx, lo)
	if err == nil {
		return p, false, nil
	}
	name := knownName(lo)
	if name == "" || errors.Is(err, context.Canceled) {
		return nil, false, err
	}
	p, err = projectFromState(ctx, eng, name)
	return p, true, err
}

// knownName is the name a project is known by when its files cannot be
// loaded: -p without -f, else COMPOSE_PROJECT_NAME; empty when neither.
func knownName(lo project.Options) string {
	if lo.Name != "" && len(lo.Files) == 0 {
		return lo.Name
	}
	return types.NewMapping(lo.Environ)["COMPOSE_PROJECT_NAME"]
}

// projectFromState is the project named name as berth holds it.
func projectFromState(ctx context.Context, eng Engine, name string) (*types.Project, error) {
	p := &types.Project{Name: name, Services: types.Services{}, Networks: types.Networks{}, Volumes: types.Volumes{}}
	cs, err := projectList(ctx, eng, name)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		svc := c.Service()
		if _, ok := p.Services[svc]; ok || svc == "" {
			continue
		}
		s := types.ServiceConfig{Name: svc, Image: c.Image}
		s.DependsOn = dependsOnLabel(c.Labels[DependsOnLabel])
		p.Services[svc] = s
	}
	// A dependency whose containers are all gone is no service any more.
	for n, s := range p.Services {
		for d := range s.DependsOn {
			if _, ok := p.Services[d]; !ok {
				delete(s.DependsOn, d)
			}
		}
		p.Services[n] = s
	}
	nets, err := eng.Networks().List()
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		if n.Labels[ProjectLabel] == name && n.Labels[networkLabel] != "" {
			p.Networks[n.Labels[networkLabel]] = types.NetworkConfig{Name: n.Name}
		}
	}
	vols, err := eng.Volumes().List()
	if err != nil {
		return nil, err
	}
	for _, v := range vols {
		if v.Labels[ProjectLabel] == name && v.Labels[volumeLabel] != "" {
			p.Volumes[v.Labels[volumeLabel]] = types.VolumeConfig{Name: v.Name}
		}
	}
	return p, nil
}

// dependsOnLabel reads the depends_on label: service:condition:restart,
// comma-separated.
func dependsOnLabel(v string) types.DependsOnConfig {
	deps := types.DependsOnConfig{}
	for _, d := range strings.Split(v, ",") {
		f := strings.Split(d, ":")
		if f[0] == "" {
			continue
		}
		dep := types.ServiceDependency{Condition: types.ServiceConditionStarted, Required: true}
		if len(f) > 1 && f[1] != "" {
			dep.Condition = f[1]
		}
		dep.Restart = len(f) > 2 && f[2] == "true"
		deps[f[0]] = dep
	}
	return deps
}
