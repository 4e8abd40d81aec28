package project

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// TestValidationCache: a project is remembered once it validated, for
// its exact files and the variables they name; an invalid one never is, and still
// fails; one that includes other files is not remembered.
func TestValidationCache(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(t.TempDir(), "validated")
	file := filepath.Join(dir, "compose.yaml")
	load := func(content string, environ ...string) error {
		t.Helper()
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(context.Background(), Options{Files: []string{file}, Environ: environ, ValidationCache: cache})
		return err
	}
	markers := func() int {
		entries, _ := os.ReadDir(cache)
		return len(entries)
	}
	valid := "name: p\nservices:\n  a:\n    image: busybox:${TAG:-1}\n"
	for i := range 2 {
		if err := load(valid); err != nil {
			t.Fatal(err)
		}
		if n := markers(); n != 1 {
			t.Fatalf("load %d: %d markers, want 1", i, n)
		}
	}
	if err := load(valid, "TAG=2"); err != nil || markers() != 2 {
		t.Fatalf("another environment: %v, %d markers", err, markers())
	}
	// Variables the file does not name change nothing it validates.
	if err := load(valid, "TAG=2", "_=/usr/bin/strace", "TERM=dumb"); err != nil || markers() != 2 {
		t.Fatalf("variables the file does not name: %v, %d markers", err, markers())
	}
	for i := range 2 {
		err := load("name: p\nservices:\n  a:\n    image: busybox\n    imagee: x\n")
		if err == nil || !strings.Contains(err.Error(), "imagee") {
			t.Fatalf("invalid project, load %d: %v", i, err)
		}
	}
	if markers() != 2 {
		t.Errorf("an invalid project was remembered")
	}
	inc := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(inc, []byte("services:\n  b:\n    image: busybox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := load("name: p\ninclude: [other.yaml]\nservices:\n  a:\n    image: busybox\n"); err != nil {
		t.Fatal(err)
	}
	if markers() != 2 {
		t.Errorf("a project with include was remembered")
	}
}

// TestValidationCacheVersionWarning: a top-level version is warned about
// at every load, as docker compose does, also when validation is skipped.
func TestValidationCacheVersionWarning(t *testing.T) {
	var out bytes.Buffer
	logrus.SetOutput(&out)
	t.Cleanup(func() { logrus.SetOutput(os.Stderr) })
	dir := t.TempDir()
	cache := filepath.Join(t.TempDir(), "validated")
	file := filepath.Join(dir, "compose.yaml")
	for _, tc := range []struct {
		content string
		warn    bool
	}{
		{"version: \"3.8\"\nservices:\n  a:\n    image: busybox\n", true},
		{"services:\n  a:\n    image: busybox\n    labels: {version: \"1\"}\n", false},
	} {
		if err := os.WriteFile(file, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			out.Reset()
			if _, err := Load(context.Background(), Options{Files: []string{file}, ValidationCache: cache, Name: "p"}); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(out.String(), "the attribute `version` is obsolete"); got != tc.warn {
				t.Errorf("%q, load %d: warned %v, want %v:\n%s", tc.content, i, got, tc.warn, out.String())
			}
		}
	}
}
