package tests

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	tokenValue    = "tok-6f1c2b9e-value"  // the secret from the environment
	passwordValue = "pw-0a7d4e11-content" // the secret from a file
)

// TestSecrets: secrets and configs as a user checks them from inside the
// container — contents, owner and mode as the file asks (docker compose
// ignores them outside Swarm), from a file outside the project, from a
// variable and from inline content, at default, relative and absolute
// targets — read-only, there after a restart, recreated when they change;
// their values nowhere in berth's output or state; nothing left after
// down.
func TestSecrets(t *testing.T) {
	outside := t.TempDir() // kept outside the project, as secrets usually are
	password := filepath.Join(outside, "db_password.txt")
	if err := os.WriteFile(password, []byte(passwordValue), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, `
name: secrets
services:
  app:
    image: busybox
    command: ["sleep", "1000"]
    init: true # sleep stops at once
    read_only: true
    secrets:
      - db_password
      - source: api_token
        target: token
        uid: "1000"
        gid: "1001"
        mode: 0400
      - source: db_password
        target: /etc/db/password
        gid: "1001"
        mode: 0440
    configs:
      - app_conf
      - source: site_conf
        target: /etc/site/site.conf
        uid: "101"
        mode: 0604
secrets:
  db_password:
    file: `+password+`
  api_token:
    environment: API_TOKEN
configs:
  app_conf:
    content: |
      mode=${APP_MODE}
  site_conf:
    file: ./site.conf
`)
	if err := os.WriteFile(filepath.Join(c.dir, "site.conf"), []byte("listen 8080\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.environ = append(c.environ, "API_TOKEN="+tokenValue, "APP_MODE=test")
	before := c.hostState()
	outputs := []string{c.must("up", "-d")}

	files := func() string {
		t.Helper()
		return c.must("exec", "-T", "app", "sh", "-c",
			`for f in /run/secrets/db_password /run/secrets/token /etc/db/password /app_conf /etc/site/site.conf; do echo "$f $(stat -c '%u %g %a' $f) $(cat $f)"; done`)
	}
	want := strings.Join([]string{
		"/run/secrets/db_password 0 0 444 " + passwordValue,
		"/run/secrets/token 1000 1001 400 " + tokenValue,
		"/etc/db/password 0 1001 440 " + passwordValue,
		"/app_conf 0 0 444 mode=test",
		"/etc/site/site.conf 101 0 604 listen 8080",
	}, "\n") + "\n"
	if got := files(); got != want {
		t.Errorf("from inside the container:\n%s\nwant:\n%s", got, want)
	}
	// Owner and mode hold: uid 1000 reads its secret, another user cannot.
	if out := c.must("exec", "-T", "-u", "1000", "app", "cat", "/run/secrets/token"); out != tokenValue {
		t.Errorf("uid 1000 reads %q", out)
	}
	if out, code := c.run("", "exec", "-T", "-u", "1002", "app", "cat", "/run/secrets/token"); code == 0 || strings.Contains(out, tokenValue) {
		t.Errorf("uid 1002 read a 0400 secret of uid 1000: %q", out)
	}
	if out, code := c.run("", "exec", "-T", "app", "sh", "-c", "echo x > /run/secrets/token"); code == 0 {
		t.Errorf("root in the container wrote a secret: %q", out)
	}
	// On the host, only root reads them.
	dirs, _ := filepath.Glob(filepath.Join(c.root, "containers", "*", "secrets"))
	if len(dirs) != 1 {
		t.Fatalf("secrets directories: %v", dirs)
	}
	if fi, err := os.Stat(dirs[0]); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the secrets directory: %v %v, want 0700", fi, err)
	}

	// Restarts keep them; an unchanged project recreates nothing.
	c.must("restart")
	c.must("stop")
	c.must("start")
	if got := files(); got != want {
		t.Errorf("after restart, stop and start:\n%s", got)
	}
	out := c.must("up", "-d")
	outputs = append(outputs, out)
	if strings.Contains(out, "Recreate") {
		t.Errorf("up -d with the same secrets recreated:\n%s", out)
	}
	// A changed file recreates the container, with the new content.
	if err := os.WriteFile(password, []byte(passwordValue+"-v2"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = c.must("up", "-d")
	outputs = append(outputs, out)
	if !strings.Contains(out, "Container secrets-app-1  Recreate") {
		t.Errorf("up -d after the secret file changed:\n%s", out)
	}
	if out := c.must("exec", "-T", "app", "cat", "/etc/db/password"); out != passwordValue+"-v2" {
		t.Errorf("after the change: %q", out)
	}

	// The values are in no output of berth: logs, ps, config (which shows
	// the file's path and the variable's name, as docker compose's does).
	outputs = append(outputs, c.must("logs"), c.must("ps", "-a", "--format", "json"), c.must("ps", "-a"))
	config := c.must("config")
	if !strings.Contains(config, "environment: API_TOKEN") || !strings.Contains(config, password) {
		t.Errorf("config:\n%s", config)
	}
	outputs = append(outputs, config, c.must("config", "--format", "json"), c.must("config", "--no-interpolate"))
	for _, o := range outputs {
		if strings.Contains(o, tokenValue) || strings.Contains(o, passwordValue) {
			t.Errorf("a secret in berth's output:\n%s", o)
		}
	}
	// Nor in berth's state and logs, but for the container's own copies.
	for _, dir := range []string{c.root, c.runDir} {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && (d.Name() == "rootfs" || d.Name() == "secrets" && filepath.Base(filepath.Dir(filepath.Dir(path))) == "containers") {
				return filepath.SkipDir
			}
			if !d.Type().IsRegular() {
				return nil
			}
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(tokenValue)) || bytes.Contains(b, []byte(passwordValue)) {
				t.Errorf("a secret in %s", path)
			}
			return nil
		})
	}

	c.must("down")
	// The container names' directory stays, empty.
	if left, _ := filepath.Glob(filepath.Join(c.root, "containers", "*")); len(left) != 1 || filepath.Base(left[0]) != ".names" {
		t.Errorf("left after down: %v", left)
	}
	if names, _ := os.ReadDir(filepath.Join(c.root, "containers", ".names")); len(names) > 0 {
		t.Errorf("names left after down: %v", names)
	}
	c.checkClean(before)
}

