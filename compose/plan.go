package compose

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/project"
)

// Observed is a container of the project as the runtime reports it: what
// `up` converges from. One-off containers (`run`) are not observed.
type Observed struct {
	Name       string
	Service    string
	Number     int
	ConfigHash string
	State      string // created, running, paused, exited
}

// UpOptions are the flags of `up` that change what it plans.
type UpOptions struct {
	// Services are the services named on the command line; none means
	// all. Their dependencies come too unless NoDeps.
	Services           []string
	NoDeps             bool
	ForceRecreate      bool
	NoRecreate         bool
	AlwaysRecreateDeps bool
	RemoveOrphans      bool
	// RenewAnonVolumes (-V) gives the containers new anonymous volumes
	// instead of those of the containers they replace; like docker
	// compose, it recreates the selected services.
	RenewAnonVolumes bool
	// Scale overrides the number of replicas of a service (--scale).
	Scale map[string]int
	// Compatibility names new containers as Compose v1 did,
	// <project>_<service>_<number> (--compatibility).
	Compatibility bool
}

// Step is one thing `up` does to one container.
type Step struct {
	Do      StepKind
	Service string
	Number  int
	Name    string // the container's name
	Why     string
}

// StepKind is what a step does.
type StepKind string

const (
	StepKeep     StepKind = "keep"     // running and unchanged: nothing to do
	StepCreate   StepKind = "create"   // a replica that does not exist
	StepRecreate StepKind = "recreate" // remove and create again
	StepStart    StepKind = "start"    // exists, unchanged, not running
	StepRestart  StepKind = "restart"  // stop and start: a dependency with restart: true is recreated
	StepRemove   StepKind = "remove"   // a replica beyond the scale, or an orphan
	StepOrphan   StepKind = "orphan"   // not the project's any more: warned about
)

// Plan is what `up` will do: levels in dependency order (each level's
// steps can run at once), then the removals.
type Plan struct {
	Levels  [][]Step
	Removes []Step
}

// Changes reports whether the plan changes anything.
func (p Plan) Changes() bool {
	for _, l := range p.Levels {
		for _, s := range l {
			if s.Do != StepKeep {
				return true
			}
		}
	}
	return slices.ContainsFunc(p.Removes, func(s Step) bool { return s.Do == StepRemove })
}

// String prints the plan one step a line, levels separated, as the tests
// read it and `up --dry-run` shows it.
func (p Plan) String() string {
	var b strings.Builder
	for i, l := range p.Levels {
		fmt.Fprintf(&b, "level %d:\n", i)
		for _, s := range l {
			fmt.Fprintf(&b, "  %-8s %s (%s)\n", s.Do, s.Name, s.Why)
		}
	}
	if len(p.Removes) > 0 {
		b.WriteString("then:\n")
		for _, s := range p.Removes {
			fmt.Fprintf(&b, "  %-8s %s (%s)\n", s.Do, s.Name, s.Why)
		}
	}
	return b.String()
}

