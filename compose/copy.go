package compose

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/filecopy"
	"github.com/berth-dev/berth/runtime/spec"
)

// CopyOptions are those of cp.
type CopyOptions struct {
	// Source and Destination are SERVICE:PATH on one side, a local path
	// (or "-", a tar archive on Stdin or Stdout) on the other.
	Source, Destination string
	Index               int  // the replica; 0: all (into), the first (out of)
	All                 bool // one-off containers too (--all)
	Archive             bool // -a: owners kept into the container
	FollowLink          bool // -L
	Stdin               io.Reader
	Stdout              io.Writer
	Progress            func(Progress)
}

// Copy copies files between a service's containers and the host as
// docker compose cp does: out of the service's first container (or
// replica Index), into every one of them (or replica Index). A local path
// is relative to the current directory; a container's, to its root.
func Copy(ctx context.Context, lo project.Options, eng Engine, o CopyOptions) error {
	srcService, srcPath := splitCopyArg(o.Source)
	dstService, dstPath := splitCopyArg(o.Destination)
	var service string
	switch {
	case srcService != "" && dstService != "":
		return fmt.Errorf("%w: copying between services is not supported", errdefs.ErrInvalidArgument)
	case srcService == "" && dstService == "":
		return fmt.Errorf("%w: one of the paths must be SERVICE:PATH", errdefs.ErrInvalidArgument)
	case srcService != "":
		service = srcService
	default:
		service = dstService
	}
	if srcPath == "" || dstPath == "" {
		return fmt.Errorf("%w: an empty path", errdefs.ErrInvalidArgument)
	}
	into := dstService != ""
	p, err := loadForServices(ctx, lo, eng, []string{service})
	if err != nil {
		return err
	}
	cs, err := watched(ctx, eng, p.Name)
	if err != nil {
		return err
	}
	cs = slices.DeleteFunc(cs, func(c ContainerStatus) bool {
		return c.Service() != service || c.OneOff() && (!o.All || o.Index > 0) || o.Index > 0 && c.Number() != o.Index
	})
	slices.SortFunc(cs, func(a, b ContainerStatus) int {
		return cmp.Or(cmp.Compare(a.Number(), b.Number()), a.Created.Compare(b.Created))
	})
	switch {
	case len(cs) == 0 && o.Index > 0:
		return fmt.Errorf("%w: service %q has no container #%d", errdefs.ErrNotFound, service, o.Index)
	case len(cs) == 0:
		return fmt.Errorf("%w: no container found for service %q", errdefs.ErrNotFound, service)
	case !into:
		cs = cs[:1]
	}
	local := dstPath // the host's side
	if into {
		local = srcPath
	}
	if local != "-" && !filepath.IsAbs(local) {
		abs, err := filepath.Abs(local)
		if err != nil {
			return err
		}
		// The trailing "/" or "/." says what is meant: kept.
		if local == "." || strings.HasSuffix(local, "/.") {
			abs += "/."
		} else if strings.HasSuffix(local, "/") {
			abs += "/"
		}
		local = abs
	}
	host, err := filecopy.OpenRoot("/", "")
	if err != nil {
		return err
	}
	defer host.Close()
	var archive *os.File
	if into && srcPath == "-" && len(cs) > 1 {
		// One archive on stdin, several containers: read once, kept aside.
		tmp, err := os.CreateTemp("", "berth-cp-")
		if err != nil {
			return err
		}
		defer tmp.Close()
		os.Remove(tmp.Name())
		if _, err := io.Copy(tmp, o.Stdin); err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		archive = tmp
	}
	var errs []error
	for _, c := range cs {
		if archive != nil {
			if _, err := archive.Seek(0, io.SeekStart); err != nil {
				return err
			}
			o.Stdin = archive
		}
		// Its errors name the container.
		errs = append(errs, copyOne(ctx, eng, c, into, local, srcPath, dstPath, host, o))
	}
	return errors.Join(errs...)
}

