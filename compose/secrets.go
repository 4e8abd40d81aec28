package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/spec"
)

// filesHashLabel holds a digest of a container's secrets and configs as
// they were when it was created: `up` recreates a container whose files
// changed, as it does one whose configuration changed. docker compose's
// config hash leaves contents out, and berth's keeps to it (`config
// --hash` prints the same as docker compose's).
const filesHashLabel = "berth.files-hash"

// maxFileSize bounds a secret or a config, which berth reads whole.
const maxFileSize = 64 << 20

// Where secrets and configs land when their target is empty or relative,
// as docker compose puts them.
const (
	secretsDir = "/run/secrets"
	configsDir = "/"
)

// projectFiles reads the secrets and configs of every service of p: `up`
// checks them all before it creates anything.
func projectFiles(p *types.Project) (map[string][]spec.File, error) {
	out := map[string][]spec.File{}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		files, err := serviceFiles(p, p.Services[name])
		if err != nil {
			return nil, err
		}
		out[name] = files
	}
	return out, nil
}

// serviceFiles reads the secrets and configs svc uses, as its containers
// get them: a secret at /run/secrets/<target or source> (an absolute
// target as it is), a config at its target or /<source>; owned by uid:gid
// (0:0 when unset) with mode (0444 when unset), which berth honours where
// docker compose ignores them outside Swarm. A secret comes from a file or
// an environment variable; a config also from its inline content.
//
// Errors name the service, the key and the file or variable.
func serviceFiles(p *types.Project, svc types.ServiceConfig) ([]spec.File, error) {
	var out []spec.File
	keys := map[string]string{} // target -> key, to refuse two files at one target
	add := func(key, kind string, ref types.FileReferenceConfig, def types.FileObjectConfig, declared bool, dir string) error {
		// Every error reads: service "s": key: secret "x": <class>: <what>.
		bad := func(hint string, err error) error {
			return &project.Error{Service: svc.Name, Key: key, Err: fmt.Errorf("%s %q: %w", kind, ref.Source, err), Hint: hint}
		}
		if !declared {
			return bad("", fmt.Errorf("%w: not declared in the top-level %ss", errdefs.ErrNotFound, kind))
		}
		f, err := fileOf(ref, dir)
		if err != nil {
			return bad("", fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err))
		}
		if other, ok := keys[f.Target]; ok {
			return bad("", fmt.Errorf("%w: target %s is also %s's", errdefs.ErrInvalidArgument, f.Target, other))
		}
		keys[f.Target] = key
		sources := "file: or environment:"
		if kind == "config" {
			sources = "file:, environment: or content:"
		}
		switch {
		case bool(def.External):
			return bad("declare it with "+sources+" in the top-level "+kind+"s",
				fmt.Errorf("%w: external %ss are Swarm's, and berth runs no Swarm", errdefs.ErrNotImplemented, kind))
		case def.File != "":
			file := def.File
			if !filepath.IsAbs(file) {
				file = filepath.Join(p.WorkingDir, file)
			}
			if f.Content, err = readFile(file); err != nil {
				return bad(fmt.Sprintf("create the file, or change %ss.%s.file", kind, ref.Source), err)
			}
		case def.Environment != "":
			v, ok := p.Environment[def.Environment]
			if !ok {
				return bad(fmt.Sprintf("set %s in the environment or in the project's .env file", def.Environment),
					fmt.Errorf("%w: environment variable %s is not set", errdefs.ErrNotFound, def.Environment))
			}
			f.Content = spec.Content(v)
		case def.Content != "" && kind == "config":
			f.Content = spec.Content(def.Content)
		default:
			return bad("", fmt.Errorf("%w: none of %s", errdefs.ErrInvalidArgument, sources))
		}
		out = append(out, f)
		return nil
	}
	for i, s := range svc.Secrets {
		def, ok := p.Secrets[s.Source]
		if err := add(fmt.Sprintf("secrets[%d]", i), "secret", types.FileReferenceConfig(s), types.FileObjectConfig(def), ok, secretsDir); err != nil {
			return nil, err
		}
	}
	for i, c := range svc.Configs {
		def, ok := p.Configs[c.Source]
		if err := add(fmt.Sprintf("configs[%d]", i), "config", types.FileReferenceConfig(c), types.FileObjectConfig(def), ok, configsDir); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fileOf is where a secret or config lands and with which owner and mode:
// an empty target is dir/<source>, a relative one is below dir.
func fileOf(ref types.FileReferenceConfig, dir string) (spec.File, error) {
	f := spec.File{Target: ref.Target, Mode: 0o444}
	switch {
	case f.Target == "":
		f.Target = path.Join(dir, ref.Source)
	case !path.IsAbs(f.Target):
		f.Target = path.Join(dir, f.Target)
	}
	f.Target = path.Clean(f.Target)
	if f.Target == "/" {
		return f, fmt.Errorf("target %q: a file needs a path below /", ref.Target)
	}
	var err error
	if f.UID, err = id(ref.UID); err != nil {
		return f, fmt.Errorf("uid %q: %w", ref.UID, err)
	}
	if f.GID, err = id(ref.GID); err != nil {
		return f, fmt.Errorf("gid %q: %w", ref.GID, err)
	}
	if ref.Mode != nil {
		if m := int64(*ref.Mode); m < 0 || m > 0o777 {
			return f, fmt.Errorf("mode %#o: permission bits only, 0 to 0777", m)
		}
		f.Mode = fs.FileMode(*ref.Mode)
	}
	return f, nil
}

// id parses a numeric user or group id; empty is 0 (root).
func id(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	// The largest id, 2^32-1, is the kernel's "no id".
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, errors.New("a numeric id, 0 to 4294967294")
	}
	return int(n), nil
}

// readFile reads a secret's or config's file: a regular file (a named pipe
// or a device would never end) of at most maxFileSize bytes. Errors are
// classed (errdefs) and name the file.
func readFile(name string) (spec.Content, error) {
	fi, err := os.Stat(name)
	if err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file (%v)", errdefs.ErrInvalidArgument, name, fi.Mode().Type())
	}
	var b []byte
	if err == nil {
		var f *os.File
		if f, err = os.Open(name); err == nil {
			b, err = io.ReadAll(io.LimitReader(f, maxFileSize+1))
			f.Close()
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: file %s does not exist", errdefs.ErrNotFound, name)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("%w: %w", errdefs.ErrPermissionDenied, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", errdefs.ErrUnavailable, err)
	case len(b) > maxFileSize:
		return nil, fmt.Errorf("%w: %s is larger than %d MiB", errdefs.ErrInvalidArgument, name, maxFileSize>>20)
	}
	return b, nil
}

// filesHash is a digest of files, "" when there are none.
func filesHash(files []spec.File) string {
	if len(files) == 0 {
		return ""
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%o\x00%d\x00", f.Target, f.UID, f.GID, uint32(f.Mode), len(f.Content))
		h.Write(f.Content)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// withFilesHash is what `up` compares to decide whether a container is
// current: its config hash, and the digest of its files when it has any.
func withFilesHash(configHash, filesHash string) string {
	if filesHash == "" {
		return configHash
	}
	return configHash + " " + filesHash
}

// giveFiles gives c its secrets and configs, and labels it with their
// digest.
func giveFiles(c *spec.Container, files []spec.File) {
	c.Files = files
	if h := filesHash(files); h != "" {
		c.Labels[filesHashLabel] = h
	}
}