// PlanUp decides what `up` does to bring the observed containers to the
// project, as docker compose decides it. hashes are the services' config
// hashes (project.ServiceHash). It is a pure function.
//
//   - A replica that does not exist is created; one whose config hash
//     differs is recreated (never with NoRecreate, always with
//     ForceRecreate); an unchanged one that does not run is started.
//   - Replicas beyond the scale (--scale, else scale:/deploy.replicas) are
//     removed, highest numbers first; scaling up keeps the existing ones.
//   - A service that shares another's namespaces (network_mode, ipc or pid
//     "service:X") is recreated with it; one whose depends_on has
//     restart: true is restarted when its dependency is recreated.
//   - Dependencies pulled in by the selected services are recreated only
//     when they changed, or always with AlwaysRecreateDeps; ForceRecreate
//     and RenewAnonVolumes apply to the selected services.
//   - Containers of services the project does not have any more are
//     orphans: removed with RemoveOrphans, else listed to be warned about.
func PlanUp(p *types.Project, observed []Observed, hashes map[string]string, o UpOptions) (Plan, error) {
	if o.ForceRecreate && o.NoRecreate {
		return Plan{}, fmt.Errorf("--force-recreate and --no-recreate cannot be used together")
	}
	if o.AlwaysRecreateDeps && o.NoRecreate {
		return Plan{}, fmt.Errorf("--always-recreate-deps and --no-recreate cannot be used together")
	}
	if o.RenewAnonVolumes && o.NoRecreate {
		return Plan{}, fmt.Errorf("--renew-anon-volumes and --no-recreate cannot be used together")
	}
	g, err := project.NewGraph(p)
	if err != nil {
		return Plan{}, err
	}
	selected := map[string]bool{}
	for _, s := range o.Services {
		if _, ok := p.Services[s]; !ok {
			return Plan{}, &project.Error{Err: fmt.Errorf("no such service: %s", s), Hint: "run `berth config --services` to list the project's services"}
		}
		selected[s] = true
	}
	wanted := map[string]bool{}
	if len(o.Services) == 0 {
		for _, s := range g.Services() {
			wanted[s], selected[s] = true, true
		}
	} else if o.NoDeps {
		for s := range selected {
			wanted[s] = true
		}
	} else {
		all, err := g.WithDependencies(o.Services...)
		if err != nil {
			return Plan{}, err
		}
		for _, s := range all {
			wanted[s] = true
		}
	}

	byService := map[string][]Observed{}
	for _, c := range observed {
		byService[c.Service] = append(byService[c.Service], c)
	}
	for _, cs := range byService {
		slices.SortFunc(cs, func(a, b Observed) int { return cmp.Compare(a.Number, b.Number) })
	}

	var plan Plan
	recreated := map[string]bool{}
	for _, level := range g.Levels() {
		var steps []Step
		for _, name := range level {
			if !wanted[name] {
				continue
			}
			svc := p.Services[name]
			scale := svc.GetScale()
			if n, ok := o.Scale[name]; ok {
				scale = n
			}
			force := (o.ForceRecreate || o.RenewAnonVolumes) && selected[name] || o.AlwaysRecreateDeps && !selected[name]
			why, restart := "", ""
			for _, d := range g.Dependencies(name) {
				if !recreated[d.Service] {
					continue
				}
				switch {
				case slices.ContainsFunc(d.Keys, func(k string) bool {
					return k == project.KeyNetworkMode || k == project.KeyIPC || k == project.KeyPID
				}):
					// It lives in the dependency's namespaces, which go.
					force, why = true, "it shares the namespaces of "+d.Service+", recreated"
				case d.Restart:
					restart = "its dependency " + d.Service + " is recreated (restart: true)"
				}
			}
			existing := byService[name]
			have := map[int]Observed{}
			for _, c := range existing {
				have[c.Number] = c
			}
			for n := 1; n <= scale; n++ {
				s := Step{Service: name, Number: n, Name: ContainerName(p.Name, svc, n, o.Compatibility)}
				c, ok := have[n]
				switch {
				case !ok:
					s.Do, s.Why = StepCreate, "no container"
				case o.NoRecreate:
					s.Do, s.Why = keepOrStart(c, "--no-recreate")
				case force:
					s.Do, s.Why = StepRecreate, cmp.Or(why, forceWhy(o, selected[name]))
				case c.ConfigHash != hashes[name]:
					s.Do, s.Why = StepRecreate, "configuration changed"
				case restart != "" && c.State == "running":
					s.Do, s.Why = StepRestart, restart
				default:
					s.Do, s.Why = keepOrStart(c, "unchanged")
				}
				if ok {
					s.Name = c.Name
				}
				if s.Do == StepRecreate {
					recreated[name] = true
				}
				steps = append(steps, s)
			}
			for _, c := range existing {
				if c.Number > scale {
					plan.Removes = append(plan.Removes, Step{Do: StepRemove, Service: name, Number: c.Number, Name: c.Name, Why: fmt.Sprintf("scale is %d", scale)})
				}
			}
		}
		if len(steps) > 0 {
			plan.Levels = append(plan.Levels, steps)
		}
	}

	for _, name := range slices.Sorted(maps.Keys(byService)) {
		if _, ok := p.Services[name]; ok {
			continue
		}
		for _, c := range byService[name] {
			s := Step{Do: StepOrphan, Service: name, Number: c.Number, Name: c.Name, Why: "service " + name + " is not in the project"}
			if _, disabled := p.DisabledServices[name]; disabled {
				// A service of an inactive profile is not an orphan for
				// docker compose: its containers are left alone.
				continue
			}
			if o.RemoveOrphans {
				s.Do = StepRemove
			}
			plan.Removes = append(plan.Removes, s)
		}
	}
	return plan, nil
}

func keepOrStart(c Observed, why string) (StepKind, string) {
	if c.State == "running" {
		return StepKeep, "running, " + why
	}
	return StepStart, c.State + ", " + why
}

func forceWhy(o UpOptions, selected bool) string {
	switch {
	case selected && o.ForceRecreate:
		return "--force-recreate"
	case selected:
		return "--renew-anon-volumes"
	}
	return "--always-recreate-deps"
}
