package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// berth runs a command line in dir and returns its exit code and outputs.
func berth(t *testing.T, dir string, environ []string, args ...string) (int, string, string) {
	t.Helper()
	if dir != "" {
		t.Chdir(dir)
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, streams{in: strings.NewReader(""), out: &out, err: &errOut}, environ)
	return code, out.String(), errOut.String()
}

func TestHelpListsCommands(t *testing.T) {
	code, out, _ := berth(t, "", nil, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"config      Parse, resolve and render compose file", "version     Show the berth version", "--project-name", "--env-file", "--parallel"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

func TestUnknownCommandSuggests(t *testing.T) {
	code, _, errOut := berth(t, "", nil, "confg")
	if code != 1 || !strings.Contains(errOut, "Did you mean this?\n\tconfig") {
		t.Errorf("exit %d, stderr %q: want 1 and a suggestion of config", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	for args, want := range map[string]string{
		"version":                 "berth version v",
		"version --short":         "0.",
		"version --format json":   `{"version":"v`,
		"-f nonexistent version":  "berth version v",
		"version --format pretty": "berth version v",
	} {
		code, out, errOut := berth(t, "", []string{"COMPOSE_FILE=/nonexistent"}, strings.Fields(args)...)
		if code != 0 || !strings.HasPrefix(out, want) {
			t.Errorf("%s: exit %d, %q %q; want output starting %q", args, code, out, errOut, want)
		}
	}
}

func TestGlobalFlagValues(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services: {a: {image: busybox}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args    []string
		environ []string
		err     string
	}{
		{[]string{"--ansi", "sometimes", "config", "-q"}, nil, `invalid --ansi value "sometimes"`},
		{[]string{"--progress", "fancy", "config", "-q"}, nil, `invalid --progress value "fancy"`},
		{[]string{"--progress", "tty", "--ansi", "never", "config", "-q"}, nil, "can't use --progress tty while ANSI support is disabled"},
		{[]string{"--parallel", "0", "config", "-q"}, nil, "invalid --parallel value 0"},
		{[]string{"config", "-q"}, []string{"COMPOSE_PARALLEL_LIMIT=many"}, `COMPOSE_PARALLEL_LIMIT must be an integer (found: "many")`},
		{[]string{"config", "--format", "toml"}, nil, `unsupported format "toml"`},
		{[]string{"config", "-q"}, []string{"COMPOSE_ANSI=never", "COMPOSE_PROGRESS=plain", "COMPOSE_PARALLEL_LIMIT=4"}, ""},
	} {
		code, _, errOut := berth(t, dir, tc.environ, tc.args...)
		if tc.err == "" {
			if code != 0 {
				t.Errorf("%v: exit %d: %s", tc.args, code, errOut)
			}
			continue
		}
		if code != 1 || !strings.Contains(errOut, tc.err) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", tc.args, code, errOut, tc.err)
		}
	}
}

func TestConfigCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("compose.yaml", "services:\n  web: {image: \"busybox:${TAG:-1}\", depends_on: [db]}\n  db: {image: postgres}\n")
	write("prod.env", "TAG=2\n")

	code, out, errOut := berth(t, dir, []string{}, "config")
	if code != 0 || !strings.Contains(out, "image: busybox:1\n") {
		t.Fatalf("config: exit %d, %s%s", code, out, errOut)
	}
	code, out, _ = berth(t, dir, []string{}, "--env-file", "prod.env", "config", "--images")
	if code != 0 || out != "postgres\nbusybox:2\n" {
		t.Errorf("--env-file with --images: exit %d, %q", code, out)
	}
	code, out, _ = berth(t, dir, []string{"COMPOSE_ENV_FILES=prod.env"}, "config", "--services")
	if code != 0 || out != "db\nweb\n" {
		t.Errorf("--services: exit %d, %q (want dependencies first)", code, out)
	}
	code, out, _ = berth(t, dir, []string{}, "config", "-q")
	if code != 0 || out != "" {
		t.Errorf("-q: exit %d, %q", code, out)
	}
	code, out, _ = berth(t, dir, []string{}, "-p", "other", "config", "-o", "out.yaml")
	if code != 0 || out != "" {
		t.Errorf("-o: exit %d, %q", code, out)
	}
	written, err := os.ReadFile(filepath.Join(dir, "out.yaml"))
	if err != nil || !strings.HasPrefix(string(written), "name: other\n") {
		t.Errorf("-o wrote %q, %v", written, err)
	}
	code, _, errOut = berth(t, dir, []string{}, "config", "--hash", "nope")
	if code != 1 || !strings.Contains(errOut, "nope") {
		t.Errorf("--hash of an unknown service: exit %d, %q", code, errOut)
	}
	code, out, _ = berth(t, dir, []string{}, "-f", "compose.yaml", "config", "--hash", "web")
	if code != 0 || !strings.HasPrefix(out, "web ") || len(out) != len("web ")+64+1 {
		t.Errorf("--hash web: exit %d, %q", code, out)
	}
}

func TestConfigErrorWritesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  web:\n    image: busybox\n    depends_on: [db]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := berth(t, dir, []string{}, "config", "-o", "out.yaml")
	want := "compose.yaml:4: service \"web\": depends_on: service \"db\" is not defined\n  hint: define service \"db\" under services, or remove it from depends_on\n"
	if code != 1 || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the failed command left files: %v", entries)
	}
}

func TestCommandShorthands(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rm -f", "rm --force"},
		{"rm -fs web", "rm --force -s web"},
		{"rm -sf", "rm --force -s"},
		{"-f a.yaml rm -s", "-f a.yaml rm -s"},
		{"config -f a.yaml", "config -f a.yaml"},
		{"run --rm app rm -f x", "run --rm app rm -f x"},
		{"rm -- -f", "rm -- -f"},
		{"run -p 8080:80 app", "run --publish 8080:80 app"},
		{"-p proj run -e A=1 -p 1:2 --name n app ls -p", "-p proj run -e A=1 --publish 1:2 --name n app ls -p"},
		{"run -d -T app ls -p", "run -d -T app ls -p"},
		{"volume rm -f a b", "volume rm --force a b"},
		{"-p x volume prune -af", "-p x volume prune --force -a"},
		{"volume ls -f", "volume ls -f"},
		{"volume -f a.yaml ls", "volume -f a.yaml ls"},
	} {
		got := strings.Join(commandShorthands(strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCommandAt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"up -d", 0},
		{"-p web up -d", 2},
		{"--project-name web -f a.yaml --ansi never ps", 6},
		{"--profile x -f up up", 4}, // -f's value is a file named up
		{"-d", 1},
		{"", 0},
	} {
		args := strings.Fields(tc.in)
		if got := commandAt(args); got != tc.want {
			t.Errorf("commandAt(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
