package compose

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/image"
	"github.com/berth-dev/berth/runtime/spec"
)

// The labels docker compose puts on the containers it creates
// (docker/compose pkg/api/labels.go). berth sets the same ones, with the
// same values, so that tools reading them see berth's containers as
// docker compose's.
const (
	ProjectLabel         = "com.docker.compose.project"
	ServiceLabel         = "com.docker.compose.service"
	ContainerNumberLabel = "com.docker.compose.container-number"
	OneoffLabel          = "com.docker.compose.oneoff"
	ConfigHashLabel      = "com.docker.compose.config-hash"
	WorkingDirLabel      = "com.docker.compose.project.working_dir"
	ConfigFilesLabel     = "com.docker.compose.project.config_files"
	ImageLabel           = "com.docker.compose.image"
	DependsOnLabel       = "com.docker.compose.depends_on"
	networkLabel         = "com.docker.compose.network" // a network's key in its project
	volumeLabel          = "com.docker.compose.volume"  // a volume's key in its project
)

// defaultPathEnv is the PATH Docker gives a Linux container whose image
// and service set none (moby oci.DefaultPathEnv).
const defaultPathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ContainerName is the name docker compose gives replica number of a
// service: container_name, else <project>-<service>-<number>, or with
// compatibility (--compatibility, COMPOSE_COMPATIBILITY) Compose v1's
// <project>_<service>_<number>.
func ContainerName(projectName string, svc types.ServiceConfig, number int, compatibility bool) string {
	if svc.ContainerName != "" {
		return svc.ContainerName
	}
	sep := separator(compatibility)
	return projectName + sep + svc.Name + sep + strconv.Itoa(number)
}

// separator joins the parts of a container's name: "-", or Compose v1's
// "_" with compatibility.
func separator(compatibility bool) string {
	if compatibility {
		return "_"
	}
	return "-"
}

// ContainerID is the host id of replica number of a service: the SHA-256,
// in hex, of the project name, the service name and the number. Like
// Docker's ids it is 64 hex digits, so it is safe as a directory, cgroup
// and libcontainer name, and its first 12 digits are the short id. Unlike
// Docker's it is stable: the same replica keeps its id across `up`,
// recreates and supervisor restarts, so state found on disk names its
// container without a lookup. Two projects never share an id, even where
// their container names collide (project a-b with service c, project a
// with service b-c). A consequence: a recreate must remove the old
// container (or at least its runtime state) before creating the new one.
// container_name does not take part: it renames the container, not the
// replica.
func ContainerID(projectName, service string, number int) string {
	h := sha256.New()
	// NUL cannot occur in a project or service name: the fields cannot run
	// into one another.
	fmt.Fprintf(h, "berth container\x00%s\x00%s\x00%d", projectName, service, number)
	return hex.EncodeToString(h.Sum(nil))
}

// ContainerSpec describes replica number (1, 2, ...) of a service as the
// runtime will create it: the service as project.Load returned it (with
// its environment resolved, env_file folded in, which is the default)
// merged with its image's config the way docker compose and the Docker
// daemon merge them. environ is berth's own environment, used for an
// `environment` entry compose-go left without a value (a bare VAR that
// was not set when the project was loaded).
//
// The result holds no mounts but the service's tmpfs: volumes, secrets,
// configs, ports and networks are added by the code that owns them. It
// is a pure function: it reads nothing and the same input gives the same
// Container.
//
// Errors are invalid arguments (errdefs.ErrInvalidArgument) or keys berth
// does not support yet (errdefs.ErrNotImplemented), and name the service
// and the key.
func ContainerSpec(p *types.Project, svc types.ServiceConfig, number int, img *image.Image, environ map[string]string) (spec.Container, error) {
	return containerSpec(p, svc, number, ContainerID(p.Name, svc.Name, number), img, environ)
}

