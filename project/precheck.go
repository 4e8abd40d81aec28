package project

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// maxExpandedNodes bounds the size of a compose file once its YAML aliases
// are expanded. Real projects stay far below (the largest of 213 real-world
// projects checked, sentry's self-hosted with heavy use of anchors, expands
// to under 8 thousand nodes); an "alias bomb" of a
// few hundred bytes expands to billions and would exhaust memory in the
// loader, which expands aliases while it decodes (docker compose v5.7.0 is
// killed by the kernel on such a file).
const maxExpandedNodes = 1_000_000

// checkFiles checks what the loader cannot be trusted with, before it reads
// the compose files and the files they reach through include and
// extends.file: a document that is not a mapping (compose-go crashes on a
// lone `!reset`), empty values it crashes on, and aliases that expand
// beyond maxExpandedNodes. The count
// is linear in the file: the expanded size of each anchored node is computed
// once.
func checkFiles(files []string) error {
	seen := map[string]bool{}
	var check func(path string) error
	check = func(path string) error {
		if seen[path] || len(seen) > 1000 {
			return nil
		}
		seen[path] = true
		content, err := os.ReadFile(path)
		if err != nil {
			return nil // the loader reports unreadable files with more context
		}
		var doc yaml.Node
		if yaml.Unmarshal(content, &doc) != nil {
			return nil // and syntax errors
		}
		if len(doc.Content) > 0 && doc.Content[0].Kind != yaml.MappingNode {
			return &Error{File: path, Line: doc.Content[0].Line, Err: errors.New("the file is not a YAML mapping"),
				Hint: "a compose file is a mapping with a services: key"}
		}
		if err := checkNulls(path, doc.Content); err != nil {
			return err
		}
		if line, ok := expandsWithin(&doc, maxExpandedNodes); !ok {
			return &Error{File: path, Line: line,
				Err:  fmt.Errorf("YAML aliases expand to more than %d values (an alias bomb?)", maxExpandedNodes),
				Hint: "use fewer nested aliases (&anchor / *alias), or write the values out"}
		}
		dir := filepath.Dir(path)
		for _, ref := range referencedFiles(&doc) {
			if !filepath.IsAbs(ref) {
				ref = filepath.Join(dir, ref)
			}
			if err := check(ref); err != nil {
				return err
			}
		}
		return nil
	}
	for _, f := range files {
		if f == "-" {
			continue // stdin is read once, by the loader
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			continue
		}
		if err := check(abs); err != nil {
			return err
		}
	}
	return nil
}

// expandsWithin reports whether n, aliases expanded, has at most limit
// nodes; when not, it returns the line of the alias that crossed it.
func expandsWithin(n *yaml.Node, limit int) (int, bool) {
	memo := map[*yaml.Node]int{}
	onStack := map[*yaml.Node]bool{}
	var size func(*yaml.Node) (int, int)
	size = func(n *yaml.Node) (int, int) {
		if v, ok := memo[n]; ok {
			return v, 0
		}
		if onStack[n] {
			return limit + 1, n.Line // an alias inside its own anchor
		}
		onStack[n] = true
		defer delete(onStack, n)
		total := 1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			s, line := size(n.Alias)
			if s > limit && line == 0 {
				line = n.Line
			}
			memo[n] = s
			return s, line
		}
		for _, c := range n.Content {
			s, line := size(c)
			total += s
			if total > limit {
				if line == 0 {
					line = c.Line
				}
				return total, line
			}
		}
		memo[n] = total
		return total, 0
	}
	s, line := size(n)
	return line, s <= limit
}

// checkNulls refuses the empty values compose-go v2.16.2's normaliser
// crashes on (it asserts they are strings; docker compose v5.7.0 panics on
// `pid:` left empty): the shared namespaces and volumes_from entries.
func checkNulls(path string, docs []*yaml.Node) error {
	if len(docs) == 0 {
		return nil
	}
	services := child(docs[0], "services")
	if services == nil || services.value.Kind != yaml.MappingNode {
		return nil
	}
	isNull := func(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }
	for i := 0; i+1 < len(services.value.Content); i += 2 {
		name, svc := services.value.Content[i].Value, services.value.Content[i+1]
		for _, key := range []string{KeyNetworkMode, KeyIPC, KeyPID, "uts", "cgroup"} {
			if v := child(svc, key); v != nil && isNull(v.value) {
				return &Error{File: path, Line: v.line, Service: name, Key: key, Err: errors.New("empty value"),
					Hint: "give it a value (such as host or service:NAME), or remove the key"}
			}
		}
		if v := child(svc, KeyVolumesFrom); v != nil && v.value.Kind == yaml.SequenceNode {
			for j, item := range v.value.Content {
				if isNull(item) {
					return &Error{File: path, Line: item.Line, Service: name, Key: fmt.Sprintf("%s.%d", KeyVolumesFrom, j), Err: errors.New("empty value"),
						Hint: "name a service or container:NAME, or remove the entry"}
				}
			}
		}
	}
	return nil
}

// referencedFiles lists the local files a compose file includes or extends.
func referencedFiles(doc *yaml.Node) []string {
	var refs []string
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	scalars := func(n *yaml.Node) {
		switch n.Kind {
		case yaml.ScalarNode:
			refs = append(refs, n.Value)
		case yaml.SequenceNode:
			for _, c := range n.Content {
				if c.Kind == yaml.ScalarNode {
					refs = append(refs, c.Value)
				}
			}
		}
	}
	if inc := child(root, "include"); inc != nil && inc.value.Kind == yaml.SequenceNode {
		for _, e := range inc.value.Content {
			if e.Kind == yaml.ScalarNode {
				refs = append(refs, e.Value)
			} else if p := child(e, "path"); p != nil {
				scalars(p.value)
			}
		}
	}
	if svcs := child(root, "services"); svcs != nil && svcs.value.Kind == yaml.MappingNode {
		for i := 1; i < len(svcs.value.Content); i += 2 {
			if ext := child(svcs.value.Content[i], "extends"); ext != nil {
				if f := child(ext.value, "file"); f != nil && f.value.Kind == yaml.ScalarNode {
					refs = append(refs, f.value.Value)
				}
			}
		}
	}
	return refs
}
