package container

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/berth-dev/berth/runtime/container/reexec"
	"github.com/berth-dev/berth/runtime/image"
	"github.com/berth-dev/berth/runtime/spec"
	"github.com/berth-dev/berth/tests/berthbin"
	"github.com/berth-dev/berth/tests/hoststate"
	"github.com/berth-dev/berth/tests/offline"
)

// TestMain: this test binary is also the containers' init (libcontainer
// re-executes it as `<binary> init`), through the reexec import.
func TestMain(m *testing.M) {
	if arg := os.Getenv(startChildEnv); arg != "" {
		os.Exit(startChild(arg))
	}
	dir, err := os.MkdirTemp("", "berth-container-test-images-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	imageDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// imageDir holds the image store of the test binary.
var imageDir string

// needRoot fails under CI (which runs as root) and skips elsewhere: these
// tests make namespaces, cgroups and mounts.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("these tests need root")
		}
		t.Skip("needs root")
	}
}

// busybox is the offline busybox image, loaded once per test binary into a
// store that lives as long as the binary.
var busybox = sync.OnceValues(func() (*image.Image, error) {
	return offline.Load(context.Background(), imageDir, "busybox")
})

// testInit is the init of init: true for these tests' containers: this
// test binary is linked dynamically and cannot run inside one (findInit),
// so berth's init alone (tests/pid1init), built static once per test
// binary.
var testInit = sync.OnceValues(func() (string, error) {
	out := filepath.Join(imageDir, "docker-init")
	return out, berthbin.BuildPackage(context.Background(), "github.com/berth-dev/berth/tests/pid1init", out)
})

// newRuntime makes a runtime whose state lives in the test's temporary
// directory.
func newRuntime(t *testing.T) *Runtime {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	// A cgroup parent of the test's own: the leak checks look there, while
	// other test binaries run containers at the same time.
	parent := fmt.Sprintf("/berth-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	initBin, err := testInit()
	if err != nil {
		t.Fatal(err)
	}
	rt, err := New(Options{Root: filepath.Join(dir, "containers"), Run: filepath.Join(dir, "run"), CgroupParent: parent, InitBinary: initBin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hoststate.RemoveCgroup(parent) })
	return rt
}

var testIDs sync.Map

// busyboxSpec is a container of the busybox image running args.
func busyboxSpec(t *testing.T, args ...string) spec.Container {
	t.Helper()
	img, err := busybox()
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("t%d-%s", time.Now().UnixNano()%1e9, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "-"))
	if len(id) > 60 {
		id = id[:60]
	}
	testIDs.Store(id, true)
	return spec.Container{
		ID: id, Name: id, Image: "busybox", ImageID: img.ID(), Layers: img.Layers,
		Hostname: "test",
		Process: spec.Process{
			Args: args,
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
	}
}

// run creates and starts c, waits for it to exit, and returns its output
// and exit; the container is removed at the end of the test.
func run(t *testing.T, rt *Runtime, c spec.Container) (string, Exit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ct := create(t, rt, c)
	var out bytes.Buffer
	w := &syncWriter{w: &out}
	if err := ct.Start(ctx, StartOptions{Stdout: w, Stderr: w}); err != nil {
		t.Fatal(err)
	}
	e, err := ct.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return w.String(), e
}

func create(t *testing.T, rt *Runtime, c spec.Container) *Container {
	t.Helper()
	ct, err := rt.Create(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ct.Delete(context.Background(), true); err != nil {
			t.Errorf("deleting %s: %v", ct.ID, err)
		}
	})
	return ct
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// startChildEnv makes the test binary a process that starts a container,
// copies its output for 100 ms and exits as a supervisor on its way out
// does (detached from the container's output), leaving the container
// behind: root, run and id, separated by newlines.
const startChildEnv = "BERTH_TEST_START_CHILD"

func startChild(arg string) int {
	parts := strings.SplitN(arg, "\n", 3)
	rt, err := New(Options{Root: parts[0], Run: parts[1]})
	if err == nil {
		var ct *Container
		if ct, err = rt.Load(context.Background(), parts[2]); err == nil {
			err = ct.Start(context.Background(), StartOptions{})
		}
		if err == nil {
			// Copying for a while: the exit comes in the middle of it.
			time.Sleep(100 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = rt.Detach(ctx)
			cancel()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
