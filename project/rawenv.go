package project

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/compose-spec/compose-go/v2/dotenv"
)

// registerFormats adds the env_file formats docker compose knows beyond
// compose-go's own. compose-go keeps them in a package map without a lock,
// so berth registers once, before its first load.
var registerFormats = sync.OnceFunc(func() {
	dotenv.RegisterFormat("raw", parseRawEnv)
})

// parseRawEnv reads an env_file with `format: raw`, the `docker run
// --env-file` syntax: one KEY=VALUE per line, the value taken as written
// (no quotes, no interpolation, trailing spaces kept); a bare KEY takes its
// value from the environment and is left out when unset; # starts a comment
// line.
func parseRawEnv(r io.Reader, filename string, vars map[string]string, lookup func(string) (string, bool)) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		b := sc.Bytes()
		if !utf8.Valid(b) {
			return fmt.Errorf("failed to read %s: line %d: invalid UTF-8", filename, n)
		}
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
		}
		line := strings.TrimLeftFunc(string(b), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, hasValue := strings.Cut(line, "=")
		if key == "" {
			return fmt.Errorf("failed to read %s: line %d: no variable name", filename, n)
		}
		if strings.IndexFunc(key, unicode.IsSpace) >= 0 {
			return fmt.Errorf("failed to read %s: line %d: variable %q contains whitespace", filename, n, key)
		}
		if hasValue {
			vars[key] = value
		} else if lookup != nil {
			if v, ok := lookup(key); ok {
				vars[key] = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("failed to read %s: %w", filename, err)
	}
	return nil
}
