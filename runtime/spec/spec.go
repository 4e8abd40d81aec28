// Package spec describes one container to run: what the compose verbs
// decide (from a service and its image) and runtime/container carries out.
//
// It holds no Linux code and imports nothing of the runtime, so that the
// compose package can build a Container anywhere and test it as data. Values
// are already merged and validated by whoever builds the Container; the
// runtime only refuses what it cannot do safely (a user or working directory
// the image's root filesystem cannot give, say).
package spec

import (
	"fmt"
	"io/fs"
	"net/netip"
	"time"
)

// Container is a container to create.
type Container struct {
	// ID names the container on the host: its state directory, its cgroup
	// and libcontainer's. Letters, digits, '-', '_' and '.'.
	ID string
	// Name is what the user sees: <project>-<service>-<n> or
	// container_name.
	Name string

	// Image is the reference the service names and ImageID its config
	// digest; Layers are the image's unpacked layer directories, bottom
	// first, stacked read-only under the container's own writable layer.
	Image   string
	ImageID string
	Layers  []string

	Process Process

	// Hostname is the container's; empty with NetworkMode "host" or UTS
	// "host" means the host's.
	Hostname   string
	Domainname string
	Labels     map[string]string

	// NetworkMode is "none" (loopback only), "host", "bridge" (the
	// container's own namespace at NetNS, set up by the network package
	// with an interface on each of Networks) or "container" (another
	// container's namespace, at NetNS).
	NetworkMode string
	// NetNS is the network namespace the container joins (bridge,
	// container).
	NetNS string
	// UTS is "" (a UTS namespace of the container's own) or "host" (the
	// host's: its hostname, which the container cannot set).
	UTS string
	// IPC is "" (an IPC namespace of the container's own, with its own
	// /dev/shm), "host" (the host's, and the host's /dev/shm) or "none"
	// (its own, without /dev/shm).
	IPC string
	// PID is "" (a PID namespace of the container's own) or "host" (the
	// host's: the container sees, and may signal, the host's processes).
	PID string
	// Cgroup is "" (a cgroup namespace of the container's own: its
	// /proc/self/cgroup and /sys/fs/cgroup start at its own cgroup) or
	// "host" (the host's: they show the host's cgroup paths).
	Cgroup string
	// Networks are the container's attachments to bridged networks, the
	// first one its default route's.
	Networks []NetworkAttachment
	// Ports are the published ports, host ports resolved.
	Ports []Port
	// Exposed are the ports the container exposes, as "80/tcp": the
	// image's and the service's expose. Nothing is opened for them; ps
	// lists those not published.
	Exposed []string `json:",omitempty"`
	// ExtraHosts are "name:address" lines added to /etc/hosts
	// (extra_hosts). DNS, DNSSearch and DNSOptions make /etc/resolv.conf;
	// without DNS the host's resolvers are used.
	ExtraHosts []string
	DNS        []string
	DNSSearch  []string
	DNSOptions []string

	// Init runs a minimal init as PID 1 that reaps zombies and forwards
	// signals to the process (init: true).
	Init bool
	// ReadOnly mounts the root filesystem read-only (read_only).
	ReadOnly bool
	Mounts   []Mount
	// Files are the container's secrets and configs: written by the
	// runtime into the container's own state directory and bind-mounted
	// read-only at their targets, after Mounts.
	Files []File
	// ShmSize is the size of /dev/shm in bytes; 0 means Docker's 64 MiB.
	ShmSize int64

	Privileged bool
	// UnmaskedPaths leaves /proc and /sys as the kernel shows them: none of
	// Docker's masked or read-only paths (security_opt
	// systempaths=unconfined). WritableCgroups mounts /sys/fs/cgroup
	// read-write (security_opt writable-cgroups=true).
	UnmaskedPaths   bool
	WritableCgroups bool
	CapAdd, CapDrop []string // "CAP_NET_ADMIN" or "NET_ADMIN"; "ALL"
	NoNewPrivileges bool     // security_opt: no-new-privileges
	Devices         []Device
	Sysctls         map[string]string
	Ulimits         []Ulimit
	OomScoreAdj     int
	Resources       Resources

	// StopSignal is the signal that asks the process to stop ("SIGTERM"
	// when empty); after StopGracePeriod it is killed (nil: 10 s; 0: at
	// once).
	StopSignal      string
	StopGracePeriod *time.Duration

	Log Log

	// Healthcheck is the service's health check merged over the image's;
	// nil when there is none (or it is disabled). Restart is the restart
	// policy. Both are the supervisor's to apply.
	Healthcheck *Healthcheck
	Restart     Restart
}

