package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	// Not used here: linked so that this binary, which libcontainer runs
	// as each container's init, starts as slowly as berth does (package
	// initialisation of the compose loader's JSON schema library is
	// ~10 ms per process).
	_ "github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/image"
	"github.com/berth-dev/berth/runtime/spec"
	"github.com/berth-dev/berth/tests/hoststate"
	"github.com/berth-dev/berth/tests/offline"
)

// The container benchmarks time what `berth up` pays per container once
// its image is there: create (overlay mount, /etc files, libcontainer
// state, cgroup) and start (namespaces, mounts, exec of the process), to
// the process running and, for a process that exits at once, to its exit
// being recorded. Removing the containers is not timed.

// BenchmarkContainerStart: one busybox container, created and started until
// its process runs (sleep).
func BenchmarkContainerStart(b *testing.B) { benchContainers(b, 1, false) }

// BenchmarkContainerStartParallel20: 20 containers at once, until all run.
func BenchmarkContainerStartParallel20(b *testing.B) { benchContainers(b, 20, false) }

// BenchmarkContainerRunToExit: one container running `true`, until its exit
// is recorded.
func BenchmarkContainerRunToExit(b *testing.B) { benchContainers(b, 1, true) }

// BenchmarkContainerRunToExitParallel20: 20 of them at once.
func BenchmarkContainerRunToExitParallel20(b *testing.B) { benchContainers(b, 20, true) }

func benchContainers(b *testing.B, n int, toExit bool) {
	needRoot(b)
	img, err := shared.busybox()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	// Runtime state on /run, as berth keeps it: libcontainer seals its
	// init binary with an overlay whose lower directories may not overlap,
	// and this binary lives in the temporary directory.
	run, err := os.MkdirTemp("/run", "berth-bench-")
	if err != nil {
		b.Fatal(err)
	}
	cgroup := "/" + filepath.Base(run)
	b.Cleanup(func() {
		os.RemoveAll(run)
		hoststate.RemoveCgroup(cgroup)
	})
	rt, err := container.New(container.Options{Root: filepath.Join(dir, "containers"), Run: run, CgroupParent: cgroup})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	args := []string{"sleep", "60"}
	if toExit {
		args = []string{"true"}
	}
	var seq int
	var createNanos atomic.Int64
	b.ResetTimer()
	for range b.N {
		cts := make([]*container.Container, n)
		eg, ectx := errgroup.WithContext(ctx)
		for j := range n {
			seq++
			c := spec.Container{
				ID: fmt.Sprintf("bench-%d", seq), Name: fmt.Sprintf("bench-%d", seq),
				Image: "busybox", ImageID: img.ID(), Layers: img.Layers, Hostname: "bench",
				Process: spec.Process{Args: args, Env: []string{"PATH=/bin"}},
			}
			eg.Go(func() error {
				t0 := time.Now()
				ct, err := rt.Create(ectx, c)
				createNanos.Add(int64(time.Since(t0)))
				if err != nil {
					return err
				}
				cts[j] = ct
				if err := ct.Start(ectx, container.StartOptions{}); err != nil {
					return err
				}
				if toExit {
					e, err := ct.Wait(ectx)
					if err == nil && e.Code != 0 {
						err = fmt.Errorf("exit %+v", e)
					}
					return err
				}
				return nil
			})
		}
		err := eg.Wait()
		b.StopTimer()
		var wg sync.WaitGroup
		for _, ct := range cts {
			if ct != nil {
				wg.Go(func() { ct.Delete(ctx, true) })
			}
		}
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
	b.ReportMetric(float64(createNanos.Load())/1e6/float64(b.N*n), "create-ms/container")
}

// loadBusybox loads the offline busybox image (make images) into a store
// of the fixtures' directory.
func (f *fixtures) loadBusybox() (*image.Image, error) {
	return offline.Load(context.Background(), filepath.Join(f.root, "store"), "busybox")
}
