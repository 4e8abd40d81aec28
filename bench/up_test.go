package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/supervisor"
	"github.com/berth-dev/berth/tests/berthbin"
	"github.com/berth-dev/berth/tests/hoststate"
	"github.com/berth-dev/berth/tests/offline"
)

// The up/down benchmarks run the real berth binary as a user does:
// `berth -f compose.yaml up -d`, then `berth -f compose.yaml down`, on a
// project of busybox services, each a full cycle. up -d covers loading the
// project, creating the containers, starting the project's supervisor (the
// previous one has left by then) and its starting every container; down
// covers stopping and removing them through that supervisor. Between the
// two, untimed: `berth ps --format json` must list every container
// running. After down, untimed: the supervisor must have left within 3 s
// (it goes about half a second after nothing is left to watch), `ps -a`
// must list nothing, and no mount or cgroup of the project may be left
// (tests/hoststate), nor any of its networks: network namespaces
// (BERTH_RUN/netns), networks (BERTH_ROOT/networks), the bridges they had
// while up, iptables rules naming them.
//
// The supervisor is the process that answers on the project's socket
// (ping). Any other supervisor process of the project seen after up -d is
// counted (extra-supervisors/op): before commit 05dadd8 every start of an
// up level that found no supervisor listening spawned its own, and the
// extra ones lingered on the supervisor's lock for 10 s. Every one of them
// must have left within 3 s of down.
//
// Each benchmark has its own BERTH_ROOT (in a temporary directory, with
// the offline busybox image loaded), BERTH_RUN (under /run, as berth's
// is: libcontainer seals its init binary with an overlay whose lower
// directories may not overlap the binary's) and cgroup parent.

// BenchmarkUpDown: n services, no dependencies, up -d then down.
func BenchmarkUpDown(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			p := newUpProject(b, fmt.Sprintf("benchup%d", n), n, false)
			benchUpDown(b, p, n, nil)
		})
	}
}

// BenchmarkUpDownReclaimed50: BenchmarkUpDown's 50 services after the
// page cache has dropped the berth binary and read it back, as it does
// once it has reclaimed it (a binary nobody ran for a minute, on machines
// that reclaim cold page cache proactively, as these do through DAMON):
// it then holds the binary in 4 KiB pages, not in the 2 MiB folios the
// build left (tests/berthbin, the Makefile). The supervisor and the
// containers' inits run from berth's copy of the binary in 2 MiB pages
// all the same (internal/hugeexe). At the end the binary is written
// again, for the benchmarks after this one.
func BenchmarkUpDownReclaimed50(b *testing.B) {
	p := newUpProject(b, "benchreclaimed50", 50, false)
	b.Cleanup(func() {
		if err := berthbin.Rewrite(p.bin); err != nil {
			b.Error(err)
		}
	})
	f, err := os.Open(p.bin)
	if err != nil {
		b.Fatal(err)
	}
	err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	if out, err := p.berth("version"); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	benchUpDown(b, p, 50, nil)
}

// BenchmarkUpDownChain10: 10 services, each depending on the one before
// (s2 on s1, …, s10 on s9): up starts them one after the other, down stops
// them in the reverse order.
func BenchmarkUpDownChain10(b *testing.B) {
	p := newUpProject(b, "benchchain10", 10, true)
	benchUpDown(b, p, 10, nil)
}