// containerSpec is ContainerSpec for a container whose id is given: a
// one-off container of `run` has a random one.
func containerSpec(p *types.Project, svc types.ServiceConfig, number int, id string, img *image.Image, environ map[string]string) (spec.Container, error) {
	if number < 1 {
		return spec.Container{}, fmt.Errorf("%w: service %q: replica number %d: numbers start at 1", errdefs.ErrInvalidArgument, svc.Name, number)
	}
	if img == nil {
		return spec.Container{}, fmt.Errorf("%w: service %q: no image", errdefs.ErrInvalidArgument, svc.Name)
	}
	if err := checkSupported(svc); err != nil {
		return spec.Container{}, err
	}
	if _, err := dnsServers(svc); err != nil {
		return spec.Container{}, err
	}
	cfg := img.Config.Config
	b := containerBuilder{svc: svc}

	c := spec.Container{
		ID:     id,
		Name:   ContainerName(p.Name, svc, number, false),
		Image:  svc.Image,
		Layers: slices.Clone(img.Layers),

		Domainname: svc.DomainName,
		ExtraHosts: extraHosts(svc.ExtraHosts),
		DNS:        slices.Clone([]string(svc.DNS)),
		DNSSearch:  slices.Clone([]string(svc.DNSSearch)),
		DNSOptions: slices.Clone(svc.DNSOpts),

		Init:       svc.Init != nil && *svc.Init,
		ReadOnly:   svc.ReadOnly,
		Privileged: svc.Privileged,
		Sysctls:    maps.Clone(map[string]string(svc.Sysctls)),
	}
	// A service with only `build` runs the image docker compose names
	// after it.
	c.Image = imageRef(p.Name, svc.Name, c.Image)
	if img.Record.Config.Hex != "" {
		c.ImageID = img.ID()
	}

	c.NetworkMode = b.networkMode()
	c.UTS, c.IPC, c.Cgroup = b.namespaces()
	c.PID = b.pid()
	c.Exposed = b.exposed(cfg)
	// Docker's default hostname is the first 12 digits of the container's
	// id (daemon.generateHostname) and docker compose sets none of its
	// own: a user sees a short hex id, as here. With the host's network
	// the container takes the host's name when it is created
	// (daemon.newContainer calls os.Hostname()), which only the runtime
	// can read: Hostname stays empty, and so does HOSTNAME in the
	// environment, which Docker sets to that name. spec.go does not say
	// yet that the runtime adds HOSTNAME in that case; it should.
	c.Hostname = svc.Hostname
	if c.Hostname == "" && c.NetworkMode != "host" && c.UTS != "host" {
		c.Hostname = c.ID[:12]
		// In another service's network namespace (network_mode:
		// service:X), X's name, as Docker gives a container the name of
		// the one whose network it joins.
		if target, ok := strings.CutPrefix(svc.NetworkMode, types.NetworkModeServicePrefix); ok {
			if other, ok := p.Services[target]; ok {
				c.Hostname = cmp.Or(other.Hostname, ContainerID(p.Name, target, 1)[:12])
			}
		}
	}

	c.Process.Args = b.args(cfg)
	c.Process.Env = b.env(cfg, c.Hostname, environ)
	c.Process.WorkingDir = b.workingDir(cfg)
	c.Process.User = svc.User
	if c.Process.User == "" {
		c.Process.User = cfg.User
	}
	c.Process.GroupAdd = slices.Clone(svc.GroupAdd)
	c.Process.TTY = svc.Tty
	c.Process.OpenStdin = svc.StdinOpen

	c.Labels = b.labels(p, number, cfg, c.ImageID)
	c.StopSignal = b.stopSignal(cfg)
	if svc.StopGracePeriod != nil {
		// docker compose sends whole seconds (ToSeconds truncates): 1500ms
		// waits 1 s, 500ms kills at once. A pointer to 0 means "kill at
		// once", nil the 10 s default (spec.go says "10 s when zero", which
		// can only mean nil).
		d := time.Duration(*svc.StopGracePeriod).Truncate(time.Second)
		c.StopGracePeriod = &d
	}

	c.Mounts = b.tmpfs()
	if svc.ShmSize < 0 {
		b.fail(errdefs.ErrInvalidArgument, "shm_size", "%d: must not be negative", svc.ShmSize)
	}
	c.ShmSize = int64(svc.ShmSize)
	c.CapAdd = b.capabilities("cap_add", svc.CapAdd)
	c.CapDrop = b.capabilities("cap_drop", svc.CapDrop)
	b.securityOpts(&c)
	c.Devices = b.devices()
	c.Ulimits = b.ulimits()
	if svc.OomScoreAdj < -1000 || svc.OomScoreAdj > 1000 {
		b.fail(errdefs.ErrInvalidArgument, "oom_score_adj", "%d: must be between -1000 and 1000", svc.OomScoreAdj)
	}
	c.OomScoreAdj = int(svc.OomScoreAdj)
	c.Resources = b.resources()
	c.Log = b.log()

	c.Healthcheck = b.healthcheck(img.Config.Config.Healthcheck)
	c.Restart = b.restart()

	if b.err != nil {
		return spec.Container{}, b.err
	}
	return c, nil
}

// healthcheck merges the service's healthcheck over the image's, field by
// field, as the Docker daemon merges a container's over its image's: an
// empty test, a zero duration or retries inherit the image's. disable:
// true or a test of [NONE] (in either) means none.
func (b *containerBuilder) healthcheck(image *v1.HealthConfig) *spec.Healthcheck {
	var h spec.Healthcheck
	if image != nil {
		h = spec.Healthcheck{Test: slices.Clone(image.Test), Interval: image.Interval, Timeout: image.Timeout,
			StartPeriod: image.StartPeriod, Retries: image.Retries}
	}
	if sh := b.svc.HealthCheck; sh != nil {
		if sh.Disable {
			return nil
		}
		if len(sh.Test) > 0 {
			h.Test = slices.Clone([]string(sh.Test))
		}
		for _, d := range []struct {
			from *types.Duration
			to   *time.Duration
		}{{sh.Interval, &h.Interval}, {sh.Timeout, &h.Timeout}, {sh.StartPeriod, &h.StartPeriod}, {sh.StartInterval, &h.StartInterval}} {
			if d.from != nil {
				if *d.from < 0 {
					b.fail(errdefs.ErrInvalidArgument, "healthcheck", "durations must not be negative")
				}
				if *d.from != 0 {
					*d.to = time.Duration(*d.from)
				}
			}
		}
		if sh.Retries != nil && *sh.Retries != 0 {
			h.Retries = int(*sh.Retries)
		}
	}
	if len(h.Test) == 0 || h.Test[0] == "NONE" {
		return nil
	}
	switch h.Test[0] {
	case "CMD", "CMD-SHELL":
		if len(h.Test) < 2 {
			b.fail(errdefs.ErrInvalidArgument, "healthcheck.test", "%s needs a command", h.Test[0])
		}
	default:
		b.fail(errdefs.ErrInvalidArgument, "healthcheck.test", "%q: start with CMD, CMD-SHELL or NONE", h.Test[0])
	}
	return &h
}

// restart reads restart, else deploy.restart_policy as docker compose maps
// it (condition any: always, on-failure with max_attempts, none: no).
func (b *containerBuilder) restart() spec.Restart {
	policy := b.svc.Restart
	if policy == "" && b.svc.Deploy != nil && b.svc.Deploy.RestartPolicy != nil {
		rp := b.svc.Deploy.RestartPolicy
		switch rp.Condition {
		case "any", "":
			return spec.Restart{Policy: "always"}
		case "on-failure":
			r := spec.Restart{Policy: "on-failure"}
			if rp.MaxAttempts != nil {
				r.MaxRetries = int(*rp.MaxAttempts)
			}
			return r
		case "none":
			return spec.Restart{Policy: "no"}
		default:
			b.fail(errdefs.ErrInvalidArgument, "deploy.restart_policy.condition", "%q: use none, on-failure or any", rp.Condition)
			return spec.Restart{}
		}
	}
	name, n, hasN := strings.Cut(policy, ":")
	switch name {
	case "", "no", "always", "unless-stopped":
		if hasN {
			b.fail(errdefs.ErrInvalidArgument, "restart", "%q: only on-failure takes a maximum", policy)
		}
		return spec.Restart{Policy: cmp.Or(name, "no")}
	case "on-failure":
		r := spec.Restart{Policy: name}
		if hasN {
			max, err := strconv.Atoi(n)
			if err != nil || max < 0 {
				b.fail(errdefs.ErrInvalidArgument, "restart", "%q: the maximum is a number of retries", policy)
			}
			r.MaxRetries = max
		}
		return r
	}
	b.fail(errdefs.ErrInvalidArgument, "restart", "%q: use no, always, on-failure[:N] or unless-stopped", policy)
	return spec.Restart{}
}

