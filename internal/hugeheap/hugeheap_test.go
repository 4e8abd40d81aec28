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
		n, err := hugeMappings()
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		fmt.Println(n, len(keep))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hugeMappings counts the mappings of this process advised MADV_HUGEPAGE
// ("hg" in smaps' VmFlags).
func hugeMappings() (int, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmFlags:"); ok && strings.Contains(" "+rest+" ", " hg ") {
			n++
		}
	}
	return n, s.Err()
}

func TestHugeHeap(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage"); err != nil {
		t.Skip("this kernel has no transparent huge pages: the advice is refused")
	}
	count := func(arg string, env ...string) int {
		t.Helper()
		cmd := exec.Command(os.Args[0], arg)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v: %s", arg, err, out)
		}
		n, err := strconv.Atoi(string(bytes.Fields(out)[0]))
		if err != nil {
			t.Fatalf("%s: %q", arg, out)
		}
		return n
	}
	if n := count("count-huge", "BERTH_HUGEPAGES="); n == 0 {
		t.Error("no mapping of the Go heap carries the huge page advice")
	}
	if n := count("count-huge", "BERTH_HUGEPAGES=0"); n != 0 {
		t.Errorf("BERTH_HUGEPAGES=0: %d mappings advised", n)
	}
	if n := count("supervise", "BERTH_HUGEPAGES="); n != 0 {
		t.Errorf("the supervisor: %d mappings advised", n)
	}
}
