package container

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"

	"github.com/berth-dev/berth/runtime/spec"
)

// TestOptions runs one container per option and checks, from inside it,
// what a user of the option would check.
func TestOptions(t *testing.T) {
	mib := int64(1 << 20)
	for _, tc := range []struct {
		name   string
		set    func(*spec.Container)
		script string
		want   []string // regular expressions the output must match
		code   int
	}{
		{
			name:   "defaults: Docker's 14 capabilities, no new privileges off, own hostname",
			script: "grep -E '^(CapEff|CapInh|NoNewPrivs)' /proc/self/status; hostname",
			want:   []string{`CapEff:\s+00000000a80425fb`, `CapInh:\s+0000000000000000`, `NoNewPrivs:\s+0`, `(?m)^test$`},
		},
		{
			name:   "cap_drop ALL, cap_add NET_ADMIN",
			set:    func(c *spec.Container) { c.CapDrop = []string{"ALL"}; c.CapAdd = []string{"net_admin"} },
			script: "grep CapEff /proc/self/status",
			want:   []string{`CapEff:\s+0000000000001000`},
		},
		{
			name:   "cap_drop CHOWN: chown fails",
			set:    func(c *spec.Container) { c.CapDrop = []string{"CHOWN"} },
			script: "touch /tmp/f; chown 1000 /tmp/f || echo refused",
			want:   []string{"refused"},
		},
		{
			name:   "privileged: every capability, devices, writable /sys",
			set:    func(c *spec.Container) { c.Privileged = true },
			script: "grep CapEff /proc/self/status; ls /dev/loop0; grep ' /sys ' /proc/mounts",
			want:   []string{`CapEff:\s+` + hostCaps(t), `/dev/loop0`, `sysfs /sys sysfs rw`},
		},
		{
			name:   "security_opt no-new-privileges",
			set:    func(c *spec.Container) { c.NoNewPrivileges = true },
			script: "grep NoNewPrivs /proc/self/status",
			want:   []string{`NoNewPrivs:\s+1`},
		},
		{
			name:   "masked and read-only paths",
			script: "echo masked $(wc -c < /proc/keys) $(wc -c < /proc/timer_list); echo 1 2>/dev/null > /proc/sys/kernel/domainname || echo ro; grep ' /proc/sys ' /proc/mounts",
			want:   []string{`(?m)^masked 0 0$`, `(?m)^ro$`, `proc /proc/sys proc ro`},
		},
		{
			name: "read_only root, writable tmpfs with size and mode",
			set: func(c *spec.Container) {
				c.ReadOnly = true
				c.Mounts = []spec.Mount{{Type: "tmpfs", Target: "/scratch", Options: []string{"size=1m", "mode=1770"}}}
			},
			script: "touch /x || echo rofs; touch /scratch/y && echo tmpfs-ok; stat -c %a /scratch; grep ' /scratch ' /proc/mounts",
			want:   []string{`(?m)^rofs$`, `tmpfs-ok`, `(?m)^1770$`, `tmpfs /scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1770`},
		},
		{
			name:   "shm_size",
			set:    func(c *spec.Container) { c.ShmSize = 128 * mib },
			script: "grep ' /dev/shm ' /proc/mounts",
			want:   []string{`size=131072k`},
		},
		{
			name:   "ulimits",
			set:    func(c *spec.Container) { c.Ulimits = []spec.Ulimit{{Name: "nofile", Soft: 1234, Hard: 2345}} },
			script: "ulimit -n; ulimit -Hn",
			want:   []string{`(?m)^1234$`, `(?m)^2345$`},
		},
		{
			name:   "sysctls",
			set:    func(c *spec.Container) { c.Sysctls = map[string]string{"net.core.somaxconn": "1234"} },
			script: "cat /proc/sys/net/core/somaxconn",
			want:   []string{`(?m)^1234$`},
		},
		{
			name: "devices",
			set: func(c *spec.Container) {
				c.Devices = []spec.Device{{Host: "/dev/loop0", Container: "/dev/myloop", Permissions: "r"}}
			},
			// Not /dev/zero: libcontainer's defaults allow it anyway.
			script: "ls -l /dev/myloop; head -c 1 /dev/myloop && echo read-ok; echo x > /dev/myloop || echo denied",
			want:   []string{`(?m)^b.* 7,\s+0 .*/dev/myloop$`, `read-ok`, `denied`},
		},
		{
			name:   "user and group_add by number",
			set:    func(c *spec.Container) { c.Process.User = "1000:1000"; c.Process.GroupAdd = []string{"27"} },
			script: "id -u; id -g; id -G",
			want:   []string{`(?m)^1000$`, `(?m)^1000 27$|(?m)^1000 1000 27$`},
		},
		{
			name: "memory, cpu and pids limits in the cgroup",
			set: func(c *spec.Container) {
				c.Resources = spec.Resources{
					Memory: 64 * mib, MemoryReservation: 32 * mib, NanoCPUs: 500_000_000,
					CPUShares: 512, CpusetCpus: "0", PidsLimit: 42,
				}
			},
			script: "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.soft_limit_in_bytes " +
				"/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.shares " +
				"/sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/pids/pids.max 2>/dev/null || " +
				"cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.low /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpuset.cpus /sys/fs/cgroup/pids.max",
			want: []string{`(?m)^67108864$`, `(?m)^33554432$`, `(?m)^(50000$|50000 100000$)`, `(?m)^0$`, `(?m)^42$`},
		},
		{
			name: "mem_swappiness and oom_kill_disable (cgroup v1 only: dropped on v2)",
			set: func(c *spec.Container) {
				c.Resources = spec.Resources{Memory: 64 * mib, MemorySwappiness: new(int64(10)), OomKillDisable: true}
			},
			script: "cat /sys/fs/cgroup/memory/memory.swappiness /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null || echo v2",
			want:   v1Only([]string{`(?m)^10$`, `(?m)^oom_kill_disable 1$`}, `(?m)^v2$`),
		},
		{
			name: "blkio_config: throttles by the device's numbers",
			set: func(c *spec.Container) {
				c.Resources = spec.Resources{Blkio: spec.Blkio{
					ReadBps:   []spec.ThrottleDevice{{Path: "/dev/loop0", Rate: 1 << 20}},
					WriteIOPS: []spec.ThrottleDevice{{Path: "/dev/loop0", Rate: 30}},
				}}
			},
			script: "cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device 2>/dev/null || cat /sys/fs/cgroup/io.max",
			want:   v1Only([]string{`(?m)^7:0 1048576$`, `(?m)^7:0 30$`}, `(?m)^7:0 rbps=1048576 wbps=max riops=max wiops=30$`),
		},
		{
			name:   "a device without a rule cannot be opened",
			script: "(mknod /tmp/kmsg c 1 11 && exec 3>/tmp/kmsg && echo opened) 2>/dev/null || echo refused",
			want:   []string{`(?m)^refused$`},
		},
		{
			name: "device_cgroup_rules: a rule lets it be opened",
			set: func(c *spec.Container) {
				c.Resources = spec.Resources{DeviceRules: []spec.DeviceRule{{Type: 'c', Major: 1, Minor: -1, Access: "rwm"}}}
			},
			script: "(mknod /tmp/kmsg c 1 11 && exec 3>/tmp/kmsg && echo opened) 2>/dev/null || echo refused",
			want:   []string{`(?m)^opened$`},
		},
		{
			name:   "pid: a namespace of its own, the process is PID 1",
			script: "echo $$; readlink /proc/self/ns/pid",
			want:   []string{`(?m)^1$`, `(?m)^pid:\[`},
		},
		{
			name:   "pid host: the host's namespace",
			set:    func(c *spec.Container) { c.PID = "host" },
			script: "readlink /proc/self/ns/pid; [ -d /proc/" + strconv.Itoa(os.Getpid()) + " ] && echo sees-the-test",
			want:   []string{regexp.QuoteMeta(hostNS(t, "pid")), `(?m)^sees-the-test$`},
		},
		{
			name:   "oom_score_adj",
			set:    func(c *spec.Container) { c.OomScoreAdj = 500 },
			script: "cat /proc/self/oom_score_adj",
			want:   []string{`(?m)^500$`},
		},
		{
			name:   "tty",
			set:    func(c *spec.Container) { c.Process.TTY = true },
			script: "[ -t 1 ] && echo terminal",
			want:   []string{`terminal`},
		},
		{
			name:   "no file descriptor of berth leaks in",
			script: "ls /proc/self/fd | tr '\\n' ' '",
			want:   []string{`^0 1 2 3 $`},
		},
		{
			name:   "Docker's network sysctls: unprivileged ports and ping",
			script: "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range",
			want:   []string{`(?m)^0$`, `(?m)^0\s+2147483647$`},
		},
		{
			name:   "stdin_open: stdin stays open",
			set:    func(c *spec.Container) { c.Process.OpenStdin = true },
			script: "timeout 1 cat; echo rc=$?",
			want:   []string{`rc=143`},
		},
		{
			name:   "without stdin_open, stdin is empty",
			script: "timeout 1 cat; echo rc=$?",
			want:   []string{`rc=0`},
		},
		{
			name: "cpu_quota, cpu_period, memswap_limit",
			set: func(c *spec.Container) {
				c.Resources = spec.Resources{CPUQuota: 20000, CPUPeriod: 50000, Memory: 32 * mib, MemorySwap: 48 * mib}
			},
			script: "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us; " +
				"cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || echo 50331648",
			want: []string{`(?m)^20000$`, `(?m)^50000$`, `(?m)^50331648$`},
		},
		{
			name: "hostname, domainname, extra_hosts, dns, dns_search, dns_opt",
			set: func(c *spec.Container) {
				c.Hostname, c.Domainname = "web", "example.org"
				c.ExtraHosts = []string{"db.local:10.1.2.3"}
				c.DNS, c.DNSSearch, c.DNSOptions = []string{"10.0.0.2"}, []string{"corp.example"}, []string{"ndots:2"}
			},
			script: "hostname; cat /proc/sys/kernel/domainname /etc/hostname /etc/hosts /etc/resolv.conf",
			want: []string{`(?m)^web$`, `(?m)^example.org$`, `10\.1\.2\.3\s+db\.local`, `127\.0\.0\.1\s+localhost`,
				`(?m)^nameserver 10\.0\.0\.2$`, `(?m)^search corp\.example$`, `(?m)^options ndots:2$`},
		},
		{
			name:   "security_opt systempaths=unconfined: nothing masked or read-only",
			set:    func(c *spec.Container) { c.UnmaskedPaths = true },
			script: "echo timer_list $(wc -c < /proc/timer_list); grep -c ' /proc/sys ' /proc/mounts; true",
			want:   []string{`(?m)^timer_list [1-9][0-9]*$`, `(?m)^0$`},
		},
		{
			name:   "cgroups read-only by default",
			script: "grep -E ' /sys/fs/cgroup[ /]' /proc/mounts | grep -v tmpfs | head -1",
			want:   []string{`^cgroup2? \S+ cgroup2? ro,`},
		},
		{
			name:   "security_opt writable-cgroups=true",
			set:    func(c *spec.Container) { c.WritableCgroups = true },
			script: "grep -E ' /sys/fs/cgroup[ /]' /proc/mounts | grep -v tmpfs | head -1",
			want:   []string{`^cgroup2? \S+ cgroup2? rw,`},
		},
		{
			name:   "uts host: the host's name and namespace",
			set:    func(c *spec.Container) { c.UTS, c.Hostname = "host", "" },
			script: "hostname; cat /etc/hostname; readlink /proc/self/ns/uts",
			want:   []string{`(?m)^` + regexp.QuoteMeta(hostName(t)) + `$\n^` + regexp.QuoteMeta(hostName(t)) + `$`, regexp.QuoteMeta(hostNS(t, "uts"))},
		},
		{
			name:   "ipc host: the host's namespace and /dev/shm",
			set:    func(c *spec.Container) { c.IPC = "host" },
			script: "readlink /proc/self/ns/ipc; ls /dev/shm",
			want:   []string{regexp.QuoteMeta(hostNS(t, "ipc")), `(?m)^` + hostShmFile(t) + `$`},
		},
		{
			name:   "ipc none: a namespace of its own, no /dev/shm",
			set:    func(c *spec.Container) { c.IPC = "none" },
			script: "readlink /proc/self/ns/ipc; grep -c ' /dev/shm ' /proc/mounts; true",
			want:   []string{`(?m)^ipc:\[`, `(?m)^0$`},
		},
		{
			name:   "cgroup: a namespace of its own, rooted at its cgroup",
			script: "grep -vc ':/$' /proc/self/cgroup; readlink /proc/self/ns/cgroup",
			want:   []string{`(?m)^0$`, `(?m)^cgroup:\[`},
		},
		{
			name:   "cgroup host: the host's namespace and cgroup paths",
			set:    func(c *spec.Container) { c.Cgroup = "host" },
			script: "grep -c ':/$' /proc/self/cgroup; readlink /proc/self/ns/cgroup",
			want:   []string{`(?m)^0$`, regexp.QuoteMeta(hostNS(t, "cgroup"))},
		},
		{
			name:   "exit code",
			script: "exit 42",
			code:   42,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRuntime(t)
			c := busyboxSpec(t, "sh", "-c", tc.script)
			if tc.set != nil {
				tc.set(&c)
			}
			out, e := run(t, rt, c)
			if e.Code != tc.code {
				t.Errorf("exit code %d, want %d; output:\n%s", e.Code, tc.code, out)
			}
			for _, w := range tc.want {
				if !regexp.MustCompile(w).MatchString(out) {
					t.Errorf("output does not match %q:\n%s", w, out)
				}
			}
		})
	}
}