// Healthcheck is how the health of a container is probed.
type Healthcheck struct {
	// Test is ["CMD", args...] or ["CMD-SHELL", command].
	Test []string
	// Zero durations and retries mean Docker's defaults: interval 30 s,
	// timeout 30 s, start period 0, start interval 5 s, retries 3.
	Interval, Timeout, StartPeriod, StartInterval time.Duration
	Retries                                       int
}

// NetworkAttachment is a container's place on a bridged network.
type NetworkAttachment struct {
	Network  string // the network's full name
	Priority int
	IP       netip.Addr
	Gateway  netip.Addr
	Internal bool
}

// Port is a published port: HostIP:HostPort on the host reaches the
// container's ContainerPort. An empty HostIP means every address.
type Port struct {
	HostIP        string
	HostPort      int
	ContainerPort int
	Protocol      string // tcp, udp
}

// Restart is a restart policy, as Docker names it.
type Restart struct {
	Policy     string // "no" (or empty), "always", "on-failure", "unless-stopped"
	MaxRetries int    // on-failure:N; 0 means no limit
}

// Process is the container's main process.
type Process struct {
	// Args is the image entrypoint and command as merged with the
	// service's entrypoint and command.
	Args []string
	// Env is "NAME=value" entries: Docker's defaults (PATH, HOSTNAME,
	// TERM with a tty), then the image's, then the service's; complete
	// but for HOME, which the runtime takes from the image's /etc/passwd
	// when it is missing.
	Env []string
	// WorkingDir is an absolute path in the container; created when
	// missing. Empty means "/".
	WorkingDir string
	// User is the service's or the image's user: "uid", "uid:gid", "name"
	// or "name:group", resolved inside the container's root filesystem.
	// Empty means root.
	User string
	// GroupAdd are extra groups, by name or number (group_add).
	GroupAdd []string
	// TTY gives the process a terminal (tty); OpenStdin keeps its standard
	// input open (stdin_open).
	TTY       bool
	OpenStdin bool
}

// Mount is a filesystem mounted into the container.
type Mount struct {
	Type     string // "bind", "tmpfs"
	Source   string // host path for bind
	Target   string // absolute path in the container
	ReadOnly bool
	// Options are mount(8) options, e.g. "size=65536k", "mode=1777",
	// "rprivate".
	Options []string
	// CopyUp fills an empty Source (a new named volume) with what the
	// image has at Target, owners and modes kept, before the first start
	// (Docker's volume population; nocopy turns it off).
	CopyUp bool
	// Volume names the named or anonymous volume the mount shows, so that
	// berth knows which containers use a volume; empty for a bind mount
	// of a host path or a tmpfs. The runtime does not read it.
	Volume string
}

// File is a file berth gives the container (a secret or a config): Content
// at Target, owned by UID:GID with mode Mode (permission bits only). The
// content is never saved with the container's state nor printed.
type File struct {
	Target   string // absolute path in the container
	UID, GID int
	Mode     fs.FileMode
	Content  Content `json:"-"`
}

// Content is the bytes of a secret or a config. It formats as its size
// alone, so that printing a spec (%v, an error) never shows a secret.
type Content []byte

