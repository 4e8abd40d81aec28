// Command imagebuild builds the images berth's tests and examples run —
// busybox, redis:7 and postgres:15 — from Debian bookworm packages, for
// machines that reach no container registry. Each image is a docker-archive
// tarball (the `docker save` format) tagged with its Docker Hub name, ready
// for `berth load`:
//
//	go run ./tests/imagebuild -out bin/images [busybox redis postgres]
//
// Packages come through apt (apt-get download) and are unpacked with dpkg-deb
// into an in-memory file system; no maintainer script runs, so the builder
// makes the accounts and directories they would. An image is rebuilt only
// when its packages or the builder's code change; see <name>.inputs next to
// each tarball.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"
)

func main() {
	out := flag.String("out", "bin/images", "directory for the image tarballs, their .inputs files and the debs/ package cache")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./tests/imagebuild [-out DIR] [IMAGE...]\n\nIMAGE is one of busybox, redis, postgres (default: all).\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runMain(ctx, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func runMain(ctx context.Context, out string, names []string) error {
	all := specs()
	selected := all
	if len(names) > 0 {
		selected = nil
		for _, n := range names {
			i := slices.IndexFunc(all, func(s imageSpec) bool { return s.name == n })
			if i < 0 {
				return fmt.Errorf("unknown image %q (known: busybox, redis, postgres)", n)
			}
			selected = append(selected, all[i])
		}
	}
	b := &builder{
		out:  out,
		debs: out + "/debs",
		logf: func(format string, args ...any) { fmt.Printf(format+"\n", args...) },
	}
	return b.build(ctx, selected, func(r result) {
		state := "up to date"
		if r.built {
			state = "built"
		}
		took := r.took.Round(time.Millisecond)
		if r.took < time.Millisecond {
			took = r.took.Round(time.Microsecond)
		}
		fmt.Printf("%-14s %-10s %6.1f MB  %8s  %s\n", r.ref, state, float64(r.size)/1e6, took, r.path)
	})
}
