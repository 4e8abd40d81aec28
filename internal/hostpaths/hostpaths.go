// Package hostpaths says where berth keeps things on the host, as every
// berth process reads it from its environment, and opens the stores the
// commands and a project's supervisor share there. The supervisor starts
// before anything of the command line is parsed (runtime/supervisor/entry):
// what it needs is here, not in cmd/berth.
package hostpaths

import (
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/volume"
)

// Paths are berth's places on the host.
type Paths struct {
	// Root is BERTH_ROOT, the state that survives a reboot: images,
	// containers, networks, volumes. Default /var/lib/berth.
	Root string
	// Run is BERTH_RUN, what goes at reboot: network namespaces,
	// libcontainer's state, the projects' locks and supervisor sockets.
	// Default /run/berth.
	Run string
	// CgroupParent is BERTH_CGROUP_PARENT, the cgroup the containers'
	// cgroups go under; empty for the runtime's default (/berth).
	CgroupParent string
}

// FromEnv reads the paths from an environment (KEY=VALUE). Empty values
// mean the default.
func FromEnv(environ []string) Paths {
	p := Paths{Root: "/var/lib/berth", Run: "/run/berth"}
	if v, ok := Lookup(environ, "BERTH_ROOT"); ok && v != "" {
		p.Root = v
	}
	if v, ok := Lookup(environ, "BERTH_RUN"); ok && v != "" {
		p.Run = v
	}
	p.CgroupParent, _ = Lookup(environ, "BERTH_CGROUP_PARENT")
	return p
}

// Lookup finds key in environ (KEY=VALUE), the last value winning as in
// os.Getenv.
func Lookup(environ []string, key string) (string, bool) {
	for _, kv := range slices.Backward(environ) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// Containers holds the containers' records, writable layers and logs.
func (p Paths) Containers() string { return filepath.Join(p.Root, "containers") }

// Images is the image store.
func (p Paths) Images() string { return filepath.Join(p.Root, "images") }

// Networks holds the networks' records.
func (p Paths) Networks() string { return filepath.Join(p.Root, "networks") }

// Volumes holds the named volumes.
func (p Paths) Volumes() string { return filepath.Join(p.Root, "volumes") }

// NetNS holds the containers' network namespaces.
func (p Paths) NetNS() string { return filepath.Join(p.Run, "netns") }

// Exe is where the supervisors' copy of the binary is kept, a tmpfs of
// its own (internal/hugeexe).
func (p Paths) Exe() string { return filepath.Join(p.Run, "exe") }

// ProjectRun holds a project's lock and its supervisor's socket.
func (p Paths) ProjectRun(project string) string {
	return filepath.Join(p.Run, "projects", project)
}

// SupervisorState is where a project's supervisor keeps what it knows.
func (p Paths) SupervisorState(project string) string {
	return filepath.Join(p.Root, "projects", project, "supervisor.json")
}

// ContainerRuntime opens the container runtime: state under Containers,
// runtime files under Run, cgroups under CgroupParent.
func (p Paths) ContainerRuntime() (*container.Runtime, error) {
	return container.New(container.Options{Root: p.Containers(), Run: p.Run, CgroupParent: p.CgroupParent})
}

// NetworkManager keeps networks under Networks and the containers'
// network namespaces under NetNS.
func (p Paths) NetworkManager() (*network.Manager, error) {
	return network.New(p.Networks(), p.NetNS())
}

// VolumeManager keeps named volumes under Volumes.
func (p Paths) VolumeManager() (*volume.Manager, error) {
	return volume.New(p.Volumes())
}
