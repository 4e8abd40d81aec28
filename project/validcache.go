package project

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/sirupsen/logrus"
)

// Validating a project against the Compose schema is a quarter of what a
// short command such as `ps` costs (compose-go compiles the schema in
// every process). Its result depends only on the files' bytes, the
// variables of the environment they name (interpolation) and the schema, so a project
// validated once is not validated again while none of these changes:
// Options.ValidationCache keeps an empty file per validated combination.
// Projects that include or extend other files are always validated (the
// files they pull in are not known before loading).

// validationKey names the combination of files, environment and schema a
// load validates, or "" when it cannot be cached.
func validationKey(po *cli.ProjectOptions) string {
	h := sha256.New()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	// The schema is compose-go's; berth's own version for builds whose
	// dependencies are not recorded.
	h.Write([]byte(bi.Main.Version + "\x00" + bi.Main.Sum + "\x00"))
	for _, d := range bi.Deps {
		if d.Path == "github.com/compose-spec/compose-go/v2" {
			h.Write([]byte(d.Version + "\x00" + d.Sum + "\x00"))
		}
	}
	var files [][]byte
	for _, f := range po.ConfigPaths {
		if f == "-" {
			return ""
		}
		b, err := os.ReadFile(f)
		if err != nil || bytes.Contains(b, []byte("include")) || bytes.Contains(b, []byte("extends")) {
			return ""
		}
		h.Write([]byte(f + "\x00"))
		h.Write(b)
		h.Write([]byte{0})
		files = append(files, b)
	}
	// Only a variable the files name can change what is validated
	// (interpolation); the rest of the environment (the shell's $_, a
	// terminal's variables) must not make every command validate again.
	keys := make([]string, 0, len(po.Environment))
	for k := range po.Environment {
		if slices.ContainsFunc(files, func(b []byte) bool { return bytes.Contains(b, []byte(k)) }) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		h.Write([]byte(k + "=" + po.Environment[k] + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// skipKnownValid turns schema validation off when this combination was
// validated before; it returns the marker to write once the load
// succeeds ("" when there is nothing to write).
func (o Options) skipKnownValid(po *cli.ProjectOptions) string {
	if o.ValidationCache == "" || o.SkipValidation {
		return ""
	}
	key := validationKey(po)
	if key == "" {
		return ""
	}
	marker := filepath.Join(o.ValidationCache, key)
	if _, err := os.Stat(marker); err == nil {
		cli.WithLoadOptions(func(lo *loader.Options) { lo.SkipValidation = true })(po)
		warnObsoleteVersion(po.ConfigPaths)
		return ""
	}
	return marker
}

// topLevelVersion finds a version key at the top of a YAML file.
var topLevelVersion = regexp.MustCompile(`(?m)^["']?version["']?[ \t]*:`)

// warnObsoleteVersion warns about a top-level version key, as the loader
// does when it validates (and only then): docker compose says it at every
// command, so a load whose validation is skipped says it too.
func warnObsoleteVersion(files []string) {
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && topLevelVersion.Match(b) {
			logrus.Warning(fmt.Sprintf("%s: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion", f))
		}
	}
}

// rememberValid records a validated combination; failing to is no error.
func rememberValid(marker string) {
	if marker == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(marker), 0o700); err == nil {
		os.WriteFile(marker, nil, 0o600)
	}
}
