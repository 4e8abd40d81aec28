package compose

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
)

// volumeStorage is where a local volume's data lives, as its driver
// options (driver_opts, `volume create --opt`) say.
//
// Docker's local driver mounts what the options describe on the volume's
// _data directory when a container first uses it, and unmounts it when
// the last one stops. berth mounts it into each container directly
// instead, so that no mount is left on the host between runs: a bind
// volume is a bind of its device into the container, a tmpfs volume a
// tmpfs of the container's own. The difference shows only for tmpfs:
// two containers running at once each see their own tmpfs, where
// Docker's share one.
type volumeStorage struct {
	kind     string   // "" (the volume's own directory), "bind" or "tmpfs"
	device   string   // bind: the host directory
	flag     string   // bind: "bind" or "rbind"
	readOnly bool     // bind: o has ro
	tmpfs    []string // tmpfs: the mount options of o
}

// parseDriverOpts reads a local volume's driver options as Docker's local
// driver takes them (moby volume/local): type, o and device, type and
// device needed together. berth honours two kinds: type none (or bind)
// with o: bind or rbind and an absolute device, a host directory; and
// type tmpfs with o's tmpfs options (size, mode, uid, gid, nr_inodes and
// the usual flags), whose device Docker asks for but never reads. Every
// other type (nfs, cifs, a block device's filesystem) and the size quota
// option are refused, naming the option.
func parseDriverOpts(opts map[string]string) (volumeStorage, error) {
	var st volumeStorage
	if len(opts) == 0 {
		return st, nil
	}
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		switch k {
		case "type", "o", "device":
		case "size":
			return st, fmt.Errorf("%w: driver_opts.size: a size quota is not supported by berth's local volumes", errdefs.ErrNotImplemented)
		default:
			return st, fmt.Errorf("%w: driver_opts.%s: unknown option: the local driver takes type, o and device", errdefs.ErrInvalidArgument, k)
		}
	}
	typ, o, device := opts["type"], opts["o"], opts["device"]
	var flags []string
	if o != "" {
		flags = strings.Split(o, ",")
	}
	switch typ {
	case "":
		return st, fmt.Errorf("%w: driver_opts.type: missing: write type: none with o: bind and a device (a host directory), or type: tmpfs", errdefs.ErrInvalidArgument)
	case "none", "bind":
		st.kind = "bind"
		if device == "" {
			return st, fmt.Errorf("%w: driver_opts.device: missing: a bind volume needs the host directory it shows", errdefs.ErrInvalidArgument)
		}
		if !filepath.IsAbs(device) {
			return st, fmt.Errorf("%w: driver_opts.device: %q is not an absolute path", errdefs.ErrInvalidArgument, device)
		}
		st.device = filepath.Clean(device)
		for _, f := range flags {
			switch f {
			case "bind", "rbind":
				st.flag = f
			case "ro":
				st.readOnly = true
			case "rw":
				st.readOnly = false
			default:
				return st, fmt.Errorf("%w: driver_opts.o: %q: a bind volume takes bind or rbind, and ro or rw", errdefs.ErrInvalidArgument, f)
			}
		}
		if st.flag == "" {
			return st, fmt.Errorf("%w: driver_opts.o: %q: type %s needs o: bind (or rbind)", errdefs.ErrInvalidArgument, o, typ)
		}
	case "tmpfs":
		st.kind = "tmpfs"
		for _, f := range flags {
			if err := checkTmpfsValue(f); err != nil {
				return st, fmt.Errorf("%w: driver_opts.o: %q: %v", errdefs.ErrInvalidArgument, f, err)
			}
		}
		merged, err := mergeTmpfsOptions(flags)
		if err != nil {
			return st, fmt.Errorf("%w: driver_opts.o: %v", errdefs.ErrInvalidArgument, err)
		}
		st.tmpfs = merged
	default:
		return st, fmt.Errorf("%w: driver_opts.type: %q is not supported: berth's local volumes take type none with o: bind (a host directory) or type tmpfs", errdefs.ErrNotImplemented, typ)
	}
	return st, nil
}

var (
	tmpfsSize   = regexp.MustCompile(`^[0-9]+[kKmMgG%]?$`)
	tmpfsMode   = regexp.MustCompile(`^[0-7]{1,4}$`)
	tmpfsNumber = regexp.MustCompile(`^[0-9]+$`)
)

// checkTmpfsValue checks the value of a tmpfs option the kernel would
// otherwise refuse only when the container starts.
func checkTmpfsValue(o string) error {
	k, v, ok := strings.Cut(o, "=")
	if !ok {
		return nil
	}
	var re *regexp.Regexp
	switch k {
	case "size", "nr_blocks", "nr_inodes":
		re = tmpfsSize
	case "mode":
		re = tmpfsMode
	case "uid", "gid":
		re = tmpfsNumber
	default:
		return nil
	}
	if !re.MatchString(v) {
		return fmt.Errorf("%s takes %s", k, map[string]string{
			"size": "a size such as 64m or 50%", "nr_blocks": "a number of blocks", "nr_inodes": "a number of inodes",
			"mode": "an octal mode such as 1777", "uid": "a numeric user id", "gid": "a numeric group id",
		}[k])
	}
	return nil
}

// checkDevice checks that a bind volume's host directory is there: as
// with Docker's local driver, berth does not create it.
func checkDevice(device string) error {
	st, err := os.Stat(device)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: driver_opts.device: %s does not exist: create it first", errdefs.ErrNotFound, device)
	}
	if err != nil {
		return fmt.Errorf("driver_opts.device: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: driver_opts.device: %s is not a directory", errdefs.ErrInvalidArgument, device)
	}
	return nil
}
