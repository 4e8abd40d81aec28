package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/offline"
)

const snapshotProject = `
name: snap
services:
  db:
    image: postgres:15
    environment:
      POSTGRES_PASSWORD: secret
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U postgres"]
      interval: 200ms
      retries: 100
  files:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes:
      - files:/files
volumes:
  pgdata:
  files:
`

// TestSnapshots: a Postgres database with 100k rows saved while it runs
// (paused meanwhile), then rows added and a table dropped, then restored:
// exactly the saved rows, and Postgres starts again on them. Only the
// services named are saved; down and down -v keep snapshots, and a
// restore after down -v makes the volume again.
func TestSnapshots(t *testing.T) {
	c := newCLI(t, snapshotProject)
	archive, err := offline.Archive("postgres")
	if err != nil {
		t.Fatal(err)
	}
	c.must("load", "-i", archive)
	before := c.hostState()
	c.must("up", "-d", "--wait")
	psql := func(sql string) string {
		t.Helper()
		return c.must("exec", "-T", "db", "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc", sql)
	}
	psql("create table t (id int primary key, v text); insert into t select i, md5(i::text) from generate_series(1, 100000) i; create table keep (x int); insert into keep values (7)")
	c.must("exec", "-T", "files", "sh", "-c", "echo one > /files/f")

	c.must("snapshot", "save", "base", "db")
	if e := c.ps()["snap-db-1"]; e.State != "running" {
		t.Fatalf("db after save: %+v", e)
	}
	psql("insert into t select i, 'new' from generate_series(100001, 100500) i; drop table keep")
	c.must("exec", "-T", "files", "sh", "-c", "echo two > /files/f")
	if out, code := c.run("", "snapshot", "save", "base"); code == 0 || !strings.Contains(out, "exists") {
		t.Errorf("second save of base: %d %q", code, out)
	}
	if out, code := c.run("", "snapshot", "save", "../x"); code == 0 || !strings.Contains(out, "invalid snapshot name") {
		t.Errorf("save ../x: %d %q", code, out)
	}

	restoreStart := time.Now()
	c.must("snapshot", "restore", "base")
	t.Logf("restore took %v", time.Since(restoreStart))
	waitHealthy(t, c, "snap-db-1")
	if out := psql("select count(*), max(id) from t"); out != "100000|100000\n" {
		t.Errorf("rows after restore: %q", out)
	}
	if out := psql("select x from keep"); out != "7\n" {
		t.Errorf("dropped table after restore: %q", out)
	}
	// The data the restore replaced is freed by the supervisor, in the
	// background.
	trash := filepath.Join(c.root, "volumes", ".trash")
	eventually(t, 10*time.Second, "the replaced data freed", func() bool {
		entries, err := os.ReadDir(trash)
		return err == nil && len(entries) == 0
	})
	// files was not saved: untouched.
	if out := c.must("exec", "-T", "files", "cat", "/files/f"); out != "two\n" {
		t.Errorf("a volume of a service not saved changed: %q", out)
	}

	var listed struct {
		Name, Project string
		Volumes       []string
	}
	if err := json.Unmarshal([]byte(c.must("snapshot", "ls", "--format", "json")), &listed); err != nil || listed.Name != "base" ||
		strings.Join(listed.Volumes, ",") != "snap_pgdata" {
		t.Errorf("snapshot ls: %+v %v", listed, err)
	}

	// down -v removes the volume, not the snapshot; restore makes it.
	c.must("down", "-v")
	if out := c.must("snapshot", "ls", "-q"); out != "base\n" {
		t.Errorf("snapshots after down -v: %q", out)
	}
	c.must("snapshot", "restore", "base")
	c.must("up", "-d", "--wait", "db")
	if out := psql("select count(*) from t"); out != "100000\n" {
		t.Errorf("rows after down -v, restore, up: %q", out)
	}
	c.must("snapshot", "rm", "base")
	if out := c.must("snapshot", "ls", "-q"); out != "" {
		t.Errorf("snapshots after rm: %q", out)
	}
	eventually(t, 10*time.Second, "the removed snapshot freed", func() bool {
		entries, err := os.ReadDir(trash)
		return err == nil && len(entries) == 0
	})
	if out, code := c.run("", "snapshot", "restore", "base"); code == 0 || !strings.Contains(out, "no snapshot") {
		t.Errorf("restore of a removed snapshot: %d %q", code, out)
	}
	c.must("down", "-v")
	c.checkClean(before)
}

// waitHealthy waits for a container's health check to pass.
func waitHealthy(t *testing.T, c *cli, name string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if e := c.ps()[name]; e.Health == "healthy" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not healthy: %+v", name, c.ps()[name])
}
