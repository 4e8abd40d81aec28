package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/offline"
)

// The Docker benchmarks are the baseline for the container benchmarks
// (container_test.go): the same four measurements, driving the `docker`
// CLI against a running daemon, with the same offline busybox image. The
// baseline is optional: without `docker` (apt-get install docker.io) or
// without a daemon that answers `docker info`, they skip, also under
// CI=true (CI does not install Docker).
//
// Every container runs with `--network none`: berth's containers get a
// loopback interface only, so Docker's network setup (bridge, veth pair,
// iptables) is left out of its figure. Removing the containers
// (`docker rm -f`) is not timed, as berth's Delete is not.

// BenchmarkDockerStart: `docker run -d busybox sleep 60`, until it returns
// (the container's process runs). Baseline of BenchmarkContainerStart.
func BenchmarkDockerStart(b *testing.B) { benchDocker(b, 1, false) }

// BenchmarkDockerStartParallel20: 20 of them at once, until all have
// returned. Baseline of BenchmarkContainerStartParallel20.
func BenchmarkDockerStartParallel20(b *testing.B) { benchDocker(b, 20, false) }

// BenchmarkDockerRunToExit: `docker run busybox true`, until it returns
// (the container has exited and the CLI has its exit code). Without
// --rm, whose removal would be timed: the container is removed after,
// untimed. Baseline of BenchmarkContainerRunToExit.
func BenchmarkDockerRunToExit(b *testing.B) { benchDocker(b, 1, true) }

// BenchmarkDockerRunToExitParallel20: 20 of them at once. Baseline of
// BenchmarkContainerRunToExitParallel20.
func BenchmarkDockerRunToExitParallel20(b *testing.B) { benchDocker(b, 20, true) }

// dockerBusybox loads the offline busybox tarball into Docker's image store
// (`docker load -i`) once per test binary and returns the reference it
// loaded. The image stays in Docker's store afterwards.
var dockerBusybox = sync.OnceValues(func() (string, error) {
	archive, err := offline.Archive("busybox")
	if err != nil {
		return "", err
	}
	out, err := exec.Command("docker", "load", "-i", archive).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker load -i %s: %v: %s", archive, err, bytes.TrimSpace(out))
	}
	// "Loaded image: busybox:latest", or "Loaded image ID: sha256:…" for
	// an untagged image.
	for _, line := range strings.Split(string(out), "\n") {
		for _, prefix := range []string{"Loaded image: ", "Loaded image ID: "} {
			if ref, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok && ref != "" {
				return ref, nil
			}
		}
	}
	return "", fmt.Errorf("docker load -i %s: no image in its output: %s", archive, bytes.TrimSpace(out))
})

// needDocker skips the benchmark unless the docker CLI is installed and its
// daemon answers. It does not use needTool: the Docker baseline is optional
// everywhere, CI included.
func needDocker(b *testing.B) {
	b.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		b.Skipf("docker is not installed (apt-get install docker.io): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	info := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}")
	info.Stderr = &stderr
	if err := info.Run(); err != nil {
		b.Skipf("the Docker daemon does not answer (apt-get install docker.io, then start dockerd): docker info: %v: %s",
			err, bytes.TrimSpace(stderr.Bytes()))
	}
}

func benchDocker(b *testing.B, n int, toExit bool) {
	needDocker(b)
	ref, err := dockerBusybox()
	if err != nil {
		b.Fatal(err)
	}
	args := []string{"sleep", "60"}
	if toExit {
		args = []string{"true"}
	}
	// Names, so that a container is removed even when `docker run` failed
	// after creating it.
	prefix := fmt.Sprintf("berth-bench-%d-%d", os.Getpid(), time.Now().UnixNano())
	var seq int
	b.ResetTimer()
	for range b.N {
		names := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for j := range n {
			seq++
			names[j] = fmt.Sprintf("%s-%d", prefix, seq)
			run := []string{"run", "--name", names[j], "--network", "none", "--pull", "never"}
			if !toExit {
				run = append(run, "-d")
			}
			run = append(append(run, ref), args...)
			wg.Go(func() {
				if out, err := exec.Command("docker", run...).CombinedOutput(); err != nil {
					errs[j] = fmt.Errorf("docker %s: %v: %s", strings.Join(run, " "), err, bytes.TrimSpace(out))
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		rm := exec.Command("docker", append([]string{"rm", "-f"}, names...)...)
		rmOut, rmErr := rm.CombinedOutput()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		if rmErr != nil {
			b.Fatalf("docker rm -f: %v: %s", rmErr, bytes.TrimSpace(rmOut))
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}
