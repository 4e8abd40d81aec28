package project

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// FuzzLoad checks that no input crashes the loader, and that the canonical
// form of a project loads back into the same project (what `berth config`
// prints must be a valid compose file meaning the same thing).
func FuzzLoad(f *testing.F) {
	for _, pattern := range []string{"testdata/invalid/*/*.yaml", "../compose/testdata/config/*/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		first := filepath.Join(dir, "compose.yaml")
		if err := os.WriteFile(first, data, 0o644); err != nil {
			t.Fatal(err)
		}
		o := Options{Files: []string{first}, Name: "fuzz", Environ: []string{"PWD=" + dir}}
		p, err := Load(context.Background(), o)
		if errors.Is(err, errLoaderPanic) {
			t.Fatal(err)
		}
		if err != nil {
			return
		}
		canonical, err := p.MarshalYAML()
		if err != nil {
			t.Fatalf("rendering a loaded project: %v", err)
		}
		if dollarInKey(t, p) {
			// docker compose writes every $ of the canonical form as $$,
			// keys included, but never interpolates keys: such a project
			// does not read back the same, in docker compose as in berth,
			// whose output is byte-for-byte docker compose's.
			return
		}
		// A literal $ is written $$, as berth config does.
		canonical = bytes.ReplaceAll(canonical, []byte("$"), []byte("$$"))
		second := filepath.Join(dir, "canonical.yaml")
		if err := os.WriteFile(second, canonical, 0o644); err != nil {
			t.Fatal(err)
		}
		o.Files = []string{second}
		p2, err := Load(context.Background(), o)
		if err != nil {
			t.Fatalf("the canonical form does not load: %v\n%s", err, canonical)
		}
		again, err := p2.MarshalYAML()
		if err != nil {
			t.Fatal(err)
		}
		again = bytes.ReplaceAll(again, []byte("$"), []byte("$$"))
		if !bytes.Equal(canonical, again) {
			t.Fatalf("the canonical form changed on reload:\nfirst:\n%s\nsecond:\n%s", canonical, again)
		}
	})
}

// dollarInKey reports whether a mapping key of the project holds a $.
func dollarInKey(t *testing.T, p *types.Project) bool {
	b, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if strings.Contains(k, "$") || walk(c) {
					return true
				}
			}
		case []any:
			for _, c := range v {
				if walk(c) {
					return true
				}
			}
		}
		return false
	}
	return walk(doc)
}
