package project

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
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
