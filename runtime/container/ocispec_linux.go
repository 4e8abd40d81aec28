package container

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/capability"
	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/spec"
)

// defaultCaps are Docker's 14 default capabilities (moby oci/caps).
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Docker's masked and read-only paths: kernel interfaces a container has no
// business reading (keys, kernel memory, timers that leak host activity)
// or changing.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore",
		"/proc/keys", "/proc/latency_stats", "/proc/timer_list",
		"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// initPath is where the minimal init of `init: true` appears in the
// container, as Docker's docker-init does.
const initPath = "/sbin/docker-init"

// ociSpec builds the OCI runtime spec of a container from berth's spec, with
// Docker's defaults: the process is filled in separately, once the user is
// resolved inside the root filesystem.
func ociSpec(c *spec.Container, rootfs string, files etcFiles, cgroupsPath, initBin string) (*specs.Spec, error) {
	s := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: rootfs, Readonly: c.ReadOnly},
		Hostname: c.Hostname,
		Process: &specs.Process{
			Terminal:        c.Process.TTY,
			NoNewPrivileges: c.NoNewPrivileges,
		},
		Domainname: c.Domainname,
		Linux: &specs.Linux{
			CgroupsPath:       cgroupsPath,
			RootfsPropagation: "rprivate",
			Sysctl:            c.Sysctls,
			Namespaces:        []specs.LinuxNamespace{{Type: specs.MountNamespace}},
		},
	}
	// pid: host leaves the container in the host's PID namespace.
	switch c.PID {
	case "":
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	case "host":
	default:
		return nil, fmt.Errorf("%w: pid %q: use host, or leave it out", errdefs.ErrInvalidArgument, c.PID)
	}
	// uts and ipc: host leave the container in the host's namespaces; it
	// then has no hostname of its own to set.
	switch c.UTS {
	case "":
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UTSNamespace})
	case "host":
		s.Hostname, s.Domainname = "", ""
	default:
		return nil, fmt.Errorf("%w: uts %q: use host, or leave it out", errdefs.ErrInvalidArgument, c.UTS)
	}
	switch c.IPC {
	case "", "none":
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace})
	case "host":
	default:
		return nil, fmt.Errorf("%w: ipc %q: use host or none, or leave it out", errdefs.ErrInvalidArgument, c.IPC)
	}
	if c.OomScoreAdj != 0 {
		adj := c.OomScoreAdj
		s.Process.OOMScoreAdj = &adj
	}
	switch c.NetworkMode {
	case "", "none", "bridge", "container":
		ns := specs.LinuxNamespace{Type: specs.NetworkNamespace}
		if c.NetworkMode == "bridge" || c.NetworkMode == "container" {
			if c.NetNS == "" {
				return nil, fmt.Errorf("%w: network mode %s without a network namespace", errdefs.ErrInvalidArgument, c.NetworkMode)
			}
			ns.Path = c.NetNS
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, ns)
		// Docker's defaults in a network namespace of the container's
		// own. The network package wrote them into the namespaces it
		// made (bridge, and container: another's); a namespace
		// libcontainer makes gets them from it.
		if ns.Path == "" {
			sysctls := spec.NetNSSysctls()
			maps.Copy(sysctls, c.Sysctls)
			s.Linux.Sysctl = sysctls
		}
	case "host":
		if c.Hostname == "" && c.UTS != "host" {
			h, err := os.Hostname()
			if err != nil {
				return nil, err
			}
			s.Hostname = h
		}
	default:
		return nil, fmt.Errorf("%w: network_mode %q is not supported yet", errdefs.ErrNotImplemented, c.NetworkMode)
	}
	// A cgroup namespace of its own, on cgroup v1 as on v2: Docker's
	// default on v2, and on v1 the daemon's default-cgroupns-mode
	// "private". libcontainer then mounts each v1 hierarchy afresh
	// instead of binding it with its checks around every bind, which
	// makes a start a tenth cheaper.
	if c.Cgroup != "host" {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}

	caps, err := capabilities(c)
	if err != nil {
		return nil, err
	}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}

	shm := c.ShmSize
	if shm == 0 {
		shm = 64 << 20
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgroupOpts := []string{"ro", "nosuid", "noexec", "nodev"}
	if c.Privileged {
		sysOpts[3], cgroupOpts[0] = "rw", "rw"
	}
	if c.WritableCgroups {
		cgroupOpts[0] = "rw"
	}
	s.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgroupOpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	switch c.IPC {
	case "":
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shm, 10)}})
	case "host":
		// The host's shared memory goes with its IPC namespace, as
		// Docker does it.
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate", "nosuid", "noexec", "nodev"}})
	}
	for _, f := range []struct{ dst, src string }{{"/etc/hosts", files.hosts}, {"/etc/hostname", files.hostname}, {"/etc/resolv.conf", files.resolvConf}} {
		opts := []string{"rbind", "rprivate"}
		if c.ReadOnly {
			opts = append(opts, "ro")
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: opts})
	}
	if initBin != "" {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: initPath, Type: "bind", Source: initBin, Options: []string{"bind", "ro", "nosuid", "nodev"}})
	}
	for _, m := range c.Mounts {
		om, err := mount(m)
		if err != nil {
			return nil, err
		}
		s.Mounts = append(s.Mounts, om)
	}
	s.Mounts = append(s.Mounts, fileMounts(c.Files, files.secrets)...)

	if !c.Privileged && !c.UnmaskedPaths {
		s.Linux.MaskedPaths = maskedPaths
		s.Linux.ReadonlyPaths = readonlyPaths
	}
	res, err := resources(c)
	if err != nil {
		return nil, err
	}
	s.Linux.Resources = res
	if c.Privileged {
		devs, err := hostDevices()
		if err != nil {
			return nil, err
		}
		s.Linux.Devices = devs
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	for _, d := range c.Devices {
		dev, rule, err := device(d)
		if err != nil {
			return nil, err
		}
		s.Linux.Devices = append(s.Linux.Devices, dev)
		res.Devices = append(res.Devices, rule)
	}
	return s, nil
}

