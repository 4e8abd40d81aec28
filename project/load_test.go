package project

import (
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestInvalidProjects loads every project under testdata/invalid and checks
// the exact error (error.golden), that it comes fast, and that loading
// wrote nothing.
func TestInvalidProjects(t *testing.T) {
	dirs, err := filepath.Glob("testdata/invalid/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 40 {
		t.Fatalf("the corpus has %d projects, want at least 40", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(abs, "error.golden")
			t.Chdir(abs)
			before := snapshot(t, abs)

			start := time.Now()
			_, err = Load(context.Background(), Options{Environ: []string{}, ResolveEnvironment: true, CheckContainerNames: true})
			elapsed := time.Since(start)

			if err == nil {
				t.Fatal("loading succeeded, want an error")
			}
			if elapsed > time.Second {
				t.Errorf("loading took %v, want under a second", elapsed)
			}
			if *update {
				if err := os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				before = snapshot(t, abs)
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("reading the expected error: %v (run go test -update)", rerr)
			}
			if got := err.Error() + "\n"; got != string(want) {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
			if after := snapshot(t, abs); after != before {
				t.Errorf("loading changed the project directory:\nbefore: %s\nafter:  %s", before, after)
			}
		})
	}
}

// snapshot lists a directory tree with sizes and modification times.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b.WriteString(path + " " + info.ModTime().String() + " " + info.Mode().String() + "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestLoadLocatesErrorsInOverrideFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "compose.yaml", "services:\n  web:\n    image: busybox\n")
	write(t, dir, "compose.override.yaml", "services:\n  web:\n    depends_on: [db]\n")
	t.Chdir(dir)
	_, err := Load(context.Background(), Options{Environ: []string{}})
	want := "compose.override.yaml:3: service \"web\": depends_on: service \"db\" is not defined\n" +
		"  hint: define service \"db\" under services, or remove it from depends_on"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestLoadProjectName(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string
		opts    Options
		environ []string
		want    string
	}{
		{"directory", "services: {a: {image: busybox}}", Options{}, nil, "my_app-1"},
		{"top-level name", "name: named\nservices: {a: {image: busybox}}", Options{}, nil, "named"},
		{"environment wins over name:", "name: named\nservices: {a: {image: busybox}}", Options{}, []string{"COMPOSE_PROJECT_NAME=fromenv"}, "fromenv"},
		{"flag wins over all", "name: named\nservices: {a: {image: busybox}}", Options{Name: "flag"}, []string{"COMPOSE_PROJECT_NAME=fromenv"}, "flag"},
		{"normalised", "name: \"My Project!\"\nservices: {a: {image: busybox}}", Options{}, nil, "myproject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "My_App-1")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			write(t, dir, "compose.yaml", tc.file)
			t.Chdir(dir)
			tc.opts.Environ = append([]string{}, tc.environ...)
			p, err := Load(context.Background(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != tc.want {
				t.Errorf("name %q, want %q", p.Name, tc.want)
			}
		})
	}
}

func TestLoadFindsFilesInParentsAndComposeFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "docker-compose.yml", "services: {a: {image: busybox}}")
	write(t, dir, "docker-compose.override.yml", "services: {b: {image: busybox}}")
	write(t, dir, "other.yaml", "services: {c: {image: busybox}}")
	sub := filepath.Join(dir, "sub", "deeper")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	p, err := Load(context.Background(), Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.ServiceNames(), ","); got != "a,b" {
		t.Errorf("services %s, want a,b (the file and its override, found in a parent)", got)
	}
	p, err = Load(context.Background(), Options{Environ: []string{"COMPOSE_FILE=" + filepath.Join(dir, "docker-compose.yml") + ":" + filepath.Join(dir, "other.yaml")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.ServiceNames(), ","); got != "a,c" {
		t.Errorf("services %s, want a,c (COMPOSE_FILE, no override)", got)
	}
}

func TestLoadNoFile(t *testing.T) {
	t.Chdir(t.TempDir())
	_, err := Load(context.Background(), Options{Environ: []string{}})
	if err == nil || !strings.Contains(err.Error(), "no compose file found") {
		t.Fatalf("error %v, want one saying no compose file was found", err)
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRawEnvFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "compose.yaml", "services:\n  a:\n    image: busybox\n    env_file: [{path: raw.env, format: raw}]\n")
	write(t, dir, "raw.env", "\xEF\xBB\xBF# comment\nQUOTED=\"kept\" \n  SPACED=a b\nFROM_ENV\nUNSET\nDOLLAR=$HOME\n")
	t.Chdir(dir)
	p, err := Load(context.Background(), Options{Environ: []string{"FROM_ENV=host"}, ResolveEnvironment: true})
	if err != nil {
		t.Fatal(err)
	}
	env := p.Services["a"].Environment
	want := map[string]string{"QUOTED": `"kept" `, "SPACED": "a b", "FROM_ENV": "host", "DOLLAR": "$HOME"}
	for k, v := range want {
		if env[k] == nil || *env[k] != v {
			t.Errorf("%s = %v, want %q", k, env[k], v)
		}
	}
	if _, ok := env["UNSET"]; ok {
		t.Error("UNSET, a bare key not in the environment, was set")
	}
	write(t, dir, "raw.env", "BAD KEY=1\n")
	if _, err := Load(context.Background(), Options{Environ: []string{}, ResolveEnvironment: true}); err == nil || !strings.Contains(err.Error(), `raw.env:1: variable "BAD KEY" contains whitespace`) {
		t.Errorf("error %v", err)
	}
}

// An alias bomb fails fast with bounded memory, also when it is reached
// through include or extends.file.
func TestAliasBombThroughIncludeAndExtends(t *testing.T) {
	bomb, err := os.ReadFile("testdata/invalid/alias-bomb/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, main := range map[string]string{
		"include": "include: [sub/bomb.yaml]\nservices: {a: {image: busybox}}\n",
		"extends": "services:\n  a:\n    extends: {file: sub/bomb.yaml, service: web}\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			write(t, dir, "compose.yaml", main)
			write(t, filepath.Join(dir, "sub"), "bomb.yaml", string(bomb))
			t.Chdir(dir)
			start := time.Now()
			_, err := Load(context.Background(), Options{Environ: []string{}})
			if time.Since(start) > time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if err == nil || !strings.HasPrefix(err.Error(), "sub/bomb.yaml:7: YAML aliases expand to more than 1000000 values") {
				t.Errorf("error %v", err)
			}
		})
	}
}
