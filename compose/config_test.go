package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/project"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestConfigGolden renders each project under testdata/config as berth
// config does (YAML, JSON, --hash, --services) and compares with golden
// files, in which the project's directory reads <dir>. The golden files were
// checked equal to docker compose v5.7.0's output for the same projects.
func TestConfigGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/config/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Chdir(abs)
			ctx := context.Background()
			lo := project.Options{Environ: []string{}}

			yaml, err := Config(ctx, lo, FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			jsonOut, err := Config(ctx, lo, FormatJSON)
			if err != nil {
				t.Fatal(err)
			}
			hashes, err := Hashes(ctx, lo, nil)
			if err != nil {
				t.Fatal(err)
			}
			// A service whose configuration holds an absolute path of the
			// project (a bind mount, a build context) hashes differently in
			// every checkout: its golden line says so, and the hash is
			// checked stable across loads instead.
			again, err := Hashes(ctx, lo, nil)
			if err != nil {
				t.Fatal(err)
			}
			var h bytes.Buffer
			for i, sh := range hashes {
				if again[i] != sh {
					t.Errorf("hash of %s changed between two loads: %s, then %s", sh.Service, sh.Hash, again[i].Hash)
				}
				if dependsOnDir(t, ctx, lo, sh.Service, abs) {
					sh.Hash = "<depends on the project directory>"
				}
				fmt.Fprintf(&h, "%s %s\n", sh.Service, sh.Hash)
			}
			services, err := Services(ctx, lo)
			if err != nil {
				t.Fatal(err)
			}
			for name, got := range map[string][]byte{
				"config.yaml.golden": yaml,
				"config.json.golden": jsonOut,
				"hash.golden":        h.Bytes(),
				"services.golden":    []byte(strings.Join(services, "\n") + "\n"),
			} {
				got = bytes.ReplaceAll(got, []byte(abs), []byte("<dir>"))
				golden(t, filepath.Join(abs, name), got)
			}

			// The canonical form loads back into the same project.
			canonical := filepath.Join(t.TempDir(), "canonical.yaml")
			if err := os.WriteFile(canonical, yaml, 0o644); err != nil {
				t.Fatal(err)
			}
			lo2 := project.Options{Environ: []string{}, Files: []string{canonical}, WorkingDir: abs}
			yaml2, err := Config(ctx, lo2, FormatYAML)
			if err != nil {
				t.Fatalf("the canonical form does not load: %v", err)
			}
			if !bytes.Equal(yaml, yaml2) {
				t.Errorf("the canonical form changed on reload:\n%s\nthen:\n%s", yaml, yaml2)
			}
		})
	}
}

// dependsOnDir reports whether the service's resolved configuration names
// the project directory.
func dependsOnDir(t *testing.T, ctx context.Context, lo project.Options, service, dir string) bool {
	t.Helper()
	lo.Services = []string{service}
	lo.ResolveEnvironment = true
	p, err := project.Load(ctx, lo)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p.Services[service])
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(dir))
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", filepath.Base(path), got, want)
	}
}

func TestConfigSelectsServicesAndProfiles(t *testing.T) {
	t.Chdir("testdata/config/profiles")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		lo   project.Options
		fn   func(context.Context, project.Options) ([]string, error)
		want string
	}{
		{"services, default profile", project.Options{}, Services, "app"},
		{"services, --profile debug", project.Options{Profiles: []string{"debug"}}, Services, "app debug docs"},
		{"services, COMPOSE_PROFILES", project.Options{Environ: []string{"COMPOSE_PROFILES=docs"}}, Services, "app docs"},
		{"profiles lists disabled ones too", project.Options{}, Profiles, "debug docs"},
		{"images of a selected service", project.Options{Profiles: []string{"docs"}, Services: []string{"docs"}}, Images, "busybox busybox"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.lo.Environ == nil {
				tc.lo.Environ = []string{}
			}
			got, err := tc.fn(ctx, tc.lo)
			if err != nil {
				t.Fatal(err)
			}
			if s := strings.Join(got, " "); s != tc.want {
				t.Errorf("%q, want %q", s, tc.want)
			}
		})
	}
}

func TestVariables(t *testing.T) {
	t.Chdir("testdata/config/interpolation")
	vars, err := Variables(context.Background(), project.Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteVariables(&b, vars, ""); err != nil {
		t.Fatal(err)
	}
	// Columns are padded to 20, like docker compose's table. Like docker
	// compose, variables of the top-level name: are not listed.
	want := "" +
		"NAME                REQUIRED            DEFAULT VALUE       ALTERNATE VALUE\n" +
		"FROM_DOTENV         false                                   \n" +
		"TAG                 false               1.36                \n" +
		"WHO                 false               world               \n"
	if b.String() != want {
		t.Errorf("variables table:\n%s\nwant:\n%s", b.String(), want)
	}
}