// capabilities applies cap_add and cap_drop to Docker's defaults, or gives
// every capability the kernel knows to a privileged container.
func capabilities(c *spec.Container) ([]string, error) {
	// Every capability this kernel has and berth may pass on: a name the
	// kernel does not know, or one outside berth's own bounding set (berth
	// may itself run in a container), makes applying the set fail.
	supported, err := capability.ListSupported()
	if err != nil {
		return nil, fmt.Errorf("listing capabilities: %w", err)
	}
	self, err := capability.NewPid2(0)
	if err == nil {
		err = self.Load()
	}
	if err != nil {
		return nil, fmt.Errorf("reading berth's capabilities: %w", err)
	}
	all := func() []string {
		var caps []string
		for _, cp := range supported {
			if self.Get(capability.BOUNDING, cp) {
				caps = append(caps, "CAP_"+strings.ToUpper(cp.String()))
			}
		}
		return caps
	}
	if c.Privileged {
		return all(), nil
	}
	norm := func(names []string) ([]string, error) {
		known := all()
		var out []string
		for _, n := range names {
			n = strings.ToUpper(n)
			if n == "ALL" {
				out = append(out, n)
				continue
			}
			if !strings.HasPrefix(n, "CAP_") {
				n = "CAP_" + n
			}
			if !slices.Contains(known, n) {
				return nil, fmt.Errorf("%w: unknown capability %q", errdefs.ErrInvalidArgument, n)
			}
			out = append(out, n)
		}
		return out, nil
	}
	add, err := norm(c.CapAdd)
	if err != nil {
		return nil, fmt.Errorf("cap_add: %w", err)
	}
	drop, err := norm(c.CapDrop)
	if err != nil {
		return nil, fmt.Errorf("cap_drop: %w", err)
	}
	// Docker's order: drop first (ALL empties the set), then add.
	caps := slices.Clone(defaultCaps)
	if slices.Contains(drop, "ALL") {
		caps = nil
	}
	caps = slices.DeleteFunc(caps, func(c string) bool { return slices.Contains(drop, c) })
	if slices.Contains(add, "ALL") {
		add = all()
	}
	for _, a := range add {
		if !slices.Contains(caps, a) {
			caps = append(caps, a)
		}
	}
	return caps, nil
}