// BenchmarkSupervisorRSS50: the resident memory of the project's supervisor
// with 50 containers to watch (no health checks), just after up -d
// returns ("supervisor-MiB") and after 3 s of running
// ("supervisor-3s-MiB"), with its peak then ("supervisor-peak-MiB",
// VmHWM), the anonymous, file-backed and shared-memory parts of the first
// figure (RssAnon: heap, stacks; RssFile: the binary's pages it touched;
// RssShmem: the same, when it runs from berth's copy of the binary on a
// tmpfs, internal/hugeexe) and its threads; and the resident memory of every supervisor
// process of the project just after up -d ("supervisors-all-MiB": the
// serving one and the extra ones, see above). Each is the largest of the
// iterations. The waiting is not timed; up and down are, as in
// BenchmarkUpDown.
func BenchmarkSupervisorRSS50(b *testing.B) {
	const n = 50
	p := newUpProject(b, "benchrss50", n, false)
	var rss, anon, file, shmem, all, rss3s, peak, threads int64
	benchUpDown(b, p, n, func(pid int, pids []int) {
		st, err := procStatus(pid)
		if err != nil {
			b.Fatal(err)
		}
		rss, anon, file, shmem = max(rss, st["VmRSS"]), max(anon, st["RssAnon"]), max(file, st["RssFile"]), max(shmem, st["RssShmem"])
		var sum int64
		for _, other := range pids {
			if st, err := procStatus(other); err == nil {
				sum += st["VmRSS"]
			}
		}
		all = max(all, sum)
		time.Sleep(3 * time.Second)
		if st, err = procStatus(pid); err != nil {
			b.Fatal(err)
		}
		rss3s, peak, threads = max(rss3s, st["VmRSS"]), max(peak, st["VmHWM"]), max(threads, st["Threads"])
	})
	b.ReportMetric(float64(rss)/1024, "supervisor-MiB")
	b.ReportMetric(float64(rss3s)/1024, "supervisor-3s-MiB")
	b.ReportMetric(float64(peak)/1024, "supervisor-peak-MiB")
	b.ReportMetric(float64(anon)/1024, "supervisor-anon-MiB")
	b.ReportMetric(float64(file)/1024, "supervisor-file-MiB")
	b.ReportMetric(float64(shmem)/1024, "supervisor-shmem-MiB")
	b.ReportMetric(float64(threads), "supervisor-threads")
	b.ReportMetric(float64(all)/1024, "supervisors-all-MiB")
}

