package compose

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/image"
	"github.com/berth-dev/berth/runtime/logs"
	"github.com/berth-dev/berth/runtime/spec"
)

// Progress is one change of one resource, as docker compose shows it:
// "Container web-1  Started".
type Progress struct {
	Resource string // "Container demo-web-1"
	Status   string // Creating, Created, Starting, Started, Running, ...
	Err      error
}

// Progress statuses, as docker compose words them.
const (
	StatusCreating   = "Creating"
	StatusCreated    = "Created"
	StatusStarting   = "Starting"
	StatusStarted    = "Started"
	StatusRunning    = "Running"
	StatusRecreate   = "Recreate"
	StatusRecreated  = "Recreated"
	StatusRestarting = "Restarting"
	StatusRestarted  = "Restarted"
	StatusWaiting    = "Waiting"
	StatusHealthy    = "Healthy"
	StatusExited     = "Exited"
	StatusStopping   = "Stopping"
	StatusStopped    = "Stopped"
	StatusRemoving   = "Removing"
	StatusRemoved    = "Removed"
	StatusKilling    = "Killing"
	StatusKilled     = "Killed"
	StatusCopying    = "Copying"
	StatusCopied     = "Copied"
	StatusError      = "Error"
)

// UpRunOptions are `up`'s (and `create`'s) flags beyond the plan's.
type UpRunOptions struct {
	UpOptions
	NoStart bool // create only (`create`, `up --no-start`)
	// ExitCodeFrom is --exit-code-from's service: checked to be one of
	// the project's before anything is done.
	ExitCodeFrom string
	Pull         string         // --pull: "" (the services' pull_policy), missing, always, never
	Timeout      *time.Duration // -t: the grace period of the containers a recreate stops
	// Wait waits until the containers run (and are healthy when they have
	// a health check); a one-shot container that exited 0 counts as done.
	Wait        bool
	WaitTimeout time.Duration // 0: no limit
	Parallel    int           // at most this many containers at once; 0: no limit
	Progress    func(Progress)
	PullEvents  func(PullEvent)
	// Warn tells the user of a problem that does not fail the command.
	Warn func(string)
}

// UpResult is what `up` left: the project, and the containers of the
// services it brought up.
type UpResult struct {
	Project    *types.Project
	Services   []string // those brought up, dependencies included
	Containers []ContainerStatus
}

// startsAny reports whether plan starts a container: one it creates, or
// one that exists and is not running.
func startsAny(plan Plan) bool {
	for _, l := range plan.Levels {
		for _, s := range l {
			switch s.Do {
			case StepCreate, StepRecreate, StepStart, StepRestart:
				return true
			}
		}
	}
	return false
}

