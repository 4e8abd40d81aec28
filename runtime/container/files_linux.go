package container

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strconv"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/spec"
	"github.com/berth-dev/berth/volume"
)

// secretsDir holds a container's secrets and configs, in its state
// directory: removed with the container, kept across its restarts and the
// host's reboots.
const secretsDir = "secrets"

// writeFiles writes c's secrets and configs into its state directory dir,
// each file named after its index, and returns their paths in order.
func writeFiles(ctx context.Context, dir string, files []spec.File) ([]string, error) {
	if len(files) == 0 {
		return nil, nil
	}
	out := make([]volume.File, len(files))
	paths := make([]string, len(files))
	for i, f := range files {
		if !path.IsAbs(f.Target) || path.Clean(f.Target) != f.Target || f.Target == "/" {
			return nil, fmt.Errorf("%w: file target %q: an absolute, clean path below /", errdefs.ErrInvalidArgument, f.Target)
		}
		name := strconv.Itoa(i)
		out[i] = volume.File{Name: name, Content: f.Content, UID: f.UID, GID: f.GID, Mode: f.Mode}
		paths[i] = filepath.Join(dir, secretsDir, name)
	}
	if err := volume.WriteFiles(ctx, filepath.Join(dir, secretsDir), out); err != nil {
		return nil, fmt.Errorf("secrets and configs: %w", err)
	}
	return paths, nil
}

// fileMounts bind-mounts c's secrets and configs from their paths on the
// host: read-only, and nothing in them runs or is a device. libcontainer
// makes each target inside the root filesystem without following links
// out of it.
func fileMounts(files []spec.File, paths []string) []specs.Mount {
	var out []specs.Mount
	for i, f := range files {
		out = append(out, specs.Mount{Destination: f.Target, Type: "bind", Source: paths[i],
			Options: []string{"rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"}})
	}
	return out
}