// berthBinary builds berth once per test binary, as the Makefile builds
// bin/berth (tests/berthbin), into the fixtures' directory.
var berthBinary = sync.OnceValues(func() (string, error) {
	dir := filepath.Join(shared.root, "berth-bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "berth")
	if err := berthbin.Build(context.Background(), bin); err != nil {
		return "", err
	}
	return bin, nil
})

// upProject is one benchmark's project and berth state.
type upProject struct {
	b       *testing.B
	bin     string // the berth binary
	dir     string // the project directory, with compose.yaml
	root    string // BERTH_ROOT
	run     string // BERTH_RUN
	cgroup  string // BERTH_CGROUP_PARENT, without its leading "/"
	name    string // the project's name
	environ []string
}

func newUpProject(b *testing.B, name string, n int, chain bool) *upProject {
	b.Helper()
	p := newBerthProject(b, name, composeYAML(name, n, chain, composeOptions{image: "busybox"}), "busybox")
	// Also when the benchmark fails: whatever is left is stopped and
	// removed, and the supervisor waited for (killed if it stays),
	// before the project's cgroup parent and directories go.
	b.Cleanup(func() {
		if out, err := p.berth("-f", "compose.yaml", "down", "-t", "1"); err != nil {
			b.Errorf("cleaning up: %v: %s", err, out)
		}
		if pids := p.waitSupervisorGone(3 * time.Second); len(pids) > 0 {
			b.Errorf("supervisors (pids %v) did not leave after down", pids)
			for _, pid := range pids {
				if proc, err := os.FindProcess(pid); err == nil {
					proc.Kill()
				}
			}
			p.waitSupervisorGone(3 * time.Second)
		}
	})
	return p
}

// newBerthProject is a project directory holding composeYAML with a berth
// state of its own (BERTH_ROOT, BERTH_RUN, cgroup parent) where the
// offline images named are loaded: what every benchmark's project starts
// from. The volume store berth may mount in its root, and the tmpfs with
// its copy of its binary in BERTH_RUN, go at the end.
func newBerthProject(b *testing.B, name, composeYAML string, images ...string) *upProject {
	b.Helper()
	needRoot(b)
	bin, err := berthBinary()
	if err != nil {
		b.Fatal(err)
	}
	state := b.TempDir()
	run, err := os.MkdirTemp("/run", "berth-bench-")
	if err != nil {
		b.Fatal(err)
	}
	p := &upProject{b: b, bin: bin, dir: filepath.Join(state, "project"), root: filepath.Join(state, "root"),
		run: run, cgroup: filepath.Base(run), name: name}
	b.Cleanup(func() {
		exec.Command("umount", "-l", hoststate.Exe(run)).Run()
		os.RemoveAll(run)
		hoststate.RemoveCgroup(p.cgroup)
		exec.Command("umount", "-l", filepath.Join(p.root, "volumes")).Run()
	})
	p.environ = append(os.Environ(), "BERTH_ROOT="+p.root, "BERTH_RUN="+p.run, "BERTH_CGROUP_PARENT=/"+p.cgroup)
	if err := os.Mkdir(p.dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "compose.yaml"), []byte(composeYAML), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, img := range images {
		archive, err := offline.Archive(img)
		if err != nil {
			b.Fatal(err)
		}
		if out, err := p.berth("load", "-q", "-i", archive); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	return p
}

// berth runs berth in the project directory and returns its combined
// output.
func (p *upProject) berth(args ...string) (string, error) {
	return runBerth(p.bin, p.dir, p.environ, args...)
}

// runBerth runs the berth binary bin in dir with environ: what the
// benchmarks' projects share.
func runBerth(bin, dir string, environ []string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, environ
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("berth %s: %w", strings.Join(args, " "), err)
	}
	return out.String(), nil
}

// hostState lists the mounts and cgroups of the project's containers.
func (p *upProject) hostState() string {
	p.b.Helper()
	s, err := hoststate.Of(p.cgroup, p.root, p.run)
	if err != nil {
		p.b.Fatal(err)
	}
	return s
}

// benchUpDown times b.N cycles of up -d and down of p's n services.
// running, if not nil, is called (untimed) while the services run with the
// pid of the supervisor serving the project and those of all the project's
// supervisor processes. Besides the time of a cycle (ns/op) it reports:
//
//   - up-ms/op, down-ms/op: each command apart; up-min-ms, down-min-ms:
//     the fastest iteration, less moved by other work on the machine;
//   - cli-cpu-ms/op: the CPU time of the berth CLI processes;
//   - supervisor-cpu-ms/op: that of the supervisor and of the containers'
//     processes it reaped (read from /proc just after down returns);
//   - host-cpu-ms/op: the busy time of all the machine's CPUs while up and
//     down ran; well above the two before, other work was running;
//   - extra-supervisors/op: supervisor processes beyond the serving one.
func benchUpDown(b *testing.B, p *upProject, n int, running func(pid int, pids []int)) {
	before := p.hostState()
	var up, down, cliCPU, supCPU, hostCPU time.Duration
	upMin, downMin := time.Duration(1<<62), time.Duration(1<<62)
	extra := 0
	// timed runs a berth command and accounts its wall, CLI and host CPU
	// time.
	timed := func(total, fastest *time.Duration, args ...string) (string, error) {
		c0, h0, t0 := cpuTime(), hostBusy(), time.Now()
		out, err := p.berth(args...)
		d := time.Since(t0)
		*total += d
		*fastest = min(*fastest, d)
		hostCPU += hostBusy() - h0
		cliCPU += cpuTime() - c0
		return out, err
	}
	b.ResetTimer()
	for range b.N {
		out, err := timed(&up, &upMin, "-f", "compose.yaml", "up", "-d")
		b.StopTimer()
		if err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		pid, pids := p.checkRunning(n)
		bridges := p.bridges()
		extra += len(pids) - 1
		if running != nil {
			running(pid, pids)
		}
		b.StartTimer()

		out, err = timed(&down, &downMin, "-f", "compose.yaml", "down")
		b.StopTimer()
		if err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		cpu, err := procCPU(pid, true)
		if err != nil {
			b.Fatalf("the supervisor (pid %d) left before down returned: %v", pid, err)
		}
		supCPU += cpu
		p.checkGone(before, bridges)
		b.StartTimer()
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(up), "up-ms/op")
	b.ReportMetric(ms(down), "down-ms/op")
	b.ReportMetric(float64(upMin.Microseconds())/1000, "up-min-ms")
	b.ReportMetric(float64(downMin.Microseconds())/1000, "down-min-ms")
	b.ReportMetric(ms(cliCPU), "cli-cpu-ms/op")
	b.ReportMetric(ms(supCPU), "supervisor-cpu-ms/op")
	b.ReportMetric(ms(hostCPU), "host-cpu-ms/op")
	b.ReportMetric(float64(extra)/float64(b.N), "extra-supervisors/op")
	if extra > 0 {
		b.Logf("up -d left %d supervisor processes beside the one serving, in %d iterations", extra, b.N)
	}
}

// hostBusy is the time all the machine's CPUs have spent busy (/proc/stat:
// user, nice, system, irq, softirq, steal; not idle nor iowait), 0 when it
// cannot be read.
func hostBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// psEntry is what the checks read of `berth ps --format json`.
type psEntry struct {
	Name, Service, Project, State string
}

// ps lists the project's containers (-a: stopped ones too).
func (p *upProject) ps(all bool) []psEntry {
	p.b.Helper()
	args := []string{"-f", "compose.yaml", "ps", "--format", "json"}
	if all {
		args = append(args, "-a")
	}
	out, err := p.berth(args...)
	if err != nil {
		p.b.Fatalf("%v: %s", err, out)
	}
	es, err := decodePs([]byte(out))
	if err != nil {
		p.b.Fatalf("berth ps --format json: %v:\n%s", err, out)
	}
	return es
}

// decodePs reads one JSON object per line, or one array.
func decodePs(out []byte) ([]psEntry, error) {
	out = bytes.TrimSpace(out)
	var es []psEntry
	if bytes.HasPrefix(out, []byte("[")) {
		return es, json.Unmarshal(out, &es)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var e psEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, err
		}
		es = append(es, e)
	}
	return es, sc.Err()
}