// Format writes "<N bytes>" whatever the verb.
func (c Content) Format(f fmt.State, verb rune) { fmt.Fprintf(f, "<%d bytes>", len(c)) }

// Device is a host device node made available in the container.
type Device struct {
	Host        string // /dev/fuse
	Container   string // where it appears; Host when empty
	Permissions string // "rwm" when empty
}

// Ulimit is one resource limit (ulimits), named like Docker's: "nofile",
// "nproc", "core", ...
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// Resources are the cgroup limits. Zero means no limit or the kernel's
// default.
type Resources struct {
	Memory            int64 // bytes (mem_limit, deploy.resources.limits.memory)
	MemoryReservation int64 // bytes (mem_reservation, ...reservations.memory)
	MemorySwap        int64 // bytes, memory plus swap; -1 unlimited (memswap_limit)
	NanoCPUs          int64 // CPUs × 1e9 (cpus, deploy.resources.limits.cpus)
	CPUShares         int64 // relative weight (cpu_shares)
	CPUQuota          int64 // µs per CPUPeriod (cpu_quota)
	CPUPeriod         int64 // µs (cpu_period)
	CpusetCpus        string
	CpusetMems        string
	PidsLimit         int64 // -1 or 0: unlimited (pids_limit)
	// MemorySwappiness is 0..100 (mem_swappiness), nil for the kernel's;
	// OomKillDisable keeps the kernel's OOM killer away (oom_kill_disable).
	// Both exist on cgroup v1 only: on v2 they are dropped, as Docker
	// drops them.
	MemorySwappiness *int64
	OomKillDisable   bool
	// Blkio is the I/O weight and limits (blkio_config).
	Blkio Blkio
	// DeviceRules allow device nodes the container may create or use
	// beyond its devices (device_cgroup_rules).
	DeviceRules []DeviceRule
}

// Blkio is the block I/O weight (10..1000, 0 for the default) and
// per-device weights and limits, devices named by their host path.
type Blkio struct {
	Weight       uint16
	WeightDevice []WeightDevice
	ReadBps      []ThrottleDevice
	WriteBps     []ThrottleDevice
	ReadIOPS     []ThrottleDevice
	WriteIOPS    []ThrottleDevice
}

// WeightDevice is the weight of one block device.
type WeightDevice struct {
	Path   string
	Weight uint16
}

// ThrottleDevice limits one block device: bytes or operations per second.
type ThrottleDevice struct {
	Path string
	Rate uint64
}

// DeviceRule is a device cgroup rule: type 'a' (all), 'b' or 'c'; major
// and minor numbers, -1 for any; access, a subset of "rwm".
type DeviceRule struct {
	Type         byte
	Major, Minor int64
	Access       string
}

// Log says how the container's output is kept: one JSON object per line in
// a file rotated at MaxSize bytes, MaxFiles files in all.
type Log struct {
	MaxSize  int64 // bytes; 0 means 20 MiB
	MaxFiles int   // 0 means 5
	Disabled bool  // logging driver "none": the output is dropped
}

// DetachedLabel marks a one-off container started by `run -d`: the
// project's supervisor owns it (restarts, records its exit, adopts it
// after a crash) as it owns the services' containers. An attached run's
// container is watched by the berth that runs it.
const DetachedLabel = "berth.run.detached"

// AutoRemoveLabel marks a one-off container started by `run -d --rm`: once
// it exits, its supervisor removes it, and then the anonymous volumes the
// label's value names (separated by commas) that no other container
// mounts, as Docker's AutoRemove does.
const AutoRemoveLabel = "berth.run.rm"

// NetNSSysctls returns Docker's sysctls for a container's network
// namespace of its own: any user may bind ports under 1024 and ping, so
// that an image running as non-root can listen on port 80. The network
// package writes them into the namespaces it makes; the runtime asks
// libcontainer for them when the container's namespace is libcontainer's.
func NetNSSysctls() map[string]string {
	return map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}
}
