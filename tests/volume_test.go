package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/tests/offline"
)

// TestVolumes: a named volume keeps its data across down and up and is
// filled from the image at its first use; down -v removes it; a bind
// mount shows the host's files (read-only when asked); each replica gets
// its own anonymous volume; an external volume must exist.
func TestVolumes(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "greeting"), []byte("hello from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, `
name: vols
services:
  app:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes:
      - data:/data
      - etc:/etc
      - home:/home/app
      - `+host+`:/host:ro
      - `+filepath.Join(host, "made")+`:/made
      - /scratch
    scale: 2
volumes:
  data:
  etc:
  home:
`)
	before := c.hostState()
	c.must("up", "-d")
	c.must("exec", "-T", "--index", "1", "app", "sh", "-c", "echo kept > /data/file; echo mine > /scratch/file")
	// The image's /etc, copied into the new volume.
	if out := c.must("exec", "-T", "app", "grep", "^root:", "/etc/passwd"); !strings.HasPrefix(out, "root:") {
		t.Errorf("copied /etc: %q", out)
	}
	// A new volume takes the owner and mode of the image's directory.
	if out := c.must("exec", "-T", "app", "stat", "-c", "%u:%g %a", "/home/app", "/etc"); out != "1000:1000 755\n0:0 755\n" {
		t.Errorf("owner and mode of new volumes: %q, want the image's", out)
	}
	if out := c.must("exec", "-T", "app", "cat", "/host/greeting"); out != "hello from the host\n" {
		t.Errorf("bind mount: %q", out)
	}
	if out, code := c.run("", "exec", "-T", "app", "touch", "/host/x"); code == 0 {
		t.Errorf("a read-only bind mount was written: %q", out)
	}
	if _, err := os.Stat(filepath.Join(host, "made")); err != nil {
		t.Errorf("the missing host directory was not made: %v", err)
	}
	// Replicas share named volumes, not anonymous ones.
	if out := c.must("exec", "-T", "--index", "2", "app", "cat", "/data/file"); out != "kept\n" {
		t.Errorf("replica 2 /data: %q", out)
	}
	if out, code := c.run("", "exec", "-T", "--index", "2", "app", "cat", "/scratch/file"); code == 0 {
		t.Errorf("replica 2 sees replica 1's anonymous volume: %q", out)
	}
	c.must("down")
	c.must("up", "-d")
	if out := c.must("exec", "-T", "--index", "1", "app", "cat", "/data/file", "/scratch/file"); out != "kept\nmine\n" {
		t.Errorf("after down and up: %q", out)
	}
	out := c.must("down", "-v")
	for _, want := range []string{"Volume vols_data  Removed", "Volume vols_etc  Removed"} {
		if !strings.Contains(out, want) {
			t.Errorf("down -v lacks %q:\n%s", want, out)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(c.root, "volumes"))
	for _, e := range entries {
		if e.Name() != ".lock" { // the manager's lock, not a volume
			t.Errorf("volume left: %s", e.Name())
		}
	}
	c.writeCompose("name: vols\nservices:\n  app:\n    image: busybox\n    volumes: [shared:/s]\nvolumes:\n  shared:\n    external: true\n")
	if out, code := c.run("", "up", "-d"); code == 0 || !strings.Contains(out, "declared as external, but could not be found") {
		t.Errorf("missing external volume: %d\n%s", code, out)
	}
	c.checkClean(before)
}

// TestPostgresExample: the README's walkthrough on examples/postgres-dev,
// with the offline postgres image: up --wait (health-gated), a row
// written, down, up, the row still there; the client finds the database
// by name; after down -v and up the row is gone; down -v leaves nothing.
func TestPostgresExample(t *testing.T) {
	c := newCLI(t, "")
	archive, err := offline.Archive("postgres")
	if err != nil {
		t.Fatal(err)
	}
	c.must("load", "-i", archive)
	example, err := filepath.Abs("../examples/postgres-dev")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = example
	c.environ = append(c.environ, "DB_PORT=15439")
	before := c.hostState()
	c.must("up", "-d", "--wait")
	if e := c.ps()["postgres-dev-db-1"]; e.Health != "healthy" {
		t.Fatalf("db: %+v", e)
	}
	c.must("exec", "-T", "db", "psql", "-U", "app", "-d", "app", "-c", "create table t (x int); insert into t values (42)")
	c.must("down")
	c.must("up", "-d", "--wait")
	if out := c.must("exec", "-T", "db", "psql", "-U", "app", "-d", "app", "-tAc", "select x from t"); out != "42\n" {
		t.Errorf("after down and up: %q", out)
	}
	if out := c.must("run", "--rm", "-T", "client", "psql", "-tAc", "select count(*) from t"); !strings.HasSuffix(out, "1\n") {
		t.Errorf("client: %q", out)
	}
	// down -v takes the data with it: the next up starts a new database.
	c.must("down", "-v")
	c.must("up", "-d", "--wait")
	if out, code := c.run("", "exec", "-T", "db", "psql", "-U", "app", "-d", "app", "-tAc", "select x from t"); code == 0 || !strings.Contains(out, `relation "t" does not exist`) {
		t.Errorf("after down -v and up: %d %q", code, out)
	}
	c.must("down", "-v")
	c.checkClean(before)
}