// containerBuilder keeps the first error met while the Container is
// built, so that each field reads as one line above.
type containerBuilder struct {
	svc types.ServiceConfig
	err error
}

// fail records an error about a key of the service, the first one only.
func (b *containerBuilder) fail(kind error, key, format string, a ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("%w: service %q: %s: %s", kind, b.svc.Name, key, fmt.Sprintf(format, a...))
	}
}

// args merges entrypoint and command with the image's ENTRYPOINT and CMD
// as docker compose and the daemon do together (docker/compose
// getCreateConfigs passes the service's values, nil when absent; moby
// daemon merge and mergeAndVerifyConfig fill them in):
//
//   - an entrypoint with at least one element replaces the image's and
//     drops the image's CMD: only `command` follows it;
//   - otherwise `command` (if not empty) replaces the image's CMD, and the
//     image's ENTRYPOINT stays unless `entrypoint` is explicitly empty
//     (`entrypoint: []` or `""`), which clears it;
//   - so `command: []` alone keeps the image's CMD: the engine treats an
//     empty Cmd as absent (docker/compose#5272), whatever the Compose
//     Specification says;
//   - `entrypoint: [""]` (docker run --entrypoint "") clears both the
//     image's ENTRYPOINT and its CMD.
func (b *containerBuilder) args(cfg v1.Config) []string {
	var entrypoint, cmd []string
	if len(b.svc.Entrypoint) > 0 {
		entrypoint, cmd = b.svc.Entrypoint, b.svc.Command
	} else {
		cmd = b.svc.Command
		if len(cmd) == 0 {
			cmd = cfg.Cmd
		}
		if b.svc.Entrypoint == nil {
			entrypoint = cfg.Entrypoint
		}
	}
	if len(entrypoint) == 1 && entrypoint[0] == "" {
		entrypoint = nil
	}
	args := append(slices.Clone(entrypoint), cmd...)
	if len(args) == 0 {
		b.fail(errdefs.ErrInvalidArgument, "command", "no command specified: the image has no ENTRYPOINT or CMD; set entrypoint or command")
		return nil
	}
	if args[0] == "" {
		b.fail(errdefs.ErrInvalidArgument, "command", "the program to run is an empty string; set entrypoint or command")
		return nil
	}
	return args
}

// env is the process environment as Docker builds it
// (moby daemon merge and Container.CreateDaemonEnvironment): PATH (the
// default one), HOSTNAME and, with a tty, TERM=xterm; then the image's
// Env; then the service's environment. A later value replaces an earlier
// one in place; a new key is appended, the image's in its order, the
// service's sorted by name (docker compose sends a map, in no order, and
// the daemon puts the service's keys before the image's: the values are
// the same, only the order of the list differs). A key
// without a value (a bare VAR in the file that was not set anywhere,
// after looking in environ) removes the variable, even the image's or
// PATH: Docker drops "VAR" entries that have no '='.
//
// HOME is not set here: the runtime adds it from the image's /etc/passwd
// when the user has none, as Docker does at start.
func (b *containerBuilder) env(cfg v1.Config, hostname string, environ map[string]string) []string {
	var e envList
	e.set("PATH", defaultPathEnv)
	if hostname != "" {
		// Empty with network_mode host: see ContainerSpec.
		e.set("HOSTNAME", hostname)
	}
	if b.svc.Tty {
		e.set("TERM", "xterm")
	}
	for _, kv := range cfg.Env {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case k == "":
		case ok:
			e.set(k, v)
		default:
			e.unset(k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b.svc.Environment)) {
		if v := b.svc.Environment[k]; v != nil {
			e.set(k, *v)
		} else if v, ok := environ[k]; ok {
			e.set(k, v)
		} else {
			e.unset(k)
		}
	}
	return e.list()
}

// envList is an environment that keeps its order: a key set again keeps
// its place.
type envList struct {
	keys   []string
	values map[string]string
}