// Up brings the project's services to what the project says, as docker
// compose up does: it observes the containers, plans with PlanUp, then
// executes the plan in dependency order — every service as soon as the
// ones it depends on are there (and healthy, or completed, as depends_on
// asks), the replicas of a service at once.
func Up(ctx context.Context, lo project.Options, environ map[string]string, images ImageStore, eng Engine, o UpRunOptions) (*UpResult, error) {
	lo.CheckContainerNames = true
	p, err := project.Load(ctx, lo)
	if err != nil {
		return nil, err
	}
	if o.ExitCodeFrom != "" {
		if _, err := p.GetService(o.ExitCodeFrom); err != nil {
			return nil, &project.Error{Err: fmt.Errorf("%w: no such service: %s", errdefs.ErrNotFound, o.ExitCodeFrom), Hint: "--exit-code-from names one of the project's services"}
		}
	}
	if o.Progress == nil {
		o.Progress = func(Progress) {}
	}
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	files, err := projectFiles(p)
	if err != nil {
		return nil, err
	}
	unlock, err := eng.Lock(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()

	existing, err := watched(ctx, eng, p.Name)
	if err != nil {
		return nil, err
	}
	var observed []Observed
	byName := map[string]ContainerStatus{}
	for _, c := range existing {
		if c.OneOff() {
			continue
		}
		observed = append(observed, Observed{Name: c.Name, Service: c.Service(), Number: c.Number(), ConfigHash: withFilesHash(c.Labels[ConfigHashLabel], c.Labels[filesHashLabel]), State: c.Status})
		byName[c.Name] = c
	}
	hashes := map[string]string{}
	for name, s := range p.Services {
		if hashes[name], err = project.ServiceHash(s); err != nil {
			return nil, err
		}
		hashes[name] = withFilesHash(hashes[name], filesHash(files[name]))
	}
	plan, err := PlanUp(p, observed, hashes, o.UpOptions)
	if err != nil {
		return nil, err
	}
	g, err := project.NewGraph(p)
	if err != nil {
		return nil, err
	}
	var services, toCreate []string
	for _, l := range plan.Levels {
		for _, s := range l {
			if !slices.Contains(services, s.Service) {
				services = append(services, s.Service)
			}
			if (s.Do == StepCreate || s.Do == StepRecreate) && !slices.Contains(toCreate, s.Service) {
				toCreate = append(toCreate, s.Service)
			}
		}
	}
	slices.Sort(services)
	var held []spec.Port
	for _, c := range existing {
		held = append(held, c.Ports...)
	}
	if err := checkPorts(p, toCreate, held); err != nil {
		return nil, err
	}
	if err := checkNames(ctx, eng, p, toCreate, o.Compatibility); err != nil {
		return nil, err
	}
	if err := checkResources(p, services, eng.Volumes(), eng.Networks()); err != nil {
		return nil, err
	}
	if err := ensureImages(ctx, p, toCreate, images, o.Pull, o.PullEvents); err != nil {
		return nil, err
	}
	if !o.NoStart && startsAny(plan) {
		// The supervisor starts while the containers are checked and
		// the networks and containers made, not when the first
		// container is to start. (One held by an up that fails goes
		// once idle, half a second later.)
		release := eng.Hold(ctx, p.Name)
		defer release()
	}
	if err := checkContainers(ctx, p, toCreate, images, environ, eng); err != nil {
		return nil, err
	}
	if err := ensureNetworks(ctx, p, services, eng.Networks(), o.Progress); err != nil {
		return nil, err
	}

	var orphans []string
	for _, s := range plan.Removes {
		if s.Do == StepOrphan {
			orphans = append(orphans, s.Name)
		}
	}
	if len(orphans) > 0 {
		o.Warn(fmt.Sprintf("Found orphan containers (%s) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.", strings.Join(orphans, ", ")))
	}
	u := &upper{ctx: ctx, p: p, g: g, eng: eng, images: images, environ: environ, o: o, byName: byName, files: files}
	// Orphans go first, as docker compose removes them before it creates.
	if err := u.removeAll(ctx, plan.Removes, true); err != nil {
		return nil, err
	}
	steps := map[string][]Step{}
	for _, l := range plan.Levels {
		for _, s := range l {
			steps[s.Service] = append(steps[s.Service], s)
		}
	}
	err = g.Walk(ctx, project.WalkOptions{Services: services}, func(ctx context.Context, service string) error {
		if !o.NoStart {
			if err := u.waitDependencies(ctx, service, services); err != nil {
				return err
			}
		}
		eg, ctx := errgroup.WithContext(ctx)
		if o.Parallel > 0 {
			eg.SetLimit(o.Parallel)
		}
		for _, s := range steps[service] {
			eg.Go(func() error { return u.do(ctx, s) })
		}
		return eg.Wait()
	})
	if err != nil {
		return nil, err
	}
	if err := u.removeAll(ctx, plan.Removes, false); err != nil {
		return nil, err
	}
	res := &UpResult{Project: p, Services: services}
	if res.Containers, err = projectList(ctx, eng, p.Name); err != nil {
		return nil, err
	}
	res.Containers = slices.DeleteFunc(res.Containers, func(c ContainerStatus) bool {
		return c.OneOff() || !slices.Contains(services, c.Service())
	})
	if o.Wait && !o.NoStart {
		wctx := ctx
		if o.WaitTimeout > 0 {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, o.WaitTimeout)
			defer cancel()
		}
		if err := u.waitReady(wctx, services); err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				err = fmt.Errorf("timeout waiting for the services to be running and healthy after %v: %w", o.WaitTimeout, err)
			}
			return res, fmt.Errorf("%w%s", err, u.diagnose(context.WithoutCancel(ctx), services))
		}
	}
	return res, nil
}

