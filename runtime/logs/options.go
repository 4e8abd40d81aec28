package logs

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	units "github.com/docker/go-units"
)

// Defaults for a container whose compose file sets no logging options. They
// are those of Docker's "local" driver: Docker's json-file driver keeps
// everything by default, which fills disks.
const (
	DefaultMaxSize  = 20 << 20
	DefaultMaxFiles = 5
)

// Options bound the disk space a container's logs take.
type Options struct {
	// MaxSize is the size in bytes a log file may reach before it is
	// rotated; 0 means DefaultMaxSize. A single record larger than MaxSize
	// still gets written, to a file of its own.
	MaxSize int64
	// MaxFiles is how many files are kept, the current one included;
	// 0 means DefaultMaxFiles.
	MaxFiles int
}

// withDefaults returns o with zero fields set to the defaults, or an error
// if a field is out of range.
func (o Options) withDefaults() (Options, error) {
	if o.MaxSize < 0 {
		return o, fmt.Errorf("logs: max size %d: %w: must be positive", o.MaxSize, errdefs.ErrInvalidArgument)
	}
	if o.MaxFiles < 0 {
		return o, fmt.Errorf("logs: max files %d: %w: must be at least 1", o.MaxFiles, errdefs.ErrInvalidArgument)
	}
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxFiles == 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	return o, nil
}

// ParseOptions reads a compose service's logging.options.
//
// "max-size" is a size in Docker's units, parsed as Docker parses it (with
// go-units FromHumanSize, so "10m" is 10,000,000 bytes and "1k" 1,000);
// "max-file" is the number of files kept. Options that Docker's json-file
// driver accepts but berth ignores (compress, env, env-regex, labels,
// labels-regex, tag) are accepted; any other key is an error.
func ParseOptions(opts map[string]string) (Options, error) {
	var o Options
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	slices.Sort(keys) // so the error for several bad keys is always the same
	for _, k := range keys {
		v := opts[k]
		switch {
		case k == "max-size":
			n, err := units.FromHumanSize(v)
			if err != nil {
				return Options{}, fmt.Errorf("logging option max-size %q: %w: a size such as 10m or 500k is expected", v, errdefs.ErrInvalidArgument)
			}
			if n <= 0 {
				return Options{}, fmt.Errorf("logging option max-size %q: %w: must be a positive size", v, errdefs.ErrInvalidArgument)
			}
			o.MaxSize = n
		case k == "max-file":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 {
				return Options{}, fmt.Errorf("logging option max-file %q: %w: a whole number of at least 1 is expected", v, errdefs.ErrInvalidArgument)
			}
			o.MaxFiles = n
		case k == "compress", k == "env", k == "env-regex", k == "labels", k == "labels-regex", k == "tag":
			// Docker's json-file driver accepts these and berth does not
			// implement them. Accepting them keeps compose files written
			// for Docker working: none changes what is kept, only how
			// (gzip) or with which extra attributes.
		default:
			return Options{}, fmt.Errorf("logging option %q: %w: only max-size and max-file are supported", k, errdefs.ErrInvalidArgument)
		}
	}
	return o, nil
}