func (e *envList) set(k, v string) {
	if e.values == nil {
		e.values = map[string]string{}
	}
	if _, ok := e.values[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.values[k] = v
}

func (e *envList) unset(k string) {
	if _, ok := e.values[k]; ok {
		delete(e.values, k)
		e.keys = slices.DeleteFunc(e.keys, func(s string) bool { return s == k })
	}
}

func (e *envList) list() []string {
	out := make([]string, len(e.keys))
	for i, k := range e.keys {
		out[i] = k + "=" + e.values[k]
	}
	return out
}

// workingDir is working_dir, else the image's WorkingDir, which must be
// absolute (moby verifyContainerSettings: "it needs to be an absolute
// path"; RELIABILITY.md asks the same of images), cleaned as the daemon
// does.
func (b *containerBuilder) workingDir(cfg v1.Config) string {
	wd, key := b.svc.WorkingDir, "working_dir"
	if wd == "" {
		wd, key = cfg.WorkingDir, "image WorkingDir"
	}
	if wd == "" {
		return ""
	}
	if !path.IsAbs(wd) {
		b.fail(errdefs.ErrInvalidArgument, key, "%q is not an absolute path", wd)
		return ""
	}
	return path.Clean(wd)
}

// labels are the image's labels, then the service's, then docker
// compose's own (pkg/compose/loader.go postProcessProject, create.go
// prepareLabels, the image digest set by ensureImagesExists), then the
// service's CustomLabels, which berth's verbs (not the file) set: `run`
// marks its one-off containers there. Each later set wins, as the daemon's
// merge keeps the user's label over the image's. An image never sets
// com.docker.compose.* or berth.* labels: they are dropped from its
// config, whatever the rest says.
func (b *containerBuilder) labels(p *types.Project, number int, cfg v1.Config, imageID string) map[string]string {
	labels := map[string]string{}
	for k, v := range cfg.Labels {
		if strings.HasPrefix(k, "com.docker.compose.") || strings.HasPrefix(k, "berth.") {
			continue
		}
		labels[k] = v
	}
	maps.Copy(labels, b.svc.Labels)

	hash, err := project.ServiceHash(b.svc)
	if err != nil {
		b.fail(errdefs.ErrInvalidArgument, "config-hash", "%v", err)
	}
	var deps []string
	for _, name := range slices.Sorted(maps.Keys(b.svc.DependsOn)) {
		d := b.svc.DependsOn[name]
		deps = append(deps, fmt.Sprintf("%s:%s:%t", name, d.Condition, d.Restart))
	}
	labels[ProjectLabel] = p.Name
	labels[ServiceLabel] = b.svc.Name
	labels[ContainerNumberLabel] = strconv.Itoa(number)
	labels[OneoffLabel] = "False"
	labels[ConfigHashLabel] = hash
	labels[WorkingDirLabel] = p.WorkingDir
	labels[ConfigFilesLabel] = strings.Join(p.ComposeFiles, ",")
	labels[DependsOnLabel] = strings.Join(deps, ",")
	if imageID != "" {
		labels[ImageLabel] = imageID
	}
	maps.Copy(labels, b.svc.CustomLabels)
	return labels
}

// stopSignal is stop_signal, else the image's StopSignal, checked and
// written as SIG<NAME> (a number becomes its name). Docker refuses a
// signal it cannot parse when the container is created
// (moby verifyContainerSettings, signal.ParseSignal).
func (b *containerBuilder) stopSignal(cfg v1.Config) string {
	s, key := b.svc.StopSignal, "stop_signal"
	if s == "" {
		s, key = cfg.StopSignal, "image StopSignal"
	}
	if s == "" {
		return ""
	}
	name, ok := signalName(s)
	if !ok {
		b.fail(errdefs.ErrInvalidArgument, key, "%q is not a signal: use a name such as SIGTERM or SIGQUIT, or a number from 1 to 64", s)
		return ""
	}
	return name
}

// signalName reads a signal as moby's signal.ParseSignal does on Linux:
// a number, or a name with or without SIG, in any case, including
// RTMIN+n and RTMAX-n. Numbers are limited to the kernel's 1 to 64.
func signalName(s string) (string, bool) {
	names := strings.Fields(linuxSignals)
	if n, err := strconv.Atoi(s); err == nil {
		switch {
		case n >= 1 && n <= len(names):
			return "SIG" + names[n-1], true
		case n == 32 || n == 33:
			return s, true // glibc's own, no name
		case n == 34:
			return "SIGRTMIN", true
		case n > 34 && n < 50:
			return "SIGRTMIN+" + strconv.Itoa(n-34), true
		case n >= 50 && n < 64:
			return "SIGRTMAX-" + strconv.Itoa(64-n), true
		case n == 64:
			return "SIGRTMAX", true
		}
		return "", false
	}
	up := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	switch up {
	case "IOT", "CLD", "POLL", "RTMIN", "RTMAX":
		return "SIG" + up, true
	}
	if slices.Contains(names, up) {
		return "SIG" + up, true
	}
	for _, rt := range []struct {
		prefix string
		limit  int
	}{{"RTMIN+", 15}, {"RTMAX-", 14}} {
		if rest, ok := strings.CutPrefix(up, rt.prefix); ok {
			if n, err := strconv.Atoi(rest); err == nil && n >= 1 && n <= rt.limit && strconv.Itoa(n) == rest {
				return "SIG" + up, true
			}
		}
	}
	return "", false
}

// linuxSignals are Linux's signals 1 to 31 in number order (signal(7)).
// IOT, CLD and POLL are other names of ABRT, CHLD and IO.
const linuxSignals = `HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM
	STKFLT CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS`

// networkMode maps network_mode. Without one a docker compose service
// joins its networks (the project's default one if it names none):
// "bridge", whose attachments the verbs add (connect).
func (b *containerBuilder) networkMode() string {
	switch m := b.svc.NetworkMode; {
	case m == "" || m == "bridge":
		return "bridge"
	case m == "host" || m == "none":
		return m
	case strings.HasPrefix(m, types.NetworkModeServicePrefix), strings.HasPrefix(m, types.NetworkModeContainerPrefix):
		// Another container's namespace: its path is the verbs' to find
		// (connect).
		if len(b.svc.Ports) > 0 {
			b.fail(errdefs.ErrInvalidArgument, "ports", "a service with network_mode %q cannot publish ports: the container it shares the network of does", m)
		}
		return "container"
	default:
		b.fail(errdefs.ErrNotImplemented, "network_mode", "%q is not supported yet: use host or none, or leave it out", m)
	}
	return ""
}

// exposed are the ports the image and the service's expose name, as
// "PORT/PROTOCOL" (tcp when none is given), a range one entry per port,
// sorted by port. An entry that is no port or range fails.
func (b *containerBuilder) exposed(cfg v1.Config) []string {
	set := map[string]bool{}
	for p := range cfg.ExposedPorts {
		set[p] = true
	}
	for _, e := range b.svc.Expose {
		ports, proto, _ := strings.Cut(e, "/")
		if proto == "" {
			proto = "tcp"
		}
		first, last, isRange := strings.Cut(ports, "-")
		lo, err1 := strconv.ParseUint(first, 10, 16)
		hi, err2 := lo, error(nil)
		if isRange {
			hi, err2 = strconv.ParseUint(last, 10, 16)
		}
		if err1 != nil || err2 != nil || lo == 0 || hi < lo || hi-lo >= 1024 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
			b.fail(errdefs.ErrInvalidArgument, "expose", "%q: use PORT[-PORT][/tcp|udp|sctp], a range of at most 1024 ports", e)
			return nil
		}
		for n := lo; n <= hi; n++ {
			set[fmt.Sprintf("%d/%s", n, proto)] = true
		}
	}
	out := slices.Collect(maps.Keys(set))
	slices.SortFunc(out, func(x, y string) int {
		px, _, _ := strings.Cut(x, "/")
		py, _, _ := strings.Cut(y, "/")
		nx, _ := strconv.Atoi(px)
		ny, _ := strconv.Atoi(py)
		return cmp.Or(cmp.Compare(nx, ny), strings.Compare(x, y))
	})
	return out
}

// extraHosts are the extra_hosts entries as "name:address", sorted by name
// (compose-go keeps them in a map), a name's addresses in the file's
// order. host-gateway is left for the runtime to resolve.
func extraHosts(h types.HostsList) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(h)) {
		for _, addr := range h[name] {
			out = append(out, name+":"+addr)
		}
	}
	return out
}