// upper executes a plan.
type upper struct {
	ctx     context.Context
	p       *types.Project
	g       *project.Graph
	eng     Engine
	images  ImageStore
	environ map[string]string
	o       UpRunOptions
	byName  map[string]ContainerStatus
	files   map[string][]spec.File // each service's secrets and configs
	claims  portClaims             // host ports of ranges given out
}

func (u *upper) progress(name, status string, err error) {
	u.o.Progress(Progress{Resource: "Container " + name, Status: status, Err: err})
}

// do carries out one step.
func (u *upper) do(ctx context.Context, s Step) error {
	old := u.byName[s.Name]
	switch s.Do {
	case StepKeep:
		u.progress(s.Name, StatusRunning, nil)
		return nil
	case StepStart:
		if u.o.NoStart {
			return nil
		}
		return u.start(ctx, s, old.ID)
	case StepRestart:
		u.progress(s.Name, StatusRestarting, nil)
		preStop(ctx, u.eng, u.p, old, u.o.Warn)
		if err := u.eng.Stop(ctx, u.p.Name, old.ID, u.o.Timeout); err != nil {
			u.progress(s.Name, StatusError, err)
			return err
		}
		err := u.eng.Start(ctx, u.p.Name, old.ID)
		if err == nil {
			err = postStart(ctx, u.eng, u.p, s.Service, old.ID)
		}
		if err != nil {
			u.progress(s.Name, StatusError, err)
			return err
		}
		u.progress(s.Name, StatusRestarted, nil)
		return nil
	case StepRecreate:
		u.progress(s.Name, StatusRecreate, nil)
	case StepCreate:
		u.progress(s.Name, StatusCreating, nil)
	}
	var previous *ContainerStatus
	if s.Do == StepRecreate {
		previous = &old
	}
	// The new container's configuration first: what can fail in it (a
	// bind source missing, a volume with other options) must leave the
	// container it replaces in place. The replacement takes the old one's
	// id, so the old one goes before the new one is made.
	c, err := u.prepare(ctx, s, previous)
	if err != nil {
		u.progress(s.Name, StatusError, err)
		return err
	}
	if s.Do == StepRecreate {
		preStop(ctx, u.eng, u.p, old, u.o.Warn)
		if err := u.eng.Delete(ctx, u.p.Name, old.ID, u.o.Timeout); err != nil {
			u.progress(s.Name, StatusError, err)
			return err
		}
		if err := u.dropAnonymous(ctx, s.Service, old); err != nil {
			u.progress(s.Name, StatusError, err)
			return err
		}
	}
	id, err := u.make(ctx, u.p.Services[s.Service], c)
	if err != nil {
		u.progress(s.Name, StatusError, err)
		return err
	}
	if s.Do == StepRecreate {
		u.progress(s.Name, StatusRecreated, nil)
	} else {
		u.progress(s.Name, StatusCreated, nil)
	}
	if u.o.NoStart {
		return nil
	}
	return u.start(ctx, s, id)
}

func (u *upper) start(ctx context.Context, s Step, id string) error {
	u.progress(s.Name, StatusStarting, nil)
	if err := u.eng.Start(ctx, u.p.Name, id); err != nil {
		u.progress(s.Name, StatusError, err)
		return err
	}
	if err := postStart(ctx, u.eng, u.p, s.Service, id); err != nil {
		u.progress(s.Name, StatusError, err)
		return err
	}
	u.progress(s.Name, StatusStarted, nil)
	return nil
}

// dropAnonymous removes, with up -V, the anonymous volumes of a removed
// container of service that no other container uses: its successor gets
// new ones.
func (u *upper) dropAnonymous(ctx context.Context, service string, old ContainerStatus) error {
	if !u.o.RenewAnonVolumes {
		return nil
	}
	cs, err := u.eng.List(ctx)
	if err != nil {
		return err
	}
	_, err = removeAnonymous(u.eng.Volumes(), cs, ownAnonymousVolumes(u.p.Name, service, old.Mounts))
	return err
}