func copyOne(ctx context.Context, eng Engine, c ContainerStatus, into bool, local, srcPath, dstPath string, host *filecopy.Root, o CopyOptions) error {
	inside := srcPath
	if into {
		inside = dstPath
	}
	if m, ok := mountAt(c, inside); ok && !c.Running() {
		// Its root filesystem has only the empty mount point there: a copy
		// would miss the volume, or land under it and stay hidden.
		return fmt.Errorf("%w: container %s is not running, and %s is in its mount %s: start it to copy there", errdefs.ErrFailedPrecondition, c.Name, inside, m.Target)
	}
	root, err := openRoot(ctx, eng, c, true)
	if err != nil {
		return err
	}
	defer root.Close()
	fo := filecopy.Options{FollowLink: o.FollowLink, KeepOwner: o.Archive, IntoContainer: into}
	progress := func(status string) {
		if o.Progress != nil {
			o.Progress(Progress{Resource: "Container " + c.Name, Status: status})
		}
	}
	progress(StatusCopying)
	switch {
	case into && srcPath == "-":
		err = filecopy.ExtractTar(ctx, o.Stdin, root, dstPath, fo)
	case into:
		err = filecopy.Copy(ctx, host, local, root, dstPath, fo)
	case dstPath == "-":
		err = filecopy.WriteTar(ctx, o.Stdout, root, srcPath, fo)
	default:
		err = filecopy.Copy(ctx, root, srcPath, host, local, fo)
	}
	if err != nil {
		return err
	}
	progress(StatusCopied)
	return nil
}

// splitCopyArg splits SERVICE:PATH; an absolute path, one with no ":" or
// one starting with "." (./file:name) is local.
func splitCopyArg(arg string) (service, path string) {
	if strings.HasPrefix(arg, "/") {
		return "", arg
	}
	service, path, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(service, ".") {
		return "", arg
	}
	return service, path
}

// ExportOptions are those of export.
type ExportOptions struct {
	Service string
	Index   int // the replica; 0: the first
	Output  io.Writer
}

// Export writes the root filesystem of a service's container (the first,
// or replica Index) to o.Output as a tar archive, as docker compose
// export does: its image's files and its changes, not its volumes.
func Export(ctx context.Context, lo project.Options, eng Engine, o ExportOptions) error {
	_, cs, err := SelectContainers(ctx, lo, eng, []string{o.Service})
	if err != nil {
		return err
	}
	slices.SortFunc(cs, func(a, b ContainerStatus) int { return cmp.Compare(a.Number(), b.Number()) })
	for _, c := range cs {
		if o.Index > 0 && c.Number() != o.Index {
			continue
		}
		root, err := openRoot(ctx, eng, c, false)
		if err != nil {
			return err
		}
		defer root.Close()
		return filecopy.WriteTar(ctx, o.Output, root, "/", filecopy.Options{})
	}
	if o.Index > 0 {
		return fmt.Errorf("%w: service %q has no container #%d", errdefs.ErrNotFound, o.Service, o.Index)
	}
	return fmt.Errorf("%w: no container found for service %q", errdefs.ErrNotFound, o.Service)
}

// openRoot opens the directory c's files are seen at (engine's Root).
// A running container's is its process's root, by pid: asked again once
// open, so that a process that took the pid of one that ended meanwhile
// is never taken for the container.
func openRoot(ctx context.Context, eng Engine, c ContainerStatus, mounts bool) (*filecopy.Root, error) {
	dir, err := eng.Root(ctx, c.ID, mounts)
	if err != nil {
		return nil, err
	}
	root, err := filecopy.OpenRoot(dir, c.Name)
	if err != nil {
		return nil, err
	}
	if again, err := eng.Root(ctx, c.ID, mounts); err != nil || again != dir {
		root.Close()
		return nil, fmt.Errorf("%w: container %s stopped or started during the copy: try again", errdefs.ErrUnavailable, c.Name)
	}
	return root, nil
}

// mountAt finds the mount (volume, bind, tmpfs) of c that p, a path in
// c, is in.
func mountAt(c ContainerStatus, p string) (spec.Mount, bool) {
	p = path.Clean("/" + p)
	for _, m := range c.Mounts {
		t := path.Clean("/" + m.Target)
		if p == t || strings.HasPrefix(p, strings.TrimSuffix(t, "/")+"/") {
			return m, true
		}
	}
	return spec.Mount{}, false
}