// tmpfs mounts the service's tmpfs entries ("/path" or "/path:options")
// with the options Docker gives them (moby oci_linux.go withMounts):
// noexec, nosuid, nodev and rprivate, overridden by the entry's own, one
// value per option (mount.MergeTmpfsOptions). ro and rw become ReadOnly.
func (b *containerBuilder) tmpfs() []spec.Mount {
	var mounts []spec.Mount
	for _, t := range b.svc.Tmpfs {
		target, data, _ := strings.Cut(t, ":")
		if !path.IsAbs(target) || path.Clean(target) == "/" {
			b.fail(errdefs.ErrInvalidArgument, "tmpfs", "%q: the mount point must be an absolute path other than /", target)
			return nil
		}
		opts := []string{"noexec", "nosuid", "nodev", "rprivate"}
		if data != "" {
			opts = append(opts, strings.Split(data, ",")...)
		}
		merged, err := mergeTmpfsOptions(opts)
		if err != nil {
			b.fail(errdefs.ErrInvalidArgument, "tmpfs", "%q: %v", t, err)
			return nil
		}
		m := spec.Mount{Type: "tmpfs", Target: path.Clean(target)}
		for _, o := range merged {
			switch o {
			case "ro":
				m.ReadOnly = true
			case "rw":
			default:
				m.Options = append(m.Options, o)
			}
		}
		mounts = append(mounts, m)
	}
	return mounts
}

// mergeTmpfsOptions keeps the last of options that set the same mount
// flag (noexec and exec), the same propagation or the same data key
// (size=), as moby's mount.MergeTmpfsOptions, and refuses what tmpfs does
// not take.
func mergeTmpfsOptions(options []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for i := len(options) - 1; i >= 0; i-- {
		o := options[i]
		if o == "defaults" {
			continue
		}
		key, ok := tmpfsFlagGroup(o)
		if !ok {
			k, _, hasValue := strings.Cut(o, "=")
			switch k {
			case "size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol":
			default:
				return nil, fmt.Errorf("invalid tmpfs option %q", o)
			}
			if !hasValue {
				return nil, fmt.Errorf("invalid tmpfs option %q: write %s=value", o, k)
			}
			key = k + "="
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, o)
		}
	}
	slices.Reverse(out)
	return out, nil
}

// tmpfsFlagGroup says which mount flag a flag option sets or clears: the
// options of one group override one another.
func tmpfsFlagGroup(o string) (string, bool) {
	switch o {
	case "ro", "rw":
		return "rdonly", true
	case "suid", "nosuid":
		return "nosuid", true
	case "dev", "nodev":
		return "nodev", true
	case "exec", "noexec":
		return "noexec", true
	case "sync", "async":
		return "sync", true
	case "dirsync":
		return "dirsync", true
	case "remount":
		return "remount", true
	case "mand", "nomand":
		return "mand", true
	case "atime", "noatime":
		return "noatime", true
	case "diratime", "nodiratime":
		return "nodiratime", true
	case "relatime", "norelatime":
		return "relatime", true
	case "strictatime", "nostrictatime":
		return "strictatime", true
	case "bind", "rbind", "unbindable", "runbindable", "private", "rprivate", "shared", "rshared", "slave", "rslave":
		return "propagation", true
	}
	return "", false
}

