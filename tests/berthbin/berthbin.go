// Package berthbin builds the berth binary that the end-to-end tests and
// the benchmarks run, as the Makefile's build target builds it: what they
// measure and check is what ships.
package berthbin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Args are go build's arguments for berth as it ships; the Makefile's
// build target uses the same (keep the two alike).
//
// Static: every container start executes the binary again (libcontainer's
// init) and a dynamically linked one spends ~5 ms of CPU in the dynamic
// loader each time on the virtual machines berth is built on (180 page
// faults relocating the C library). netgo and osusergo keep the C
// library's name service (which cannot be linked statically) out.
var Args = []string{"-trimpath", "-tags", "netgo,osusergo", "-ldflags", "-s -w -extldflags=-static"}

// HeapExperiment turns off Go's heap base randomisation (Go 1.26 on): a
// berth process's heap then starts on a huge page boundary and its 2-3 MiB
// fill two 2 MiB pages, not three half the time (internal/hugeheap). The
// toolchain may one day no longer offer it; berth then builds without.
const HeapExperiment = "norandomizedheapbase64"

// Build builds berth into out.
func Build(ctx context.Context, out string) error {
	return BuildPackage(ctx, "github.com/berth-dev/berth/cmd/berth", out)
}

// BuildPackage builds the main package pkg into out as berth is built:
// static, with the same C compiler and flags.
func BuildPackage(ctx context.Context, pkg, out string) error {
	args := append([]string{"build"}, Args...)
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = os.Environ()
	probe := exec.CommandContext(ctx, "go", "env", "GOEXPERIMENT")
	probe.Env = append(os.Environ(), "GOEXPERIMENT="+HeapExperiment)
	if probe.Run() == nil {
		cmd.Env = probe.Env
	}
	cc, err := MuslCC(ctx)
	if err != nil {
		return err
	}
	if cc != "" {
		cmd.Env = append(cmd.Env, "CC="+cc)
	}
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", pkg, err, bytes.TrimSpace(b.Bytes()))
	}
	return Rewrite(out)
}

// MuslCC returns the repository's build/musl-cc when musl-gcc is
// installed, as the Makefile's build target chooses its C compiler: berth
// links with musl then (the Makefile says why). "" when it is not.
func MuslCC(ctx context.Context) (string, error) {
	if _, err := exec.LookPath("musl-gcc"); err != nil {
		return "", nil
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding berth's module: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("finding berth's module: not inside one")
	}
	return filepath.Join(filepath.Dir(mod), "build", "musl-cc"), nil
}

// Rewrite writes the binary at path again, 2 MiB at a time, as the
// Makefile's build target does with dd: the page cache then holds it in
// 2 MiB folios, which every process that executes it maps with one page
// table entry per 2 MiB (internal/hugeheap says why that matters).
func Rewrite(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	for off := 0; off < len(b); off += 2 << 20 {
		if _, err := f.Write(b[off:min(off+2<<20, len(b))]); err != nil {
			f.Close()
			return fmt.Errorf("rewriting %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