// checkRunning fails unless every one of the n services has its container
// running and a supervisor serves the project; it returns the pid of that
// supervisor and those of all the project's supervisor processes.
func (p *upProject) checkRunning(n int) (int, []int) {
	p.b.Helper()
	es := p.ps(false)
	running := map[string]bool{}
	for _, e := range es {
		if e.State == "running" && e.Project == p.name {
			running[e.Service] = true
		}
	}
	for i := 1; i <= n; i++ {
		if !running[fmt.Sprintf("s%d", i)] {
			p.b.Fatalf("after up -d, service s%d has no running container: ps lists %+v", i, es)
		}
	}
	if len(es) != n {
		p.b.Fatalf("after up -d, ps lists %d containers, want %d: %+v", len(es), n, es)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pid, err := supervisor.NewClient(filepath.Join(p.run, "projects", p.name), nil).Ping(ctx)
	if err != nil {
		p.b.Fatalf("after up -d, no supervisor answers: %v", err)
	}
	pids := p.supervisors()
	if !slices.Contains(pids, pid) {
		p.b.Fatalf("the supervisor that answers (pid %d) is not one of the project's supervisor processes %v", pid, pids)
	}
	return pid, pids
}

// checkGone fails unless, after down, every supervisor of the project
// leaves within 3 s, ps -a lists nothing, the host is as it was before
// the first up (mounts, cgroups), and nothing is left of the project's
// networks: network namespaces, the bridges it had while up, iptables
// rules that name them.
func (p *upProject) checkGone(before string, bridges []string) {
	p.b.Helper()
	if pids := p.waitSupervisorGone(3 * time.Second); len(pids) > 0 {
		p.b.Fatalf("supervisors of %s (pids %v) did not leave within 3 s of down", p.name, pids)
	}
	if es := p.ps(true); len(es) != 0 {
		p.b.Fatalf("after down, ps -a lists %+v", es)
	}
	// .init (the shared init layers) and .names (the container-name
	// index, whose links go with their containers) are the store's own.
	entries, _ := os.ReadDir(filepath.Join(p.root, "containers"))
	entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool { return e.Name() == ".init" || e.Name() == ".names" })
	if names, _ := os.ReadDir(filepath.Join(p.root, "containers", ".names")); len(names) != 0 {
		p.b.Fatalf("after down, %d container names are still taken", len(names))
	}
	if len(entries) != 0 {
		p.b.Fatalf("after down, %d container directories are left", len(entries))
	}
	if after := p.hostState(); after != before {
		p.b.Fatalf("after down, the host changed:\n%s\n---\n%s", before, after)
	}
	if ns, _ := os.ReadDir(filepath.Join(p.run, "netns")); len(ns) != 0 {
		p.b.Fatalf("after down, %d network namespaces are left in BERTH_RUN/netns", len(ns))
	}
	if left := p.bridges(); len(left) != 0 {
		p.b.Fatalf("after down, the project's networks (bridges %v) are left in BERTH_ROOT/networks", left)
	}
	for _, br := range bridges {
		if _, err := os.Stat(filepath.Join("/sys/class/net", br)); err == nil {
			p.b.Fatalf("after down, the bridge %s is left", br)
		}
	}
	if len(bridges) == 0 {
		return
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return
	}
	for _, table := range []string{"filter", "nat"} {
		out, err := exec.Command("iptables", "-w", "-t", table, "-S").Output()
		if err != nil {
			p.b.Fatalf("iptables -t %s -S: %v", table, err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			for _, br := range bridges {
				if strings.Contains(l, br) {
					p.b.Fatalf("after down, a rule naming the bridge %s is left: iptables -t %s %s", br, table, l)
				}
			}
		}
	}
}

// bridges lists the bridges of the project's networks, as berth keeps
// them in BERTH_ROOT/networks/<name>.json.
func (p *upProject) bridges() []string {
	files, _ := filepath.Glob(filepath.Join(p.root, "networks", "*.json"))
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var n struct{ Project, Bridge string }
		if json.Unmarshal(b, &n) == nil && n.Project == p.name && n.Bridge != "" {
			out = append(out, n.Bridge)
		}
	}
	return out
}