// capabilities normalises cap_add and cap_drop as the daemon does
// (moby caps.NormalizeLegacyCapabilities): upper case, CAP_ prefixed, ALL
// kept as is, unknown names refused. Duplicates are dropped.
func (b *containerBuilder) capabilities(key string, names []string) []string {
	var out []string
	for _, n := range names {
		n = capName(n)
		if n != "ALL" && !slices.Contains(strings.Fields(linuxCapabilities), n) {
			b.fail(errdefs.ErrInvalidArgument, key, "unknown capability %q", n)
			return nil
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// capName is a capability's name as the daemon spells it: upper case,
// CAP_ prefixed; ALL as is.
func capName(n string) string {
	n = strings.ToUpper(n)
	if n != "ALL" && !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	return n
}

// linuxCapabilities are the capabilities Linux defines (capabilities(7)).
// Whether the host's kernel has them all is the runtime's to check.
const linuxCapabilities = `CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER
	CAP_FSETID CAP_KILL CAP_SETGID CAP_SETUID CAP_SETPCAP CAP_LINUX_IMMUTABLE
	CAP_NET_BIND_SERVICE CAP_NET_BROADCAST CAP_NET_ADMIN CAP_NET_RAW
	CAP_IPC_LOCK CAP_IPC_OWNER CAP_SYS_MODULE CAP_SYS_RAWIO CAP_SYS_CHROOT
	CAP_SYS_PTRACE CAP_SYS_PACCT CAP_SYS_ADMIN CAP_SYS_BOOT CAP_SYS_NICE
	CAP_SYS_RESOURCE CAP_SYS_TIME CAP_SYS_TTY_CONFIG CAP_MKNOD CAP_LEASE
	CAP_AUDIT_WRITE CAP_AUDIT_CONTROL CAP_SETFCAP CAP_MAC_OVERRIDE
	CAP_MAC_ADMIN CAP_SYSLOG CAP_WAKE_ALARM CAP_BLOCK_SUSPEND CAP_AUDIT_READ
	CAP_PERFMON CAP_BPF CAP_CHECKPOINT_RESTORE`

// securityOpts reads security_opt as docker compose (parseSecurityOpts)
// and the daemon (parseSecurityOpt) do: "key=value" or the deprecated
// "key:value", and a bare no-new-privileges. no-new-privileges,
// systempaths=unconfined and writable-cgroups set c's fields. Options
// that ask for what berth already does are accepted (no AppArmor, SELinux
// or seccomp profile is ever applied, so apparmor=unconfined,
// label=disable and seccomp=unconfined change nothing; seccomp=builtin
// names berth's default). A profile is refused as not supported yet
// rather than ignored, since ignoring it would run the container other
// than asked; unknown options are refused as Docker does.
func (b *containerBuilder) securityOpts(c *spec.Container) {
	for _, opt := range b.svc.SecurityOpt {
		if opt == "no-new-privileges" {
			c.NoNewPrivileges = true
			continue
		}
		sep := "="
		if !strings.Contains(opt, "=") {
			sep = ":"
		}
		k, v, ok := strings.Cut(opt, sep)
		if !ok {
			b.fail(errdefs.ErrInvalidArgument, "security_opt", "%q: write key=value, or no-new-privileges", opt)
			return
		}
		switch {
		case k == "no-new-privileges", k == "writable-cgroups":
			on, err := strconv.ParseBool(v)
			if err != nil {
				b.fail(errdefs.ErrInvalidArgument, "security_opt", "%q: %s takes true or false", opt, k)
				return
			}
			if k == "no-new-privileges" {
				c.NoNewPrivileges = on
			} else {
				c.WritableCgroups = on
			}
		case k == "systempaths" && v == "unconfined":
			c.UnmaskedPaths = true
		case k == "systempaths":
			b.fail(errdefs.ErrInvalidArgument, "security_opt", "%q: systempaths takes unconfined", opt)
			return
		case k == "apparmor" && v == "unconfined", k == "label" && v == "disable", k == "seccomp" && (v == "builtin" || v == "unconfined"):
		case k == "apparmor", k == "label", k == "seccomp":
			b.fail(errdefs.ErrNotImplemented, "security_opt", "%q is not supported yet", opt)
			return
		default:
			b.fail(errdefs.ErrInvalidArgument, "security_opt", "%q: unknown option", opt)
			return
		}
	}
}

// namespaces reads uts, ipc and cgroup as the daemon does: uts "host" shares the
// host's hostname, which the service then cannot set; ipc "host" shares
// the host's IPC namespace and /dev/shm (shm_size is refused with it, as
// podman refuses it: the size would have no effect), "none" gives
// the container an IPC namespace of its own without /dev/shm, and
// "private" and "shareable" one with its /dev/shm (berth shares it with
// no one: ipc "service:" and "container:" are refused in checkSupported);
// cgroup "host" shares the host's cgroup namespace, "private" (berth's
// default, on cgroup v1 as on v2) gives the container its own.
func (b *containerBuilder) namespaces() (uts, ipc, cgroup string) {
	switch b.svc.Uts {
	case "":
	case "host":
		uts = "host"
		if b.svc.Hostname != "" {
			b.fail(errdefs.ErrInvalidArgument, "hostname", "%q conflicts with uts: host (the container has the host's name)", b.svc.Hostname)
		}
		if b.svc.DomainName != "" {
			b.fail(errdefs.ErrInvalidArgument, "domainname", "%q conflicts with uts: host (the container has the host's name)", b.svc.DomainName)
		}
	default:
		b.fail(errdefs.ErrInvalidArgument, "uts", "%q: use host, or leave it out", b.svc.Uts)
	}
	switch b.svc.Ipc {
	case "", "private", "shareable":
	case "host", "none":
		ipc = b.svc.Ipc
		if b.svc.ShmSize != 0 {
			b.fail(errdefs.ErrInvalidArgument, "shm_size", "conflicts with ipc: %s (the container has no /dev/shm of its own)", ipc)
		}
	}
	switch b.svc.Cgroup {
	case "", "private":
	case "host":
		cgroup = "host"
	default:
		b.fail(errdefs.ErrInvalidArgument, "cgroup", "%q: use host or private", b.svc.Cgroup)
	}
	return uts, ipc, cgroup
}

// pid is the PID namespace: the container's own, or the host's (pid:
// host). Sharing another container's (service:, container:) is refused
// in checkSupported.
func (b *containerBuilder) pid() string {
	switch b.svc.Pid {
	case "":
		return ""
	case "host":
		return "host"
	}
	b.fail(errdefs.ErrInvalidArgument, "pid", "%q: use host, or leave it out", b.svc.Pid)
	return ""
}

// deviceRule is a device cgroup rule as Docker reads one: a type (a, b or
// c), major:minor with * for any, and access of r, w and m.
var deviceRule = regexp.MustCompile(`^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`)

// deviceRules maps device_cgroup_rules, checked as the docker CLI checks
// --device-cgroup-rule.
func (b *containerBuilder) deviceRules() []spec.DeviceRule {
	var out []spec.DeviceRule
	for _, r := range b.svc.DeviceCgroupRules {
		m := deviceRule.FindStringSubmatch(r)
		if m == nil || !validDeviceMode(m[4]) {
			b.fail(errdefs.ErrInvalidArgument, "device_cgroup_rules", "%q: write a rule as TYPE MAJOR:MINOR ACCESS, such as 'c 1:3 mr' (type a, b or c; * for any number; access of r, w and m)", r)
			return nil
		}
		number := func(s string) int64 {
			if s == "*" {
				return -1
			}
			n, _ := strconv.ParseInt(s, 10, 64)
			return n
		}
		out = append(out, spec.DeviceRule{Type: m[1][0], Major: number(m[2]), Minor: number(m[3]), Access: m[4]})
	}
	return out
}

// blkio maps blkio_config, checked as the daemon checks it
// (verifyPlatformContainerResources): weights 10..1000, 0 for none;
// devices are absolute host paths, which the runtime resolves.
func (b *containerBuilder) blkio() spec.Blkio {
	bc := b.svc.BlkioConfig
	if bc == nil {
		return spec.Blkio{}
	}
	ok := true
	check := func(key, dev string, weight uint16, isWeight bool) {
		switch {
		case !ok:
		case dev != "" && !path.IsAbs(dev):
			b.fail(errdefs.ErrInvalidArgument, "blkio_config."+key, "%q: a device is an absolute path on the host", dev)
			ok = false
		case isWeight && weight != 0 && (weight < 10 || weight > 1000):
			b.fail(errdefs.ErrInvalidArgument, "blkio_config."+key, "%d: a weight is between 10 and 1000", weight)
			ok = false
		}
	}
	check("weight", "", bc.Weight, true)
	out := spec.Blkio{Weight: bc.Weight}
	for _, d := range bc.WeightDevice {
		check("weight_device", d.Path, d.Weight, true)
		out.WeightDevice = append(out.WeightDevice, spec.WeightDevice{Path: d.Path, Weight: d.Weight})
	}
	for _, t := range []struct {
		key  string
		from []types.ThrottleDevice
		to   *[]spec.ThrottleDevice
	}{
		{"device_read_bps", bc.DeviceReadBps, &out.ReadBps},
		{"device_write_bps", bc.DeviceWriteBps, &out.WriteBps},
		{"device_read_iops", bc.DeviceReadIOps, &out.ReadIOPS},
		{"device_write_iops", bc.DeviceWriteIOps, &out.WriteIOPS},
	} {
		for _, d := range t.from {
			check(t.key, d.Path, 0, false)
			if d.Rate < 0 && ok {
				b.fail(errdefs.ErrInvalidArgument, "blkio_config."+t.key, "%s: the rate must not be negative", d.Path)
				ok = false
			}
			*t.to = append(*t.to, spec.ThrottleDevice{Path: d.Path, Rate: uint64(d.Rate)})
		}
	}
	if !ok {
		return spec.Blkio{}
	}
	return out
}

// devices maps devices. A source must be a device path: CDI names
// (vendor.com/class=name), which docker compose turns into a CDI device
// request, are not supported yet. Permissions are r, w and m, each at
// most once (moby's validDeviceMode); empty means rwm.
func (b *containerBuilder) devices() []spec.Device {
	var out []spec.Device
	for _, d := range b.svc.Devices {
		if !path.IsAbs(d.Source) {
			if strings.Contains(d.Source, "=") && strings.Contains(d.Source, "/") {
				b.fail(errdefs.ErrNotImplemented, "devices", "%q: CDI devices are not supported yet", d.Source)
			} else {
				b.fail(errdefs.ErrInvalidArgument, "devices", "%q: the device must be an absolute path on the host", d.Source)
			}
			return nil
		}
		if d.Target != "" && !path.IsAbs(d.Target) {
			b.fail(errdefs.ErrInvalidArgument, "devices", "%q: the path in the container must be absolute", d.Target)
			return nil
		}
		if !validDeviceMode(d.Permissions) {
			b.fail(errdefs.ErrInvalidArgument, "devices", "%q: permissions %q: use r, w and m", d.Source, d.Permissions)
			return nil
		}
		out = append(out, spec.Device{Host: d.Source, Container: d.Target, Permissions: d.Permissions})
	}
	return out
}

func validDeviceMode(mode string) bool {
	if len(mode) > 3 {
		return false
	}
	for i, c := range mode {
		if !strings.ContainsRune("rwm", c) || strings.ContainsRune(mode[:i], c) {
			return false
		}
	}
	return true
}

// ulimits maps ulimits as docker compose does (toUlimits): a single value
// is both limits, soft and hard replace it. Names and values are checked
// as the docker CLI checks --ulimit (go-units ParseUlimit): known names,
// soft at most hard, -1 for unlimited. Sorted by name.
func (b *containerBuilder) ulimits() []spec.Ulimit {
	var out []spec.Ulimit
	for _, name := range slices.Sorted(maps.Keys(b.svc.Ulimits)) {
		u := b.svc.Ulimits[name]
		if u == nil {
			continue
		}
		soft, hard := u.Single, u.Single
		if u.Soft != 0 {
			soft = u.Soft
		}
		if u.Hard != 0 {
			hard = u.Hard
		}
		ul, err := units.ParseUlimit(fmt.Sprintf("%s=%d:%d", name, soft, hard))
		if err != nil {
			b.fail(errdefs.ErrInvalidArgument, "ulimits", "%s: %v", name, err)
			return nil
		}
		out = append(out, spec.Ulimit{Name: ul.Name, Soft: ul.Soft, Hard: ul.Hard})
	}
	return out
}

// resources maps the cgroup limits as docker compose does
// (getDeployResources): the service's keys, then deploy.resources.limits
// (cpus, memory, pids) and reservations.memory where they are set;
// reservations.cpus is a Swarm setting docker compose leaves out. The
// checks and defaults are the daemon's (verifyPlatformContainerResources,
// adaptContainerSettings): memory at least 6 MB, swap at least memory and
// twice memory when unset, cpus exclusive with cpu_period and cpu_quota,
// cpu_shares clamped to 2..262144.
func (b *containerBuilder) resources() spec.Resources {
	s := b.svc
	r := spec.Resources{
		Memory:            int64(s.MemLimit),
		MemoryReservation: int64(s.MemReservation),
		MemorySwap:        int64(s.MemSwapLimit),
		// float32 arithmetic, as docker compose: 1.1 gives 1100000000.
		NanoCPUs:   int64(s.CPUS * 1e9),
		CPUShares:  s.CPUShares,
		CPUQuota:   s.CPUQuota,
		CPUPeriod:  s.CPUPeriod,
		CpusetCpus: s.CPUSet,
		PidsLimit:  s.PidsLimit,

		OomKillDisable: s.OomKillDisable,
		Blkio:          b.blkio(),
		DeviceRules:    b.deviceRules(),
	}
	// docker compose leaves 0 out; the daemon reads -1 as unset.
	if s.MemSwappiness != 0 && s.MemSwappiness != -1 {
		if s.MemSwappiness < 0 || s.MemSwappiness > 100 {
			b.fail(errdefs.ErrInvalidArgument, "mem_swappiness", "%d: use a value from 0 to 100", int64(s.MemSwappiness))
		}
		sw := int64(s.MemSwappiness)
		r.MemorySwappiness = &sw
	}
	memKey, resKey, cpusKey := "mem_limit", "mem_reservation", "cpus"
	if s.Deploy != nil {
		if l := s.Deploy.Resources.Limits; l != nil {
			if l.MemoryBytes != 0 {
				r.Memory, memKey = int64(l.MemoryBytes), "deploy.resources.limits.memory"
			}
			if l.NanoCPUs != 0 {
				r.NanoCPUs, cpusKey = int64(l.NanoCPUs*1e9), "deploy.resources.limits.cpus"
			}
			if l.Pids > 0 {
				r.PidsLimit = l.Pids
			}
		}
		if rs := s.Deploy.Resources.Reservations; rs != nil && rs.MemoryBytes != 0 {
			r.MemoryReservation, resKey = int64(rs.MemoryBytes), "deploy.resources.reservations.memory"
		}
	}

	const minMemory = 6 << 20
	switch {
	case r.Memory != 0 && r.Memory < minMemory:
		b.fail(errdefs.ErrInvalidArgument, memKey, "%d bytes: the minimum is 6MB", r.Memory)
	case r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory:
		b.fail(errdefs.ErrInvalidArgument, "memswap_limit", "%d bytes: memory plus swap cannot be less than %s (%d bytes)", r.MemorySwap, memKey, r.Memory)
	case r.Memory == 0 && r.MemorySwap > 0:
		b.fail(errdefs.ErrInvalidArgument, "memswap_limit", "set mem_limit too: memswap_limit is memory plus swap")
	case r.MemoryReservation != 0 && r.MemoryReservation < minMemory:
		b.fail(errdefs.ErrInvalidArgument, resKey, "%d bytes: the minimum is 6MB", r.MemoryReservation)
	case r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation:
		b.fail(errdefs.ErrInvalidArgument, resKey, "%d bytes: cannot be more than %s (%d bytes)", r.MemoryReservation, memKey, r.Memory)
	case r.NanoCPUs < 0:
		b.fail(errdefs.ErrInvalidArgument, cpusKey, "must not be negative")
	case r.NanoCPUs > 0 && r.CPUPeriod > 0:
		b.fail(errdefs.ErrInvalidArgument, cpusKey, "cannot be set with cpu_period: use one or the other")
	case r.NanoCPUs > 0 && r.CPUQuota > 0:
		b.fail(errdefs.ErrInvalidArgument, cpusKey, "cannot be set with cpu_quota: use one or the other")
	case r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000):
		b.fail(errdefs.ErrInvalidArgument, "cpu_period", "%d: must be between 1000 (1ms) and 1000000 (1s)", r.CPUPeriod)
	case r.CPUQuota > 0 && r.CPUQuota < 1000:
		b.fail(errdefs.ErrInvalidArgument, "cpu_quota", "%d: must be at least 1000 (1ms)", r.CPUQuota)
	}
	if r.Memory > 0 && r.MemorySwap == 0 {
		r.MemorySwap = 2 * r.Memory
	}
	if r.CPUShares > 0 {
		r.CPUShares = min(max(r.CPUShares, 2), 262144)
	}
	return r
}

// log reads logging for berth's own log files. The json-file driver
// (Docker's default) and local are the same thing here: one JSON object
// per line, rotated. Their options are checked as the daemon checks them
// (jsonfilelog and local ValidateLogOpt, New): max-size through
// go-units FromHumanSize (decimal: 10m is 10,000,000 bytes, as Docker
// reads it) and positive, max-file at least 1. With json-file, max-size
// alone keeps one file, as in Docker. The other options Docker knows
// (compress, labels, env, tag, mode, ...) are accepted and have no effect.
// driver none keeps nothing; other drivers are not supported yet.
// log_driver and log_opt, the legacy keys, are ignored as docker compose
// ignores them.
func (b *containerBuilder) log() spec.Log {
	l := b.svc.Logging
	if l == nil {
		return spec.Log{}
	}
	switch l.Driver {
	case "", "json-file", "local":
	case "none":
		return spec.Log{Disabled: true}
	default:
		b.fail(errdefs.ErrNotImplemented, "logging.driver", "%q is not supported yet: use json-file or local", l.Driver)
		return spec.Log{}
	}
	var out spec.Log
	for _, k := range slices.Sorted(maps.Keys(l.Options)) {
		v := l.Options[k]
		switch k {
		case "max-size":
			n, err := units.FromHumanSize(v)
			if err != nil || n <= 0 {
				b.fail(errdefs.ErrInvalidArgument, "logging.options.max-size", "%q: write a positive size such as 10m", v)
				return spec.Log{}
			}
			out.MaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				b.fail(errdefs.ErrInvalidArgument, "logging.options.max-file", "%q: write a number of files, at least 1", v)
				return spec.Log{}
			}
			out.MaxFiles = n
		case "compress", "labels", "labels-regex", "env", "env-regex", "tag", "mode", "max-buffer-size":
		default:
			driver := l.Driver
			if driver == "" {
				driver = "json-file"
			}
			b.fail(errdefs.ErrInvalidArgument, "logging.options", "unknown option %q for the %s driver", k, driver)
			return spec.Log{}
		}
	}
	if l.Driver != "local" && out.MaxSize > 0 && out.MaxFiles == 0 {
		out.MaxFiles = 1
	}
	return out
}

// checkSupported refuses the keys berth cannot honour yet and whose
// absence would change how the container runs (its namespaces, its
// limits, its devices). Keys handled elsewhere (volumes, ports, networks,
// secrets, configs, healthcheck, restart) and keys that do not change the
// container (build, pull_policy, annotations, ...) are not looked at.
func checkSupported(svc types.ServiceConfig) error {
	bad := func(key string, value any) error {
		return fmt.Errorf("%w: service %q: %s: %v is not supported yet", errdefs.ErrNotImplemented, svc.Name, key, value)
	}
	switch {
	case svc.Provider != nil:
		return fmt.Errorf("%w: service %q: provider: a provider service has no container", errdefs.ErrInvalidArgument, svc.Name)
	case strings.HasPrefix(svc.Ipc, types.NetworkModeServicePrefix), strings.HasPrefix(svc.Ipc, types.NetworkModeContainerPrefix):
		return bad("ipc", strconv.Quote(svc.Ipc))
	case !slices.Contains([]string{"", "private", "shareable", "host", "none"}, svc.Ipc):
		return fmt.Errorf("%w: service %q: ipc: %q: use private, shareable, host or none", errdefs.ErrInvalidArgument, svc.Name, svc.Ipc)
	case strings.HasPrefix(svc.Pid, types.NetworkModeServicePrefix), strings.HasPrefix(svc.Pid, types.NetworkModeContainerPrefix):
		return bad("pid", strconv.Quote(svc.Pid))
	case svc.UserNSMode != "" && svc.UserNSMode != "host":
		// host is Docker's default without userns-remap, and berth's.
		return bad("userns_mode", strconv.Quote(svc.UserNSMode))
	case svc.CgroupParent != "":
		return bad("cgroup_parent", strconv.Quote(svc.CgroupParent))
	case svc.Runtime != "" && svc.Runtime != "runc":
		return bad("runtime", strconv.Quote(svc.Runtime))
	case svc.Isolation != "" && svc.Isolation != "default":
		return bad("isolation", strconv.Quote(svc.Isolation))
	case len(svc.Gpus) > 0:
		return bad("gpus", "a GPU request")
	case svc.Deploy != nil && svc.Deploy.Resources.Reservations != nil && len(svc.Deploy.Resources.Reservations.Devices) > 0:
		return bad("deploy.resources.reservations.devices", "a device request")
	case len(svc.StorageOpt) > 0:
		return bad("storage_opt", "a storage option")
	case svc.CPURTPeriod != 0 || svc.CPURTRuntime != 0:
		return bad("cpu_rt_period/cpu_rt_runtime", "a real-time CPU limit")
	case svc.UseAPISocket:
		return bad("use_api_socket", "a Docker API socket")
	case svc.Umask != nil:
		return bad("umask", fmt.Sprintf("%04o", *svc.Umask))
	}
	return nil
}