func mount(m spec.Mount) (specs.Mount, error) {
	if !filepath.IsAbs(m.Target) {
		return specs.Mount{}, fmt.Errorf("%w: mount target %q is not an absolute path", errdefs.ErrInvalidArgument, m.Target)
	}
	opts := slices.Clone(m.Options)
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	switch m.Type {
	case "tmpfs":
		return specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: append([]string{"nosuid", "nodev", "noexec"}, opts...)}, nil
	case "bind":
		if !slices.Contains(opts, "bind") && !slices.Contains(opts, "rbind") {
			opts = append([]string{"rbind"}, opts...)
		}
		return specs.Mount{Destination: m.Target, Type: "bind", Source: m.Source, Options: opts}, nil
	}
	return specs.Mount{}, fmt.Errorf("%w: mount type %q", errdefs.ErrNotImplemented, m.Type)
}

func resources(c *spec.Container) (*specs.LinuxResources, error) {
	r := c.Resources
	// Devices: deny everything but the defaults libcontainer adds (null,
	// zero, full, random, urandom, tty, ptmx and the pts).
	res := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	if r.Memory != 0 || r.MemoryReservation != 0 || r.MemorySwap != 0 {
		res.Memory = &specs.LinuxMemory{}
		if r.Memory != 0 {
			res.Memory.Limit = &r.Memory
		}
		if r.MemoryReservation != 0 {
			res.Memory.Reservation = &r.MemoryReservation
		}
		if r.MemorySwap != 0 {
			res.Memory.Swap = &r.MemorySwap
		}
	}
	cpu := &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
	if r.CPUShares != 0 {
		shares := uint64(r.CPUShares)
		cpu.Shares = &shares
	}
	period, quota := uint64(r.CPUPeriod), r.CPUQuota
	if r.NanoCPUs != 0 {
		if r.CPUQuota != 0 {
			return nil, fmt.Errorf("%w: cpus and cpu_quota cannot both be set", errdefs.ErrInvalidArgument)
		}
		// Docker: a 100 ms period and the quota that gives NanoCPUs.
		period = 100000
		quota = r.NanoCPUs * int64(period) / 1e9
	}
	if period != 0 {
		cpu.Period = &period
	}
	if quota != 0 {
		cpu.Quota = &quota
	}
	res.CPU = cpu
	if r.PidsLimit > 0 {
		res.Pids = &specs.LinuxPids{Limit: &r.PidsLimit}
	}
	// Swappiness and the OOM killer's switch are cgroup v1's: Docker drops
	// them on v2, where the kernel has neither.
	if (r.MemorySwappiness != nil || r.OomKillDisable) && !cgroups.IsCgroup2UnifiedMode() {
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		if r.MemorySwappiness != nil {
			sw := uint64(*r.MemorySwappiness)
			res.Memory.Swappiness = &sw
		}
		if r.OomKillDisable {
			res.Memory.DisableOOMKiller = &r.OomKillDisable
		}
	}
	blkio, err := blockIO(r.Blkio)
	if err != nil {
		return nil, err
	}
	res.BlockIO = blkio
	for _, d := range r.DeviceRules {
		rule := specs.LinuxDeviceCgroup{Allow: true, Type: string(d.Type), Access: d.Access}
		if d.Major >= 0 {
			rule.Major = &d.Major
		}
		if d.Minor >= 0 {
			rule.Minor = &d.Minor
		}
		res.Devices = append(res.Devices, rule)
	}
	return res, nil
}