// checkContainers fails, before anything is created, when a service
// cannot make a container: its image is missing, or its configuration
// has a value the container spec or the runtime refuses (a restart
// policy, a capability, a sysctl). Each service is checked once, as its
// first replica.
func checkContainers(ctx context.Context, p *types.Project, services []string, images ImageStore, environ map[string]string, eng Engine) error {
	// ~0.4 ms of CPU each: on every CPU at once, the first error in the
	// services' order reported.
	errs := make([]error, len(services))
	var eg errgroup.Group
	eg.SetLimit(runtime.NumCPU())
	for i, name := range services {
		eg.Go(func() error {
			errs[i] = checkContainer(ctx, p, p.Services[name], images, environ, eng)
			return nil
		})
	}
	eg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func checkContainer(ctx context.Context, p *types.Project, svc types.ServiceConfig, images ImageStore, environ map[string]string, eng Engine) error {
	img, err := serviceImage(ctx, images, p.Name, svc)
	if err != nil {
		return err
	}
	c, err := ContainerSpec(p, svc, 1, img, environ)
	if err != nil {
		return err
	}
	if err := eng.Check(c); err != nil {
		return &project.Error{Service: svc.Name, Err: err}
	}
	return nil
}

// checkNames fails, before anything is created, when the name of a
// container about to be created (its container_name, or the default
// <project>-<service>-<n> of each replica) is another project's
// container's (the runtime refuses it anyway, but only once the networks
// are made).
func checkNames(ctx context.Context, eng Engine, p *types.Project, services []string, compatibility bool) error {
	named := map[string]string{} // container name -> service
	for _, s := range services {
		svc := p.Services[s]
		if svc.ContainerName != "" {
			named[svc.ContainerName] = s
			continue
		}
		for n := 1; n <= svc.GetScale(); n++ {
			named[ContainerName(p.Name, svc, n, compatibility)] = s
		}
	}
	if len(named) == 0 {
		return nil
	}
	cs, err := eng.List(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		s, ok := named[c.Name]
		if !ok || c.Project() == p.Name {
			continue
		}
		key, hint := "container_name", "container names are global on the host: remove that container, or give this one another name"
		if p.Services[s].ContainerName == "" {
			key, hint = "", "container names are global on the host: remove that container, or give this service a container_name"
		}
		return &project.Error{Service: s, Key: key, Err: fmt.Errorf("%w: container name %q is already in use by a container of project %q", errdefs.ErrConflict, c.Name, c.Project()), Hint: hint}
	}
	return nil
}

// prepare is the configuration of replica s.Number of its service, its
// volumes made; previous is the container it replaces, if any.
func (u *upper) prepare(ctx context.Context, s Step, previous *ContainerStatus) (spec.Container, error) {
	svc := u.p.Services[s.Service]
	img, err := serviceImage(ctx, u.images, u.p.Name, svc)
	if err != nil {
		return spec.Container{}, err
	}
	c, err := ContainerSpec(u.p, svc, s.Number, img, u.environ)
	if err != nil {
		return spec.Container{}, err
	}
	// The name as the options make it: a recreated container takes the
	// name its service gives now (container_name, the separator).
	c.Name = ContainerName(u.p.Name, svc, s.Number, u.o.Compatibility)
	// The containers as they are now (a volumes_from source was made
	// earlier in this walk), read only when needed: listing them all for
	// each of hundreds of replicas would make up quadratic.
	var cs []ContainerStatus
	if len(svc.VolumesFrom) > 0 || u.o.RenewAnonVolumes {
		if cs, err = u.eng.List(ctx); err != nil {
			return spec.Container{}, err
		}
	}
	vols, err := mounts(u.p, svc, u.eng.Volumes(), mountOptions{number: s.Number, image: img, containers: cs,
		previous: previous, renew: u.o.RenewAnonVolumes, progress: u.o.Progress})
	if err != nil {
		return spec.Container{}, err
	}
	c.Mounts = append(c.Mounts, vols...)
	sortMounts(c.Mounts)
	giveFiles(&c, u.files[svc.Name])
	return c, nil
}

// make gives c its networks and creates it, and returns its id.
func (u *upper) make(ctx context.Context, svc types.ServiceConfig, c spec.Container) (string, error) {
	nm := u.eng.Networks()
	if err := connect(ctx, u.p, svc, &c, nm, connectOptions{publish: true, claims: &u.claims}); err != nil {
		return "", err
	}
	if err := u.eng.Create(ctx, c); err != nil {
		nm.Release(context.WithoutCancel(ctx), c.ID)
		return "", fmt.Errorf("creating container %s: %w", c.Name, err)
	}
	return c.ID, nil
}

// removeAll removes the plan's removals: the orphans (orphans true) or the
// replicas beyond the scale.
func (u *upper) removeAll(ctx context.Context, removes []Step, orphans bool) error {
	eg, ctx := errgroup.WithContext(ctx)
	for _, s := range removes {
		_, isService := u.p.Services[s.Service]
		if s.Do != StepRemove || orphans == isService {
			continue
		}
		eg.Go(func() error {
			c := u.byName[s.Name]
			if c.Running() || c.Restarting {
				if err := stopShown(ctx, u.eng, u.p, c, u.o.Timeout, u.o.Progress, u.o.Warn); err != nil {
					return err
				}
			}
			u.progress(s.Name, StatusRemoving, nil)
			if err := u.eng.Delete(ctx, u.p.Name, c.ID, u.o.Timeout); err != nil {
				u.progress(s.Name, StatusError, err)
				return err
			}
			u.progress(s.Name, StatusRemoved, nil)
			return nil
		})
	}
	return eg.Wait()
}

// waitDependencies waits for what service's depends_on conditions ask of
// the dependencies `up` brings up (walked): to be healthy, or to have
// completed successfully. service_started needs nothing more: the walk
// started them. A dependency with required: false that fails is a
// warning.
func (u *upper) waitDependencies(ctx context.Context, service string, walked []string) error {
	for _, d := range u.g.Dependencies(service) {
		if !slices.Contains(walked, d.Service) {
			continue
		}
		var cond readiness
		switch d.Condition {
		case types.ServiceConditionHealthy:
			cond = needHealthy
		case types.ServiceConditionCompletedSuccessfully:
			cond = needCompleted
		default:
			continue
		}
		if err := u.waitService(ctx, d.Service, cond); err != nil {
			if !d.Required {
				u.o.Warn(fmt.Sprintf("optional dependency %q of %q failed: %v", d.Service, service, err))
				continue
			}
			return err
		}
	}
	return nil
}

// readiness is what a wait waits for.
type readiness int

const (
	needHealthy   readiness = iota // running and healthy (depends_on service_healthy)
	needCompleted                  // exited 0 (service_completed_successfully)
	needReady                      // up --wait: running and healthy if checked, or exited 0
)

// pollInterval is how often waits look at the containers.
const pollInterval = 50 * time.Millisecond

// waitService waits until every container of service is as cond asks, and
// fails as soon as one cannot become so.
func (u *upper) waitService(ctx context.Context, service string, cond readiness) error {
	const (
		waiting = 1
		done    = 2
	)
	seen := map[string]int{}
	for {
		cs, err := projectList(ctx, u.eng, u.p.Name)
		if err != nil {
			return err
		}
		all := true
		for _, c := range cs {
			if c.OneOff() || c.Service() != service {
				continue
			}
			if seen[c.Name] == 0 {
				u.progress(c.Name, StatusWaiting, nil)
				seen[c.Name] = waiting
			}
			ok, err := ready(c, cond)
			if err != nil {
				u.progress(c.Name, StatusError, err)
				return err
			}
			if !ok {
				all = false
			} else if seen[c.Name] == waiting {
				status := StatusHealthy
				if c.Status == "exited" {
					status = StatusExited
				}
				u.progress(c.Name, status, nil)
				seen[c.Name] = done
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// ready tells whether c is as cond asks, or why it never will be.
func ready(c ContainerStatus, cond readiness) (bool, error) {
	exited := c.Done()
	switch cond {
	case needCompleted:
		if !exited {
			return false, nil
		}
		if c.ExitCode != 0 {
			return false, fmt.Errorf("service %q didn't complete successfully: exit %d", c.Service(), c.ExitCode)
		}
		return true, nil
	case needHealthy:
		switch {
		case exited || c.Status == "created":
			return false, fmt.Errorf("dependency failed to start: container %s exited (%d)", c.Name, c.ExitCode)
		case c.Health == "":
			return false, fmt.Errorf("dependency failed to start: container %s has no healthcheck configured", c.Name)
		case c.Health == "unhealthy":
			return false, fmt.Errorf("dependency failed to start: container %s is unhealthy", c.Name)
		}
		return c.Health == "healthy", nil
	default: // needReady
		switch {
		case exited && c.ExitCode == 0:
			return true, nil
		case exited:
			return false, fmt.Errorf("container %s exited (%d)", c.Name, c.ExitCode)
		case c.Health == "unhealthy":
			return false, fmt.Errorf("container %s is unhealthy", c.Name)
		}
		return c.Status == "running" && (c.Health == "" || c.Health == "healthy"), nil
	}
}

// diagnose says why `up --wait` failed: for each container of services
// that is not ready, its state, the output of its last health probe and
// its last log lines.
func (u *upper) diagnose(ctx context.Context, services []string) string {
	cs, err := projectList(ctx, u.eng, u.p.Name)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, c := range cs {
		if c.OneOff() || !slices.Contains(services, c.Service()) {
			continue
		}
		if ok, _ := ready(c, needReady); ok {
			continue
		}
		fmt.Fprintf(&b, "\n\ncontainer %s: %s", c.Name, c.Status)
		if c.Status == "exited" {
			fmt.Fprintf(&b, " (%d)", c.ExitCode)
		}
		if c.Health != "" {
			fmt.Fprintf(&b, ", %s", c.Health)
		}
		if out := strings.TrimSpace(c.HealthOutput); out != "" {
			fmt.Fprintf(&b, "\nlast health check output:\n  %s", strings.ReplaceAll(out, "\n", "\n  "))
		}
		var lines []string
		u.eng.Logs(ctx, c.ID, logs.ReadOptions{Tail: 10}, func(r logs.Record) error {
			lines = append(lines, strings.TrimRight(string(r.Line), "\n"))
			return nil
		})
		if len(lines) > 0 {
			fmt.Fprintf(&b, "\nlast log lines:\n  %s", strings.Join(lines, "\n  "))
		}
	}
	return b.String()
}

// waitReady waits for `up --wait`: every container of services ready.
func (u *upper) waitReady(ctx context.Context, services []string) error {
	eg, ctx := errgroup.WithContext(ctx)
	for _, s := range services {
		eg.Go(func() error { return u.waitService(ctx, s, needReady) })
	}
	return eg.Wait()
}

// projectList lists the containers of a project, one-off ones included,
// sorted by name.
func projectList(ctx context.Context, store ContainerStore, name string) ([]ContainerStatus, error) {
	all, err := store.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []ContainerStatus
	for _, c := range all {
		if c.Project() == name {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b ContainerStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// ensureImages pulls what the services need, as `up` and `run` do: pull
// "" follows each service's pull_policy (missing by default); always
// pulls; never only uses what the store has.
func ensureImages(ctx context.Context, p *types.Project, services []string, images ImageStore, pull string, events func(PullEvent)) error {
	o := PullOptions{Policy: pull, Events: func(e PullEvent) {
		// docker compose says nothing of an image it has.
		if e.Status != PullSkipped && events != nil {
			events(e)
		}
	}}
	switch pull {
	case "":
		o.Policy = "missing"
	case "never":
		o.Policy = "missing"
		for _, name := range services {
			svc := p.Services[name]
			svc.PullPolicy = types.PullPolicyNever
			p.Services[name] = svc
		}
	}
	return pullServices(ctx, p, services, images, o, time.Now())
}

// serviceImage is the image a service's containers are made from: its
// image, or for a service with only build the one docker compose would
// have built, <project>-<service>, when it was loaded.
func serviceImage(ctx context.Context, images ImageStore, projectName string, svc types.ServiceConfig) (*image.Image, error) {
	ref := imageRef(projectName, svc.Name, svc.Image)
	img, err := images.Get(ctx, ref)
	switch {
	case err != nil && svc.Image == "" && errdefs.IsNotFound(err):
		return nil, &project.Error{Service: svc.Name, Key: "build", Err: fmt.Errorf("%w: no image %s, and berth does not build images", errdefs.ErrNotImplemented, ref),
			Hint: fmt.Sprintf("build it elsewhere and load it under that name (docker build -t %s ...; docker save %s | berth load), or give the service an image", ref, ref)}
	case err != nil:
		return nil, &project.Error{Service: svc.Name, Key: "image", Err: err, Hint: "load it with `berth load -i FILE` or pull it with `berth pull`"}
	}
	return img, nil
}

// imageRef is the image of a service whose image key is image: that, or
// for a service with only build, the name docker compose gives the image
// it builds (api.GetImageNameOrDefault).
func imageRef(projectName, service, image string) string {
	if image != "" {
		return image
	}
	return projectName + "-" + service
}
