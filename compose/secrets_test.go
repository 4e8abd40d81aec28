package compose

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/spec"
)

// TestServiceFiles: where each secret and config lands, from which source,
// with which owner and mode.
func TestServiceFiles(t *testing.T) {
	p, svc := loadService(t, `
services:
  app:
    image: example/app:1
    secrets:
      - db_password
      - source: token
        target: tok
        uid: "1000"
        gid: "2000"
        mode: 0400
      - source: token
        target: /etc/token
        uid: "1000"
      - source: empty
        target: sub/dir/empty
    configs:
      - app_conf
      - source: inline
        target: /etc/app/inline.conf
        mode: 0640
        gid: "70"
      - source: from_env
        target: rel.conf
        mode: "0600"
secrets:
  db_password:
    file: ./db_password.txt
  token:
    environment: TOKEN
  empty:
    environment: EMPTY
configs:
  app_conf:
    file: conf/app.conf
  inline:
    content: |
      port=${PORT}
  from_env:
    environment: CONF
`, []string{"TOKEN=t0ken", "EMPTY=", "CONF=from the environment", "PORT=8080"},
		map[string]string{"db_password.txt": "hunter2\n"})
	if err := os.Mkdir(filepath.Join(p.WorkingDir, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.WorkingDir, "conf", "app.conf"), []byte("a=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := serviceFiles(p, svc)
	if err != nil {
		t.Fatal(err)
	}
	want := []spec.File{
		{Target: "/run/secrets/db_password", Mode: 0o444, Content: spec.Content("hunter2\n")},
		{Target: "/run/secrets/tok", UID: 1000, GID: 2000, Mode: 0o400, Content: spec.Content("t0ken")},
		{Target: "/etc/token", UID: 1000, Mode: 0o444, Content: spec.Content("t0ken")},
		{Target: "/run/secrets/sub/dir/empty", Mode: 0o444, Content: spec.Content("")},
		{Target: "/app_conf", Mode: 0o444, Content: spec.Content("a=1\n")},
		{Target: "/etc/app/inline.conf", GID: 70, Mode: 0o640, Content: spec.Content("port=8080\n")},
		{Target: "/rel.conf", Mode: 0o600, Content: spec.Content("from the environment")},
	}
	if len(files) != len(want) {
		t.Fatalf("%d files, want %d: %+v", len(files), len(want), files)
	}
	for i, f := range files {
		w := want[i]
		if f.Target != w.Target || f.UID != w.UID || f.GID != w.GID || f.Mode != w.Mode || string(f.Content) != string(w.Content) {
			t.Errorf("file %d: %s %d:%d %v %q, want %s %d:%d %v %q", i, f.Target, f.UID, f.GID, f.Mode, f.Content, w.Target, w.UID, w.GID, w.Mode, w.Content)
		}
	}
}

// TestServiceFilesErrors: each problem is an error that names the
// service, the key, and the secret or config with its file or variable.
func TestServiceFilesErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		yaml     string // the service's secrets and configs, then the top level
		kind     error
		want     []string
		setup    func(p *types.Project)
		hintWant string
	}{
		{
			name: "missing secret file",
			yaml: "    secrets: [s]\nsecrets:\n  s:\n    file: ./missing.txt\n",
			kind: errdefs.ErrNotFound, want: []string{"secrets[0]", `secret "s": not found: file `, "missing.txt does not exist"},
			hintWant: "secrets.s.file",
		},
		{
			name: "missing config file",
			yaml: "    configs: [c]\nconfigs:\n  c:\n    file: ./nope.conf\n",
			kind: errdefs.ErrNotFound, want: []string{"configs[0]", `config "c"`, "nope.conf does not exist"},
		},
		{
			name: "secret file is a directory",
			yaml: "    secrets: [s]\nsecrets:\n  s:\n    file: ./dir\n",
			kind: errdefs.ErrInvalidArgument, want: []string{"secrets[0]", `secret "s"`, "dir is not a regular file"},
			setup: func(p *types.Project) { os.Mkdir(filepath.Join(p.WorkingDir, "dir"), 0o755) },
		},
		{
			name: "unset variable",
			yaml: "    configs: [ok]\n    secrets: [ok, s]\nsecrets:\n  ok:\n    environment: SET\n  s:\n    environment: UNSET_TOKEN\nconfigs:\n  ok:\n    content: x\n",
			kind: errdefs.ErrNotFound, want: []string{"secrets[1]", `secret "s": not found: environment variable UNSET_TOKEN is not set`},
			hintWant: "set UNSET_TOKEN",
		},
		{
			name: "unset variable of a config",
			yaml: "    configs: [c]\nconfigs:\n  c:\n    environment: UNSET_CONF\n",
			kind: errdefs.ErrNotFound, want: []string{"configs[0]", `config "c"`, "UNSET_CONF is not set"},
		},
		{
			name: "external secret",
			yaml: "    secrets: [s]\nsecrets:\n  s:\n    external: true\n",
			kind: errdefs.ErrNotImplemented, want: []string{"secrets[0]", `secret "s": not implemented: external secrets are Swarm's`},
		},
		{
			name: "external config",
			yaml: "    configs: [c]\nconfigs:\n  c:\n    external: true\n",
			kind: errdefs.ErrNotImplemented, want: []string{"configs[0]", `config "c": not implemented: external configs`},
		},
		{
			// The loader refuses it too; berth does not count on it.
			name: "no source",
			yaml: "    secrets: [s]\nsecrets:\n  s:\n    environment: SET\n",
			setup: func(p *types.Project) {
				s := p.Secrets["s"]
				s.Environment, s.Content = "", ""
				p.Secrets["s"] = s
			},
			kind: errdefs.ErrInvalidArgument, want: []string{"secrets[0]", `secret "s": invalid argument: none of file: or environment:`},
		},
		{
			name: "uid by name",
			yaml: "    secrets: [{source: s, uid: postgres}]\nsecrets:\n  s:\n    environment: SET\n",
			kind: errdefs.ErrInvalidArgument, want: []string{"secrets[0]", `uid "postgres": a numeric id`},
		},
		{
			name: "gid out of range",
			yaml: "    secrets: [{source: s, gid: \"4294967295\"}]\nsecrets:\n  s:\n    environment: SET\n",
			kind: errdefs.ErrInvalidArgument, want: []string{"secrets[0]", `gid "4294967295"`},
		},
		{
			name: "setuid mode",
			yaml: "    configs: [{source: c, mode: 04755}]\nconfigs:\n  c:\n    content: x\n",
			kind: errdefs.ErrInvalidArgument, want: []string{"configs[0]", "mode 04755: permission bits only"},
		},
		{
			name: "two files at one target",
			yaml: "    secrets: [{source: s, target: /etc/x}]\n    configs: [{source: c, target: /run/secrets/../../etc/x}]\nsecrets:\n  s:\n    environment: SET\nconfigs:\n  c:\n    content: x\n",
			kind: errdefs.ErrInvalidArgument, want: []string{"configs[0]", `config "c": invalid argument: target /etc/x is also secrets[0]'s`},
		},
		{
			name: "target /",
			yaml: "    configs: [{source: c, target: /}]\nconfigs:\n  c:\n    content: x\n",
			kind: errdefs.ErrInvalidArgument, want: []string{"configs[0]", `target "/"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, svc := loadService(t, "services:\n  app:\n    image: example/app:1\n"+tc.yaml, []string{"SET=1"}, nil)
			if tc.setup != nil {
				tc.setup(p)
			}
			_, err := serviceFiles(p, svc)
			checkError(t, err, tc.kind, tc.want...)
			if tc.hintWant != "" && (!strings.Contains(err.Error(), "hint: ") || !strings.Contains(err.Error(), tc.hintWant)) {
				t.Errorf("error %q: no hint with %q", err, tc.hintWant)
			}
			// up checks every service's before it creates anything.
			if _, err := projectFiles(p); err == nil {
				t.Error("projectFiles: no error")
			}
		})
	}
}

// A secret or config that is not declared: the loader says which, and a
// project changed after loading is still refused.
func TestServiceFilesUndeclared(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	os.WriteFile(file, []byte("name: proj\nservices:\n  app:\n    image: example/app:1\n    secrets: [nope]\n"), 0o644)
	_, err := project.Load(context.Background(), project.Options{Files: []string{file}, WorkingDir: dir, Environ: []string{}})
	if err == nil || !strings.Contains(err.Error(), `"app"`) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("loading: %v, want an error naming the service and the secret", err)
	}
	p, svc := loadService(t, "services:\n  app:\n    image: example/app:1\n    configs: [c]\nconfigs:\n  c:\n    content: x\n", nil, nil)
	delete(p.Configs, "c")
	_, err = serviceFiles(p, svc)
	checkError(t, err, errdefs.ErrNotFound, "configs[0]", `config "c": not found: not declared in the top-level configs`)
}

// The digest up compares changes with any content, owner or mode, and a
// service without files keeps docker compose's config hash.
func TestFilesHash(t *testing.T) {
	base := []spec.File{{Target: "/run/secrets/s", Mode: 0o444, Content: spec.Content("a")}}
	h := filesHash(base)
	for name, change := range map[string]func(*spec.File){
		"content": func(f *spec.File) { f.Content = spec.Content("b") },
		"uid":     func(f *spec.File) { f.UID = 1 },
		"gid":     func(f *spec.File) { f.GID = 1 },
		"mode":    func(f *spec.File) { f.Mode = 0o400 },
		"target":  func(f *spec.File) { f.Target = "/run/secrets/t" },
	} {
		f := base[0]
		change(&f)
		if filesHash([]spec.File{f}) == h {
			t.Errorf("a change of %s keeps the digest", name)
		}
	}
	if filesHash(nil) != "" || withFilesHash("abc", "") != "abc" {
		t.Error("a service without files changes its config hash")
	}
	if strings.Contains(withFilesHash("abc", h), "a\x00") {
		t.Error("the digest holds the content")
	}
	c := spec.Container{Labels: map[string]string{}}
	giveFiles(&c, base)
	if c.Labels[filesHashLabel] != h || len(c.Files) != 1 {
		t.Errorf("giveFiles: %v %v", c.Labels, c.Files)
	}
}

// berth config prints what docker compose prints: the file path of a
// secret, the variable's name, never its value.
func TestConfigHidesSecretValues(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(`
name: proj
services:
  app:
    image: example/app:1
    secrets: [tok]
    configs: [conf]
secrets:
  tok:
    environment: TOKEN
configs:
  conf:
    environment: CONF
`), 0o644)
	t.Chdir(dir)
	lo := project.Options{Environ: []string{"TOKEN=s3cr3t-value", "CONF=conf-value"}}
	for _, format := range []ConfigFormat{FormatYAML, FormatJSON} {
		out, err := Config(context.Background(), lo, format)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "s3cr3t-value") || strings.Contains(string(out), "conf-value") {
			t.Errorf("%s shows a value:\n%s", format, out)
		}
		if !strings.Contains(string(out), "TOKEN") {
			t.Errorf("%s lacks the variable's name:\n%s", format, out)
		}
	}
	no := lo
	no.NoInterpolate = true
	out, err := Config(context.Background(), no, FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cr3t-value") {
		t.Errorf("--no-interpolate shows the value:\n%s", out)
	}
}
