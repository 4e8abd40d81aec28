//go:build linux && (amd64 || arm64 || loong64 || ppc64le)

package hugeheap

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestMain: run as `<test binary> count-huge`, or as `<test binary>
// supervise` (what the supervisor's argv looks like), the binary prints
// how many of its mappings carry the huge page advice and exits.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "count-huge" || os.Args[1] == "supervise") {
		// Grow the heap past its first arena chunk: the advice is on
		// what the runtime maps.
		keep := make([][]byte, 0, 64)
		for range 64 {
			keep = append(keep, make([]byte, 256<<10))
		}
		heap, code, err := hugeMappings()
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		fmt.Println(heap, code, len(keep))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hugeMappings counts the mappings of this process advised MADV_HUGEPAGE
// ("hg" in smaps' VmFlags): anonymous ones (the heap) and the binary's
// code (executable, from a file).
func hugeMappings() (heap, code int, err error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var header []string // the mapping's line: address, permissions, offset, device, inode, path
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			header = fields
			continue
		}
		if rest, ok := strings.CutPrefix(line, "VmFlags:"); ok && strings.Contains(" "+rest+" ", " hg ") && len(header) >= 5 {
			switch {
			case header[4] == "0":
				heap++
			case strings.Contains(header[1], "x"):
				code++
			}
		}
	}
	return heap, code, s.Err()
}

func TestHugeHeap(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage"); err != nil {
		t.Skip("this kernel has no transparent huge pages: the advice is refused")
	}
	count := func(arg string, env ...string) (heap, code int) {
		t.Helper()
		cmd := exec.Command(os.Args[0], arg)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v: %s", arg, err, out)
		}
		f := bytes.Fields(out)
		if len(f) < 2 {
			t.Fatalf("%s: %q", arg, out)
		}
		heap, err1 := strconv.Atoi(string(f[0]))
		code, err2 := strconv.Atoi(string(f[1]))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %q", arg, out)
		}
		return heap, code
	}
	heap, code := count("count-huge", "BERTH_HUGEPAGES=")
	if heap == 0 {
		t.Error("no mapping of the Go heap carries the huge page advice")
	}
	if code == 0 {
		t.Error("the binary's code does not carry the huge page advice")
	}
	if heap, code := count("count-huge", "BERTH_HUGEPAGES=0"); heap+code != 0 {
		t.Errorf("BERTH_HUGEPAGES=0: %d heap and %d code mappings advised", heap, code)
	}
	if heap, code := count("supervise", "BERTH_HUGEPAGES="); heap+code != 0 {
		t.Errorf("the supervisor: %d heap and %d code mappings advised", heap, code)
	}
}

// Small private anonymous writable mappings the kernel places are
// populated, in a process with huge pages only; nothing else is.
func TestMmapFlags(t *testing.T) {
	const anon = syscall.MAP_PRIVATE | syscall.MAP_ANONYMOUS
	const rw = syscall.PROT_READ | syscall.PROT_WRITE
	for _, tc := range []struct {
		name          string
		addr          uintptr
		length, prot  int
		flags         int
		on, populated bool
	}{
		{"runtime metadata chunk", 0, 256 << 10, rw, anon, true, true},
		{"mark bits arena", 0, 64 << 10, rw, anon, true, true},
		{"the supervisor, or BERTH_HUGEPAGES=0", 0, 256 << 10, rw, anon, false, false},
		{"larger than a metadata chunk", 0, 256<<10 + 4096, rw, anon, true, false},
		{"a reservation (no access)", 0, 64 << 10, syscall.PROT_NONE, anon, true, false},
		{"read-only", 0, 64 << 10, syscall.PROT_READ, anon, true, false},
		{"at a fixed address (the heap)", 0xc000000000, 64 << 10, rw, anon | syscall.MAP_FIXED, true, false},
		{"at a hinted address", 0xc000000000, 64 << 10, rw, anon, true, false},
		{"shared", 0, 64 << 10, rw, syscall.MAP_SHARED | syscall.MAP_ANONYMOUS, true, false},
		{"a file", 0, 64 << 10, rw, syscall.MAP_PRIVATE, true, false},
	} {
		got := mmapFlags(tc.addr, tc.length, tc.prot, tc.flags, tc.on)
		if want := tc.flags | map[bool]int{true: syscall.MAP_POPULATE}[tc.populated]; got != want {
			t.Errorf("%s: flags %#x, want %#x", tc.name, got, want)
		}
	}
}
