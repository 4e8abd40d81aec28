package project

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/schema"
	"gopkg.in/yaml.v3"
)

// Error is a problem with a project's files, located as precisely as the
// loader allows: the file and line, the service and the key.
type Error struct {
	File    string // compose file, relative to the current directory when below it
	Line    int    // 1-based; 0 when unknown
	Service string // the service concerned, if any
	Key     string // the key concerned: dotted, below the service when there is one
	Err     error  // what is wrong
	Hint    string // what to do about it
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	switch {
	case e.Service != "" && e.Key != "":
		fmt.Fprintf(&b, "service %q: %s: ", e.Service, e.Key)
	case e.Service != "":
		fmt.Fprintf(&b, "service %q: ", e.Service)
	case e.Key != "":
		fmt.Fprintf(&b, "%s: ", e.Key)
	}
	b.WriteString(e.Err.Error())
	if e.Hint != "" {
		b.WriteString("\n  hint: ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// locate turns a loader error into an *Error naming the file, line, service
// and key, with a hint. compose-go reports most problems as text with a
// dotted path, a service name or the offending value; the rules below
// recognise each form, and the compose files' YAML trees give the line.
func (o Options) locate(err error, po *cli.ProjectOptions) error {
	var located *Error
	if errors.As(err, &located) {
		// berth's own checks know service and key but not the file.
		f := newFileSet(po)
		f.place(located, located.path())
		return located
	}
	f := newFileSet(po)
	msg := f.relativize(err.Error())
	for _, r := range rules() {
		m := r.re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		e, path := r.fn(f, m)
		if e.Err == nil {
			e.Err = errors.New(m[0])
		}
		e.Err = &wrapped{msg: e.Err.Error(), err: err}
		f.place(e, path)
		return e
	}
	e := &Error{Err: &wrapped{msg: msg, err: err}}
	if len(f.files) == 1 {
		e.File = f.files[0].name
	}
	return e
}

// wrapped keeps the loader's error for errors.Is/As under a clearer message.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// path is the dotted key path of an *Error made by berth's own checks.
func (e *Error) path() []string {
	var p []string
	if e.Service != "" {
		p = append(p, "services", e.Service)
	}
	if e.Key != "" {
		p = append(p, strings.Split(e.Key, ".")...)
	}
	return p
}

type rule struct {
	re *regexp.Regexp
	// fn returns the error (Err may be nil: the whole match is the message)
	// and the key path that locates it in the files.
	fn func(f *fileSet, m []string) (*Error, []string)
}

// rules are compiled on first use: every process of the binary, a
// container's init included, would pay for them at start.
var rules = sync.OnceValue(func() []rule {
	return []rule{
		{regexp.MustCompile(`(?s)cannot construct !!\w+ .* into cli\.named`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{File: f.firstNotMapping(), Line: 1, Err: errors.New("the file is not a YAML mapping"), Hint: "a compose file is a mapping with a services: key"}, nil
		}},
		{regexp.MustCompile(`^(?:failed to parse (\S+): )?yaml: (?:construct errors:\s*)?(?:line \d+: )?(?:yaml: )?document contains excessive aliasing`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{File: m[1], Err: errors.New("YAML aliases expand to too much data (an alias bomb?)"),
				Hint: "use fewer nested aliases (&anchor / *alias), or write the values out"}, nil
		}},
		{regexp.MustCompile(`^(?:failed to parse (\S+): )?yaml: construct errors:\s*line \d+: line (\d+): (mapping key ".*" already defined at line \d+)`), func(f *fileSet, m []string) (*Error, []string) {
			line, _ := strconv.Atoi(m[2])
			return &Error{File: m[1], Line: line, Err: errors.New(m[3]), Hint: "remove one of the two keys; use an override file to replace a value"}, nil
		}},
		{regexp.MustCompile(`(?s)^(?:failed to parse (\S+): )?(?:yaml: )?go-yaml (?:\w+ )?error in \w+ (?:\([^)]*\) )?at L(\d+)\.C\d+(?:-L(\d+)\.C\d+)?: (.*)`), func(f *fileSet, m []string) (*Error, []string) {
			// go.yaml.in/yaml/v4 marks the span of the problem; its end is where
			// the parser gave up, the line to look at.
			line := m[2]
			if m[3] != "" {
				line = m[3]
			}
			return f.syntaxError(m[1], "line "+line+": "+strings.TrimSpace(m[4])), nil
		}},
		{regexp.MustCompile(`(?s)^(?:failed to parse (\S+): )?yaml: (.*)`), func(f *fileSet, m []string) (*Error, []string) {
			return f.syntaxError(m[1], m[2]), nil
		}},
		{regexp.MustCompile(`(?s)^validating (\S+): (\S*) ?additional properties '(.*)' not allowed`), func(f *fileSet, m []string) (*Error, []string) {
			path := append(splitPath(m[2]), m[3])
			if m[2] == "services" {
				return &Error{File: m[1], Err: fmt.Errorf("invalid service name %q", m[3]),
					Hint: "service names may only contain letters, digits, '.', '_' and '-'"}, path
			}
			return unknownKey(m[1], path), path
		}},
		{regexp.MustCompile(`(?s)^validating (\S+): (\S+) false schema`), func(f *fileSet, m []string) (*Error, []string) {
			path := splitPath(m[2])
			return unknownKey(m[1], path), path
		}},
		{regexp.MustCompile(`(?s)^validating (\S+): (\S*) ?(.*)`), func(f *fileSet, m []string) (*Error, []string) {
			path := splitPath(m[2])
			return &Error{File: m[1], Err: errors.New(m[3]), Hint: "see the Compose Specification for the values this key takes"}, path
		}},
		{regexp.MustCompile(`(?s)^decoding failed due to the following error\(s\):\s*'([^']*)' (.*)`), func(f *fileSet, m []string) (*Error, []string) {
			path := splitPath(strings.NewReplacer("[", ".", "]", "").Replace(m[1]))
			msg := strings.SplitN(strings.TrimSpace(m[2]), "\n", 2)[0]
			return &Error{Err: errors.New(msg), Hint: valueHint(path)}, path
		}},
		{regexp.MustCompile(`(?s)^error while interpolating (\S+): required variable (\S+) is missing a value:? ?(.*)`), func(f *fileSet, m []string) (*Error, []string) {
			msg := fmt.Sprintf("required variable %s is not set", m[2])
			if m[3] != "" {
				msg += ": " + m[3]
			}
			return &Error{Err: errors.New(msg), Hint: fmt.Sprintf("set %s in the environment, in the project's .env file or in an --env-file", m[2])}, splitPath(m[1])
		}},
		{regexp.MustCompile(`(?s)^error while interpolating (\S+): failed to cast to expected type: (.*)`), func(f *fileSet, m []string) (*Error, []string) {
			path := splitPath(m[1])
			return &Error{Err: errors.New(strings.TrimPrefix(m[2], "strconv.Atoi: ")), Hint: valueHint(path)}, path
		}},
		{regexp.MustCompile(`(?s)^error while interpolating (\S+): (.*)`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{Err: errors.New(m[2])}, splitPath(m[1])
		}},
		{regexp.MustCompile(`(?s)^invalid interpolation format for (\S+?)\.?\n.*\n(.*)$`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{Err: fmt.Errorf("invalid interpolation in %q", m[2]),
				Hint: "close the ${...} expression, or write a literal $ as $$"}, splitPath(m[1])
		}},
		{regexp.MustCompile(`^(?i:invalid containerPort|invalid hostPort|invalid proto|invalid ip address|invalid port): (\S+)`), func(f *fileSet, m []string) (*Error, []string) {
			path := f.findValue([]string{"services", "*", "ports", "*"}, m[1])
			return &Error{Err: errors.New(m[0]), Hint: `write ports as "[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]", protocol tcp or udp`}, path
		}},
		{regexp.MustCompile(`^(?i:invalid ranges specified for container and host Ports): (\S+) and (\S+)`), func(f *fileSet, m []string) (*Error, []string) {
			path := f.findValue([]string{"services", "*", "ports", "*"}, m[2]+":"+m[1])
			return &Error{Err: fmt.Errorf("host port range %s and container port range %s differ in size", m[2], m[1]),
				Hint: "give both ranges the same number of ports, or publish a single container port on a host range"}, path
		}},
		{regexp.MustCompile(`^invalid spec: (.*): (too many colons|empty section between colons|invalid mode: .*)$`), func(f *fileSet, m []string) (*Error, []string) {
			path := f.findValue([]string{"services", "*", "volumes", "*"}, m[1])
			return &Error{Err: fmt.Errorf("invalid volume %q: %s", m[1], m[2]), Hint: `write volumes as "SOURCE:TARGET[:MODE]", MODE being ro, rw, z, Z or a propagation`}, path
		}},
		{regexp.MustCompile(`^service volume (\S+) is missing a mount target`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{Err: errors.New("volume has no target"), Hint: "add target: (the path inside the container)"},
				splitPath(strings.NewReplacer("[", "", "]", "").Replace(m[1]))
		}},
		{regexp.MustCompile(`^dependency cycle detected: (.*)$`), func(f *fileSet, m []string) (*Error, []string) {
			cycle := strings.Split(m[1], " -> ")
			cycle = rotateToSmallest(cycle[:len(cycle)-1])
			key := f.referringKey(cycle[0], cycle[1])
			return &Error{Service: cycle[0], Key: key, Err: fmt.Errorf("dependency cycle: %s", strings.Join(cycle, " -> ")),
				Hint: "remove one of these dependencies (depends_on, links, network_mode, ipc, pid or volumes_from) to break the cycle"}, []string{"services", cycle[0], key}
		}},
		{regexp.MustCompile(`^service "([^"]+)" depends on undefined service "([^"]+)"`), func(f *fileSet, m []string) (*Error, []string) {
			key := f.referringKey(m[1], m[2])
			e := &Error{Service: m[1], Key: key}
			if profiles, ok := f.disabledBy(m[2]); ok {
				e.Err = fmt.Errorf("service %q is disabled by its profiles", m[2])
				e.Hint = fmt.Sprintf("enable service %q with --profile %s", m[2], strings.Join(profiles, " or --profile "))
				if key == KeyDependsOn {
					e.Hint += ", or mark the dependency optional with required: false"
				}
			} else {
				e.Err = fmt.Errorf("service %q is not defined", m[2])
				e.Hint = fmt.Sprintf("define service %q under services, or remove it from %s", m[2], key)
			}
			return e, []string{"services", m[1], key}
		}},
		{regexp.MustCompile(`^service "([^"]+)" refers to undefined (network|volume|secret|config) (\S+?):`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{Service: m[1], Key: m[2] + "s", Err: fmt.Errorf("%s %q is not defined", m[2], m[3]),
				Hint: fmt.Sprintf("declare %q under the top-level %ss: key", m[3], m[2])}, []string{"services", m[1], m[2] + "s"}
		}},
		{regexp.MustCompile(`^service "([^"]+)" has neither an image nor a build context specified`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{Service: m[1], Err: errors.New("no image and no build context"), Hint: "add image: (or build:) to the service"}, []string{"services", m[1]}
		}},
		{regexp.MustCompile(`^services\.([^:]+): container name "([^"]+)" is already in use`), func(f *fileSet, m []string) (*Error, []string) {
			// The loader checks services in map order: report the first user by name.
			users := f.servicesWithValue("container_name", m[2])
			service := m[1]
			if len(users) > 0 {
				service = users[0]
			}
			quoted := make([]string, len(users))
			for i, u := range users {
				quoted[i] = strconv.Quote(u)
			}
			return &Error{Service: service, Key: "container_name", Err: fmt.Errorf("container name %q is used by services %s", m[2], strings.Join(quoted, " and ")),
				Hint: "container names are global on the host: give each service its own, or remove container_name"}, []string{"services", service, "container_name"}
		}},
		{regexp.MustCompile(`^env file (\S+) not found`), func(f *fileSet, m []string) (*Error, []string) {
			path := f.findValue([]string{"services", "*", "env_file"}, filepath.Base(m[1]))
			e := &Error{Err: fmt.Errorf("env file %s not found", m[1]), Hint: "create the file, or mark it optional: env_file: [{path: FILE, required: false}]"}
			return e, path
		}},
		{regexp.MustCompile(`^failed to read (\S+): line (\d+): (.*)`), func(f *fileSet, m []string) (*Error, []string) {
			line, _ := strconv.Atoi(m[2])
			return &Error{File: m[1], Line: line, Err: errors.New(m[3]), Hint: "env files hold one KEY=VALUE per line; quote values with spaces"}, nil
		}},
		{regexp.MustCompile(`(?s)^Circular reference:\s*(\S+) in (\S+)(.*)`), func(f *fileSet, m []string) (*Error, []string) {
			chain := []string{m[1]}
			for _, l := range regexp.MustCompile(`extends (\S+) in`).FindAllStringSubmatch(m[3], -1) {
				chain = append(chain, l[1])
			}
			chain = rotateToSmallest(chain[:len(chain)-1])
			return &Error{File: m[2], Service: chain[0], Key: "extends", Err: fmt.Errorf("extends cycle: %s", strings.Join(chain, " -> ")),
				Hint: "a service cannot extend itself, directly or through others"}, []string{"services", chain[0], "extends"}
		}},
		{regexp.MustCompile(`^cannot extend service "([^"]+)" in (\S+): service "([^"]+)" not found`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{File: m[2], Service: m[1], Key: "extends", Err: fmt.Errorf("service %q to extend is not defined", m[3]),
				Hint: "define it, or point extends.file at the file that defines it"}, []string{"services", m[1], "extends"}
		}},
		{regexp.MustCompile(`(?s)^include cycle detected:\s*(\S+)(.*)`), func(f *fileSet, m []string) (*Error, []string) {
			chain := []string{m[1]}
			for _, l := range regexp.MustCompile(`include (\S+)`).FindAllStringSubmatch(m[2], -1) {
				chain = append(chain, l[1])
			}
			return &Error{File: m[1], Key: "include", Err: fmt.Errorf("include cycle: %s", strings.Join(chain, " -> ")),
				Hint: "remove the include that leads back to a file already included"}, []string{"include"}
		}},
		{regexp.MustCompile(`^open (\S+): no such file or directory`), func(f *fileSet, m []string) (*Error, []string) {
			base := filepath.Base(m[1])
			if path := f.findValue([]string{"include", "*"}, base); path != nil {
				return &Error{Key: "include", Err: fmt.Errorf("included file %s not found", m[1]), Hint: "fix the path, or remove the include"}, path
			}
			if path := f.findValue([]string{"services", "*", "extends", "file"}, base); path != nil {
				return &Error{Err: fmt.Errorf("extended file %s not found", m[1]), Hint: "fix extends.file, relative to the file that names it"}, path
			}
			return &Error{Err: fmt.Errorf("%s not found", m[1])}, nil
		}},
		{regexp.MustCompile(`^empty compose file`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{File: f.firstEmpty(), Err: errors.New("the file is empty"), Hint: "a compose file needs at least a services: key"}, nil
		}},
		{regexp.MustCompile(`^(services|networks|volumes|secrets|configs) must be a mapping`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{Key: m[1], Err: errors.New("must be a mapping of names to definitions, not a list"),
				Hint: fmt.Sprintf("write %s as \"NAME:\" entries, each with its definition", m[1])}, []string{m[1]}
		}},
		{regexp.MustCompile(`^no such service: "?([^"\s]+)"?`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{Err: fmt.Errorf("no such service: %s", m[1]), Hint: "run `berth config --services` to list the project's services (a service with profiles needs --profile)"}, nil
		}},
		{regexp.MustCompile(`^invalid project name "([^"]*)"`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{Err: fmt.Errorf("invalid project name %q", m[1]),
				Hint: "project names use lowercase letters, digits, '-' and '_', and start with a letter or digit (-p, COMPOSE_PROJECT_NAME or name:)"}, nil
		}},
		{regexp.MustCompile(`^compose file "([^"]+)" (set by COMPOSE_FILE environment variable |found by default file discovery )?is invalid: (?:open|stat) \S+: no such file or directory`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{Err: fmt.Errorf("compose file %s %snot found", m[1], m[2]), Hint: "check the path given with -f or COMPOSE_FILE"}, nil
		}},
		{regexp.MustCompile(`^no configuration file provided: not found`), func(f *fileSet, m []string) (*Error, []string) {
			return &Error{Err: errors.New("no compose file found (compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml, here or in a parent directory)"),
				Hint: "create compose.yaml, or name one with -f FILE or COMPOSE_FILE"}, nil
		}},
	}
})

// unknownKey describes a key the schema does not allow, with the closest
// allowed one as a suggestion.
func unknownKey(file string, path []string) *Error {
	name := path[len(path)-1]
	e := &Error{File: file, Err: fmt.Errorf("unknown key %q", name)}
	if s := closestKey(name, schemaKeysAt(path[:len(path)-1])); s != "" {
		e.Hint = fmt.Sprintf("did you mean %q?", s)
	} else {
		e.Hint = "remove it, or check the Compose Specification for the keys allowed here (custom keys start with x-)"
	}
	return e
}

// closestKey returns the candidate closest to name, within two edits.
func closestKey(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, k := range candidates {
		if d := editDistance(name, k); d > 0 && (d < bestDist || d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	return best
}

// schemaKeysAt lists the keys the Compose Specification schema allows under
// path (such as services.web.healthcheck), following $ref, pattern
// properties, array items and oneOf/anyOf alternatives.
func schemaKeysAt(path []string) []string {
	var root map[string]any
	if err := json.Unmarshal([]byte(schema.Schema), &root); err != nil {
		return nil
	}
	nodes := alternatives(root, root)
	for _, el := range path {
		var next []map[string]any
		for _, n := range nodes {
			next = append(next, step(root, n, el)...)
		}
		nodes = next
	}
	var keys []string
	for _, n := range nodes {
		if props, ok := n["properties"].(map[string]any); ok {
			for k := range props {
				if !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// step returns the schema nodes that describe the value under el in n.
func step(root, n map[string]any, el string) []map[string]any {
	if props, ok := n["properties"].(map[string]any); ok {
		if c, ok := props[el].(map[string]any); ok {
			return alternatives(root, c)
		}
	}
	var out []map[string]any
	if pats, ok := n["patternProperties"].(map[string]any); ok {
		for _, c := range pats {
			if c, ok := c.(map[string]any); ok {
				out = append(out, alternatives(root, c)...)
			}
		}
	}
	if c, ok := n["additionalProperties"].(map[string]any); ok {
		out = append(out, alternatives(root, c)...)
	}
	if c, ok := n["items"].(map[string]any); ok {
		if _, err := strconv.Atoi(el); err == nil {
			out = append(out, alternatives(root, c)...)
		}
	}
	return out
}

// alternatives resolves $ref and expands oneOf/anyOf/allOf.
func alternatives(root, n map[string]any) []map[string]any {
	for depth := 0; depth < 10; depth++ {
		ref, ok := n["$ref"].(string)
		if !ok {
			break
		}
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		defs, _ := root["$defs"].(map[string]any)
		target, _ := defs[name].(map[string]any)
		if !ok || target == nil {
			return nil
		}
		n = target
	}
	out := []map[string]any{n}
	for _, k := range []string{"oneOf", "anyOf", "allOf"} {
		if alts, ok := n[k].([]any); ok {
			for _, a := range alts {
				if a, ok := a.(map[string]any); ok {
					out = append(out, alternatives(root, a)...)
				}
			}
		}
	}
	return out
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func valueHint(path []string) string {
	switch last := path[len(path)-1]; last {
	case "interval", "timeout", "start_period", "start_interval", "stop_grace_period":
		return `durations are written like "1m30s", "10s" or "500ms"`
	case "shm_size", "mem_limit", "mem_reservation", "memswap_limit", "memory", "size":
		return `sizes are written like "512m", "1g" or a number of bytes`
	case "soft", "hard", "nofile", "nproc":
		return "ulimits are integers"
	case "privileged", "init", "read_only", "tty", "stdin_open", "oom_kill_disable", "external", "internal", "attachable":
		return "use true or false"
	default:
		return fmt.Sprintf("see the Compose Specification for the values %s takes", last)
	}
}

// splitPath splits "services.web.ports.0" into its elements; a trailing
// "." (as in some loader messages) is ignored.
func splitPath(p string) []string {
	p = strings.Trim(p, ".")
	if p == "" {
		return nil
	}
	return strings.Split(p, ".")
}

// fileSet holds the project's compose files, parsed as YAML trees, to find
// where a key or a value is written.
type fileSet struct {
	cwd   string
	files []parsedFile
}

type parsedFile struct {
	name    string // as shown to the user
	path    string // absolute
	content []byte
	root    *yaml.Node // nil when the file does not parse
	err     error
}

func newFileSet(po *cli.ProjectOptions) *fileSet {
	f := &fileSet{}
	f.cwd, _ = os.Getwd()
	if po == nil {
		return f
	}
	for _, p := range po.ConfigPaths {
		if p == "-" {
			continue // stdin is consumed; its errors cannot be placed
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		content, err := os.ReadFile(abs)
		if err != nil {
			continue
		}
		pf := parsedFile{name: f.display(abs), path: abs, content: content}
		var doc yaml.Node
		if pf.err = yaml.Unmarshal(content, &doc); pf.err == nil && len(doc.Content) > 0 {
			pf.root = doc.Content[0]
		}
		f.files = append(f.files, pf)
	}
	return f
}

// display shows an absolute path relative to the current directory when it
// is below it, as the user most likely typed it.
func (f *fileSet) display(abs string) string {
	if f.cwd != "" {
		if rel, err := filepath.Rel(f.cwd, abs); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return abs
}

// relativize rewrites the absolute paths below the current directory in a
// loader message.
func (f *fileSet) relativize(msg string) string {
	if f.cwd == "" || f.cwd == "/" {
		return msg
	}
	return strings.ReplaceAll(msg, f.cwd+string(filepath.Separator), "")
}

// place fills in the file and line of e from path, searching the files from
// the last (overrides win) and keeping the deepest match.
func (f *fileSet) place(e *Error, path []string) {
	if len(path) >= 2 && path[0] == "services" {
		if e.Service == "" {
			e.Service = path[1]
		}
		if e.Key == "" && len(path) > 2 {
			e.Key = strings.Join(path[2:], ".")
		}
	} else if e.Key == "" && len(path) > 0 && e.Service == "" {
		e.Key = strings.Join(path, ".")
	}
	if e.File != "" {
		e.File = f.display(absIn(f.cwd, e.File))
		if e.Line == 0 {
			for _, pf := range f.files {
				if pf.name == e.File && pf.root != nil {
					e.Line, _ = lineOf(pf.root, path)
				}
			}
		}
		return
	}
	if len(path) == 0 {
		// Nothing to look up: the file is only certain when there is one.
		if len(f.files) == 1 {
			e.File = f.files[0].name
		}
		return
	}
	bestDepth := -1
	for i := len(f.files) - 1; i >= 0; i-- {
		pf := f.files[i]
		if pf.root == nil {
			continue
		}
		if line, depth := lineOf(pf.root, path); depth > bestDepth {
			bestDepth, e.File, e.Line = depth, pf.name, line
		}
	}
	if e.File == "" && len(f.files) == 1 {
		e.File = f.files[0].name
	}
}

func absIn(dir, p string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// lineOf returns the line of the deepest node of path present in root, and
// how many elements of path matched.
func lineOf(root *yaml.Node, path []string) (line, depth int) {
	n := root
	line = n.Line
	for _, el := range path {
		next := child(n, el)
		if next == nil {
			return line, depth
		}
		n, line, depth = next.value, next.line, depth+1
	}
	return line, depth
}

type located struct {
	value *yaml.Node
	line  int
}

// child returns the value under a mapping key, or a sequence element by
// index, following aliases, with the line of its key.
func child(n *yaml.Node, el string) *located {
	for n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) > 0 {
			n = n.Content[0]
		} else {
			return nil
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == el {
				return &located{n.Content[i+1], n.Content[i].Line}
			}
		}
	case yaml.SequenceNode:
		if i, err := strconv.Atoi(el); err == nil && i >= 0 && i < len(n.Content) {
			return &located{n.Content[i], n.Content[i].Line}
		}
	}
	return nil
}

// findValue returns the path of the first scalar under pattern ("*" matches
// any key or index) that contains value, searching the files from the last.
func (f *fileSet) findValue(pattern []string, value string) []string {
	for i := len(f.files) - 1; i >= 0; i-- {
		if f.files[i].root == nil {
			continue
		}
		if p := findIn(f.files[i].root, pattern, nil, value); p != nil {
			return p
		}
	}
	return nil
}

func findIn(n *yaml.Node, pattern, prefix []string, value string) []string {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if len(pattern) == 0 {
		return scalarContains(n, prefix, value)
	}
	el := pattern[0]
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; el == "*" || el == k {
				if p := findIn(n.Content[i+1], pattern[1:], append(slices.Clone(prefix), k), value); p != nil {
					return p
				}
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if idx := strconv.Itoa(i); el == "*" || el == idx {
				if p := findIn(c, pattern[1:], append(slices.Clone(prefix), idx), value); p != nil {
					return p
				}
			}
		}
	}
	return nil
}

// scalarContains finds value in n or below it (env_file may be a string, a
// list, or a list of mappings).
func scalarContains(n *yaml.Node, prefix []string, value string) []string {
	switch n.Kind {
	case yaml.ScalarNode:
		if strings.Contains(n.Value, value) {
			return prefix
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p := scalarContains(c, append(slices.Clone(prefix), strconv.Itoa(i)), value); p != nil {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if p := scalarContains(n.Content[i], prefix, value); p != nil {
				return p
			}
		}
	}
	return nil
}

// referringKey returns which key of service names target.
func (f *fileSet) referringKey(service, target string) string {
	for _, key := range []string{KeyDependsOn, KeyLinks, KeyNetworkMode, KeyIPC, KeyPID, KeyVolumesFrom} {
		for i := len(f.files) - 1; i >= 0; i-- {
			root := f.files[i].root
			if root == nil {
				continue
			}
			c := child(root, "services")
			if c == nil {
				continue
			}
			s := child(c.value, service)
			if s == nil {
				continue
			}
			if k := child(s.value, key); k != nil && mentions(k.value, target) {
				return key
			}
		}
	}
	return KeyDependsOn
}

// mentions reports whether a key's value names target as a service.
func mentions(n *yaml.Node, target string) bool {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		v := strings.TrimPrefix(n.Value, "service:")
		name, _, _ := strings.Cut(v, ":")
		return name == target
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if mentions(c, target) {
				return true
			}
		}
	case yaml.MappingNode:
		for i := 0; i < len(n.Content); i += 2 {
			if n.Content[i].Value == target {
				return true
			}
		}
	}
	return false
}

// disabledBy returns the profiles of service when the files define it with
// profiles (it exists, but no active profile enables it).
func (f *fileSet) disabledBy(service string) ([]string, bool) {
	for _, pf := range f.files {
		if pf.root == nil {
			continue
		}
		c := child(pf.root, "services")
		if c == nil {
			continue
		}
		s := child(c.value, service)
		if s == nil {
			continue
		}
		p := child(s.value, "profiles")
		if p == nil || p.value.Kind != yaml.SequenceNode {
			continue
		}
		var profiles []string
		for _, n := range p.value.Content {
			profiles = append(profiles, n.Value)
		}
		return profiles, len(profiles) > 0
	}
	return nil, false
}

// servicesWithValue lists, sorted, the services whose key has value.
func (f *fileSet) servicesWithValue(key, value string) []string {
	set := map[string]bool{}
	for _, pf := range f.files {
		if pf.root == nil {
			continue
		}
		c := child(pf.root, "services")
		if c == nil || c.value.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(c.value.Content); i += 2 {
			if k := child(c.value.Content[i+1], key); k != nil && k.value.Value == value {
				set[c.value.Content[i].Value] = true
			}
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// syntaxError reports a YAML syntax error. The loader's message has the
// precise line (its last "line N") but not always the file: the file is the
// first one that does not parse.
func (f *fileSet) syntaxError(named, msg string) *Error {
	e := &Error{File: named, Err: errors.New("invalid YAML"), Hint: "check the indentation (spaces only) and the quotes around this line"}
	if e.File == "" {
		for _, pf := range f.files {
			if pf.err != nil {
				e.File = pf.name
				break
			}
		}
	}
	marks := regexp.MustCompile(`line (\d+)(?:, column \d+)?: `).FindAllStringSubmatchIndex(msg, -1)
	if len(marks) > 0 {
		last := marks[len(marks)-1]
		e.Line, _ = strconv.Atoi(msg[last[2]:last[3]])
		e.Err = fmt.Errorf("invalid YAML: %s", strings.TrimSpace(msg[last[1]:]))
	}
	if strings.Contains(msg, "cannot start any token") {
		e.Hint = "YAML indentation must use spaces, not tabs"
	}
	return e
}

func (f *fileSet) firstEmpty() string {
	for _, pf := range f.files {
		if strings.TrimSpace(string(pf.content)) == "" {
			return pf.name
		}
	}
	return ""
}

func (f *fileSet) firstNotMapping() string {
	for _, pf := range f.files {
		if pf.root != nil && pf.root.Kind != yaml.MappingNode {
			return pf.name
		}
	}
	return ""
}
