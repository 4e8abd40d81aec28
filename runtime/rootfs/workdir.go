package rootfs

import (
	"fmt"
	"path"
	"strings"

	"github.com/containerd/errdefs"
)

// CleanWorkingDir checks a working directory (an image's WorkingDir or a
// service's working_dir) and returns it cleaned; "" is "/".
//
// It must be absolute, like Docker requires. A ".." component is refused
// rather than cleaned away: it only ever serves to climb out of the root.
// So is a directory under /proc, /dev or /sys: berth mounts those when the
// container starts, so nothing created there beforehand survives, and a
// working directory such as /proc/self/fd/7 would hand the process a
// descriptor of the host (CVE-2024-21626).
func CleanWorkingDir(dir string) (string, error) {
	if dir == "" {
		return "/", nil
	}
	if strings.IndexByte(dir, 0) >= 0 {
		return "", fmt.Errorf("%w: working directory %q contains a NUL byte", errdefs.ErrInvalidArgument, dir)
	}
	if !path.IsAbs(dir) {
		return "", fmt.Errorf("%w: working directory %q is not an absolute path", errdefs.ErrInvalidArgument, dir)
	}
	for el := range strings.SplitSeq(dir, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: working directory %q has a \"..\" component", errdefs.ErrInvalidArgument, dir)
		}
	}
	clean := path.Clean(dir)
	if err := checkNotRuntimeMount(clean, clean); err != nil {
		return "", err
	}
	return clean, nil
}

// checkNotRuntimeMount refuses a working directory that is, or resolves to,
// a place under the file systems berth mounts at start.
func checkNotRuntimeMount(dir, resolved string) error {
	first, _, _ := strings.Cut(strings.TrimPrefix(resolved, "/"), "/")
	switch first {
	case "proc", "dev", "sys":
		how := "is"
		if dir != resolved {
			how = "resolves to " + resolved + ","
		}
		return fmt.Errorf("%w: working directory %q %s under /%s, which berth mounts when the container starts: use a directory of the image",
			errdefs.ErrInvalidArgument, dir, how, first)
	}
	return nil
}