// blockIO resolves blkio_config's devices to their numbers on the host.
func blockIO(b spec.Blkio) (*specs.LinuxBlockIO, error) {
	if b.Weight == 0 && len(b.WeightDevice)+len(b.ReadBps)+len(b.WriteBps)+len(b.ReadIOPS)+len(b.WriteIOPS) == 0 {
		return nil, nil
	}
	numbers := func(path string) (major, minor int64, err error) {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			return 0, 0, fmt.Errorf("blkio_config: device %s: %w", path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFBLK {
			return 0, 0, fmt.Errorf("%w: blkio_config: %s is not a block device", errdefs.ErrInvalidArgument, path)
		}
		return int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev)), nil
	}
	out := &specs.LinuxBlockIO{}
	if b.Weight != 0 {
		out.Weight = &b.Weight
	}
	for _, d := range b.WeightDevice {
		major, minor, err := numbers(d.Path)
		if err != nil {
			return nil, err
		}
		wd := specs.LinuxWeightDevice{Weight: &d.Weight}
		wd.Major, wd.Minor = major, minor
		out.WeightDevice = append(out.WeightDevice, wd)
	}
	for _, t := range []struct {
		from []spec.ThrottleDevice
		to   *[]specs.LinuxThrottleDevice
	}{
		{b.ReadBps, &out.ThrottleReadBpsDevice},
		{b.WriteBps, &out.ThrottleWriteBpsDevice},
		{b.ReadIOPS, &out.ThrottleReadIOPSDevice},
		{b.WriteIOPS, &out.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.from {
			major, minor, err := numbers(d.Path)
			if err != nil {
				return nil, err
			}
			td := specs.LinuxThrottleDevice{Rate: d.Rate}
			td.Major, td.Minor = major, minor
			*t.to = append(*t.to, td)
		}
	}
	return out, nil
}

// device makes a host device node available, with a cgroup rule for it.
func device(d spec.Device) (specs.LinuxDevice, specs.LinuxDeviceCgroup, error) {
	var st unix.Stat_t
	if err := unix.Stat(d.Host, &st); err != nil {
		return specs.LinuxDevice{}, specs.LinuxDeviceCgroup{}, fmt.Errorf("device %s: %w", d.Host, err)
	}
	var kind string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		kind = "c"
	case unix.S_IFBLK:
		kind = "b"
	default:
		return specs.LinuxDevice{}, specs.LinuxDeviceCgroup{}, fmt.Errorf("%w: device %s is not a device node", errdefs.ErrInvalidArgument, d.Host)
	}
	dst, perms := d.Container, d.Permissions
	if dst == "" {
		dst = d.Host
	}
	if perms == "" {
		perms = "rwm"
	}
	major, minor := int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	mode := os.FileMode(st.Mode &^ unix.S_IFMT)
	dev := specs.LinuxDevice{Path: dst, Type: kind, Major: major, Minor: minor, FileMode: &mode, UID: &st.Uid, GID: &st.Gid}
	return dev, specs.LinuxDeviceCgroup{Allow: true, Type: kind, Major: &major, Minor: &minor, Access: perms}, nil
}

// hostDevices lists the host's device nodes for a privileged container, as
// Docker gives them all.
func hostDevices() ([]specs.LinuxDevice, error) {
	var devs []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return nil // a node that vanished
		}
		if e.IsDir() {
			switch p {
			case "/dev/pts", "/dev/shm", "/dev/mqueue":
				return filepath.SkipDir
			}
			return nil
		}
		if e.Type()&os.ModeDevice == 0 || p == "/dev/console" || p == "/dev/ptmx" {
			return nil
		}
		d, _, err := device(spec.Device{Host: p})
		if err == nil {
			devs = append(devs, d)
		}
		return nil
	})
	return devs, err
}