// v1Only is v1's expectations on a cgroup v1 host, v2's otherwise.
func v1Only(v1 []string, v2 ...string) []string {
	if cgroups.IsCgroup2UnifiedMode() {
		return v2
	}
	return v1
}

func hostName(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// hostNS is what /proc/self/ns/<kind> names for this process: the
// host's namespace of that kind.
func hostNS(t *testing.T, kind string) string {
	ns, err := os.Readlink("/proc/self/ns/" + kind)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// hostShmFile makes a file in the host's /dev/shm for as long as the test
// runs, and names it.
func hostShmFile(t *testing.T) string {
	f, err := os.CreateTemp("/dev/shm", "berth-test-")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { os.Remove(f.Name()) })
	return filepath.Base(f.Name())
}

// TestStopGracePeriod: a PID 1 that ignores SIGTERM gets the grace period,
// then SIGKILL (exit 137).
func TestStopGracePeriod(t *testing.T) {
	rt := newRuntime(t)
	c := busyboxSpec(t, "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done")
	grace := 1500 * time.Millisecond
	c.StopGracePeriod = &grace
	ct := create(t, rt, c)
	out := &syncWriter{w: new(bytes.Buffer)}
	if err := ct.Start(t.Context(), StartOptions{Stdout: out}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(out.String(), "ready") })
	start := time.Now()
	e, err := ct.Stop(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if e.Code != 137 || e.Signal != "SIGKILL" {
		t.Errorf("exit %+v, want 137 by SIGKILL", e)
	}
	if took < grace || took > grace+3*time.Second {
		t.Errorf("stop took %v, want the grace period %v then the kill", took, grace)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("timed out")
}

// hostCaps is the bounding set of this process: what a privileged
// container gets.
func hostCaps(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`CapBnd:\s+([0-9a-f]+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no CapBnd in /proc/self/status")
	}
	return string(m[1])
}