// supervisors lists the pids of the processes that are the project's
// supervisor: `<berth binary> supervise --project-name <name>`, as the CLI
// spawns it, the binary being berth's copy in BERTH_RUN/exe
// (internal/hugeexe) or the one built.
func (p *upProject) supervisors() []int {
	bins := []string{p.bin}
	if real, err := filepath.EvalSymlinks(p.bin); err == nil && real != p.bin {
		bins = append(bins, real)
	}
	copies, _ := filepath.Glob(filepath.Join(hoststate.Exe(p.run), "berth-*"))
	bins = append(bins, copies...)
	procs, _ := os.ReadDir("/proc")
	var pids []int
	for _, d := range procs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		if len(args) == 4 && slices.Contains(bins, args[0]) &&
			args[1] == "supervise" && args[2] == "--project-name" && args[3] == p.name {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitSupervisorGone waits up to timeout for the project's supervisor to
// leave and returns the pids of those still there.
func (p *upProject) waitSupervisorGone(timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		pids := p.supervisors()
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procStatus reads the numbers of /proc/<pid>/status (kB for the Vm ones).
func procStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	st := map[string]int64{}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			st[k] = n
		}
	}
	if _, ok := st["VmRSS"]; !ok {
		return nil, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
	}
	return st, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// procCPU is the CPU time, user and system, a process has used, and with
// children that of the children it waited for (/proc/<pid>/stat utime,
// stime, then cutime, cstime).
func procCPU(pid int, children bool) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing one (field 3, the state, comes first).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	fields := f[11:13] // fields 14 and 15
	if children {
		fields = f[11:15] // and 16, 17
	}
	var ticks int64
	for _, s := range fields {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// composeOptions say how composeYAML writes the services.
type composeOptions struct {
	image string
	// docker: for the Docker baseline, `pull_policy: never` (the image
	// is docker load's).
	docker bool
}

// composeYAML is a project of n busybox services s1…sn, each a long sleep
// under an init, health checks off; chain makes each depend on the one
// before.
func composeYAML(name string, n int, chain bool, o composeOptions) string {
	var y strings.Builder
	fmt.Fprintf(&y, "name: %s\nservices:\n", name)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&y, "  s%d:\n    image: %s\n    init: true\n    command: [\"sleep\", \"100000\"]\n", i, o.image)
		y.WriteString("    healthcheck:\n      disable: true\n")
		if o.docker {
			y.WriteString("    pull_policy: never\n")
		}
		if chain && i > 1 {
			fmt.Fprintf(&y, "    depends_on: [s%d]\n", i-1)
		}
	}
	return y.String()
}