// TestSecretsErrors: a missing secret file, an unset variable or an
// external secret fails up and run with the service, the key and the file
// or variable, before anything is created.
func TestSecretsErrors(t *testing.T) {
	c := newCLI(t, "")
	before := c.hostState()
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"missing file", "secrets:\n  pw:\n    file: ./missing.txt\n",
			[]string{`service "db"`, "secrets[0]", `secret "pw": not found: file ` + filepath.Join(c.dir, "missing.txt") + " does not exist", "hint: create the file"}},
		{"unset variable", "secrets:\n  pw:\n    environment: UNSET_SECRET_VAR\n",
			[]string{`service "db"`, "secrets[0]", `secret "pw": not found: environment variable UNSET_SECRET_VAR is not set`, "hint: set UNSET_SECRET_VAR"}},
		{"external", "secrets:\n  pw:\n    external: true\n",
			[]string{`service "db"`, "secrets[0]", `secret "pw": not implemented: external secrets are Swarm's`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// web is fine and comes first: nothing of it may be made either.
			c.writeCompose("name: bad\nservices:\n  web:\n    image: busybox\n    command: [sleep, '100']\n  db:\n    image: busybox\n    depends_on: [web]\n    secrets: [pw]\n" + tc.yaml)
			for _, args := range [][]string{{"up", "-d"}, {"run", "--rm", "-T", "db", "true"}} {
				out, code := c.run("", args...)
				if code == 0 {
					t.Errorf("%v succeeded:\n%s", args, out)
				}
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("%v: the error lacks %q:\n%s", args, w, out)
					}
				}
				if strings.Contains(out, "Created") || strings.Contains(out, "Creating") {
					t.Errorf("%v created something:\n%s", args, out)
				}
			}
			if left := c.containers(); len(left) != 0 {
				t.Errorf("containers left: %v", left)
			}
			if nets, _ := filepath.Glob(filepath.Join(c.root, "networks", "*")); len(nets) != 0 {
				t.Errorf("networks left: %v", nets)
			}
		})
	}
	c.checkClean(before)
}