// The Docker Compose baseline: the same projects, `docker compose up -d`
// and `docker compose down` against a running Docker daemon, with the
// offline busybox image loaded into it. Optional as the Docker benchmarks
// are (docker_test.go): without `docker`, a daemon that answers, or the
// compose plugin (`docker compose version`), they skip, also under CI.
// Both sides give the services the project's default network (a bridge):
// berth does since commit b28efb8.

// BenchmarkDockerComposeUpDown: baseline of BenchmarkUpDown.
func BenchmarkDockerComposeUpDown(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchDockerCompose(b, n, false) })
	}
}

// BenchmarkDockerComposeUpDownChain10: baseline of BenchmarkUpDownChain10.
func BenchmarkDockerComposeUpDownChain10(b *testing.B) { benchDockerCompose(b, 10, true) }

// needDockerCompose skips unless Docker (needDocker) and its compose plugin
// are there.
func needDockerCompose(b *testing.B) {
	b.Helper()
	needDocker(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "compose", "version").CombinedOutput(); err != nil {
		b.Skipf("docker compose is not installed (apt-get install docker-compose, or Docker's compose plugin): docker compose version: %v: %s",
			err, bytes.TrimSpace(out))
	}
}

func benchDockerCompose(b *testing.B, n int, chain bool) {
	needDockerCompose(b)
	ref, err := dockerBusybox()
	if err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("berthbench%d-%d", os.Getpid(), time.Now().UnixNano())
	file := filepath.Join(b.TempDir(), "compose.yaml")
	if err := os.WriteFile(file, []byte(composeYAML(name, n, chain, composeOptions{image: ref, docker: true})), 0o644); err != nil {
		b.Fatal(err)
	}
	compose := func(args ...string) error {
		args = append([]string{"compose", "-f", file, "-p", name}, args...)
		if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	b.Cleanup(func() {
		if err := compose("down", "-t", "1"); err != nil {
			b.Error(err)
		}
	})
	count := func(all bool) int {
		args := []string{"compose", "-f", file, "-p", name, "ps", "-q"}
		if all {
			args = append(args, "-a")
		}
		out, err := exec.Command("docker", args...).CombinedOutput()
		if err != nil {
			b.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return len(strings.Fields(string(out)))
	}
	var up, down time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		err := compose("up", "-d")
		up += time.Since(t0)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if got := count(false); got != n {
			b.Fatalf("after up -d, %d containers run, want %d", got, n)
		}
		b.StartTimer()
		t0 = time.Now()
		err = compose("down")
		down += time.Since(t0)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if got := count(true); got != 0 {
			b.Fatalf("after down, %d containers are left", got)
		}
		b.StartTimer()
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(up), "up-ms/op")
	b.ReportMetric(ms(down), "down-ms/op")
}
