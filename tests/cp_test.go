package tests

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestCp: `berth cp` as docker compose cp: a directory into a running
// container's volume (every replica, or --index), out again, its content
// with "/.", tar archives both ways, owners with -a, a stopped container;
// a container's links never take a copy outside it. `berth export`: a
// container's root filesystem as a tar archive, without its volumes.
func TestCp(t *testing.T) {
	c := newCLI(t, `
name: cp
services:
  web:
    image: busybox
    init: true
    command: ["sleep", "1000"]
    volumes: [data:/data]
    scale: 2
volumes:
  data:
`)
	before := c.hostState()
	c.must("up", "-d")
	fixtures := filepath.Join(c.dir, "fixtures")
	for name, content := range map[string]string{"a.txt": "one\n", "sub/b.txt": "two\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(fixtures, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(fixtures, name), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(fixtures, "a.txt"), 1000, 1000); err != nil {
		t.Fatal(err)
	}

	// Into every replica: the directory goes into /tmp; root owns it.
	if out := c.must("cp", "fixtures", "web:/tmp"); !strings.Contains(out, "Container cp-web-2  Copied") {
		t.Errorf("cp into the service:\n%s", out)
	}
	for _, i := range []string{"1", "2"} {
		if out := c.must("exec", "-T", "--index", i, "web", "sh", "-c", "cat /tmp/fixtures/a.txt /tmp/fixtures/sub/b.txt; stat -c '%u %a' /tmp/fixtures/a.txt"); out != "one\ntwo\n0 640\n" {
			t.Errorf("replica %s: %q", i, out)
		}
	}
	// -a keeps the owner; --index picks one replica; a volume is seen.
	c.must("cp", "-a", "--index", "2", "fixtures/a.txt", "web:/data/")
	if out := c.must("exec", "-T", "--index", "2", "web", "stat", "-c", "%u:%g", "/data/a.txt"); out != "1000:1000\n" {
		t.Errorf("-a: owner %q", out)
	}
	if _, code := c.run("", "exec", "-T", "--index", "1", "web", "test", "-e", "/data/a.txt"); code != 0 {
		// Both replicas share the named volume.
		t.Errorf("the volume's file not seen from replica 1")
	}

	// Out: a directory to a new name, then its content into it.
	c.must("cp", "web:/tmp/fixtures", "out")
	c.must("exec", "-T", "web", "sh", "-c", "echo three > /tmp/fixtures/c.txt")
	c.must("cp", "web:/tmp/fixtures/.", "out")
	if got := listTree(t, filepath.Join(c.dir, "out")); got != "a.txt=one\nc.txt=three\nsub/\nsub/b.txt=two" {
		t.Errorf("copied out:\n%s", got)
	}
	// A tar archive out, named after the source; and one in.
	cmd, _, stop := c.command("cp", "web:/tmp/fixtures/sub", "-")
	defer stop()
	var tarOut, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &tarOut, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cp to -: %v\n%s", err, stderr.String())
	}
	if names := tarNames(t, tarOut.String()); names != "sub/ sub/b.txt" {
		t.Errorf("tar out: %q", names)
	}
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	tw.WriteHeader(&tar.Header{Name: "from-tar.txt", Mode: 0o644, Size: 4})
	tw.Write([]byte("tar\n"))
	tw.Close()
	if out, code := c.run(in.String(), "cp", "-", "web:/tmp"); code != 0 {
		t.Fatalf("cp - into: %s", out)
	}
	for _, i := range []string{"1", "2"} {
		if out := c.must("exec", "-T", "--index", i, "web", "cat", "/tmp/from-tar.txt"); out != "tar\n" {
			t.Errorf("replica %s: from the archive %q", i, out)
		}
	}

	// The container's links resolve inside it: into /data/up/x is its
	// own /x, out of a link to a host path its own file.
	c.must("exec", "-T", "web", "sh", "-c", "ln -s ../../../.. /data/up; ln -s "+c.dir+"/fixtures/a.txt /data/hostfile")
	c.must("cp", "fixtures/a.txt", "web:/data/up/x")
	if out := c.must("exec", "-T", "--index", "1", "web", "cat", "/x"); out != "one\n" {
		t.Errorf("through a climbing link: %q", out)
	}
	if _, err := os.Stat("/x"); err == nil {
		t.Errorf("written on the host's /x")
	}
	if out, code := c.run("", "cp", "-L", "web:/data/hostfile", "-"); code == 0 {
		t.Errorf("a link to a host path copied the host's file:\n%s", out)
	}

	// A stopped container: its root filesystem.
	c.must("stop", "web")
	c.must("cp", "fixtures/a.txt", "web:/stopped.txt")
	// Not into its volume, which it does not show then.
	if out, code := c.run("", "cp", "fixtures/a.txt", "web:/data/while-stopped.txt"); code == 0 || !strings.Contains(out, "is not running, and /data/while-stopped.txt is in its mount /data") {
		t.Errorf("into a stopped container's volume: %d %q", code, out)
	}
	c.must("start", "web")
	if out := c.must("exec", "-T", "web", "cat", "/stopped.txt"); out != "one\n" {
		t.Errorf("copied while stopped: %q", out)
	}

	// Mistakes say what is wrong.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cp", "nosuch:/x", "."}, "no such service: nosuch"},
		{[]string{"cp", "a", "b"}, "one of the paths must be SERVICE:PATH"},
		{[]string{"cp", "web:/a", "web:/b"}, "copying between services is not supported"},
		{[]string{"cp", "web:/nosuch", "."}, "no such file or directory"},
		{[]string{"cp", "fixtures", "web:/tmp/fixtures/a.txt"}, "cannot copy a directory to a file"},
		{[]string{"cp", "fixtures/a.txt", "web:/nodir/"}, "does not exist"},
		{[]string{"cp", "--index", "3", "web:/x", "."}, "no container #3"},
	} {
		if out, code := c.run("", tc.args...); code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, %q; want %q", tc.args, code, out, tc.want)
		}
	}
	// export: a container's root filesystem, its changes in, its volumes
	// and its mounts' content out.
	cmd, _, stop = c.command("export", "web")
	defer stop()
	var exported bytes.Buffer
	stderr.Reset()
	cmd.Stdout, cmd.Stderr = &exported, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr.String())
	}
	names := " " + tarNames(t, exported.String()) + " "
	for _, want := range []string{" tmp/fixtures/a.txt ", " stopped.txt ", " data/ ", " proc/ "} {
		if !strings.Contains(names, want) {
			t.Errorf("export: no %q", want)
		}
	}
	for _, unwanted := range []string{" data/a.txt ", " proc/1/"} {
		if strings.Contains(names, unwanted) {
			t.Errorf("export: %q is a volume's or a mount's", unwanted)
		}
	}
	c.must("export", "--index", "2", "-o", "web2.tar", "web")
	if b, err := os.ReadFile(filepath.Join(c.dir, "web2.tar")); err != nil || !strings.Contains(" "+tarNames(t, string(b))+" ", " tmp/from-tar.txt ") {
		t.Errorf("export -o: %v", err)
	}
	if out, code := c.run("", "export", "--index", "3", "web"); code == 0 || !strings.Contains(out, "no container #3") {
		t.Errorf("export --index 3: %d %q", code, out)
	}
	c.must("down", "-v")
	c.checkClean(before)
}

// listTree lists dir's files with their content, directories with "/".
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() {
			lines = append(lines, rel+"/")
			return nil
		}
		b, _ := os.ReadFile(p)
		lines = append(lines, rel+"="+strings.TrimSpace(string(b)))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func tarNames(t *testing.T, archive string) string {
	t.Helper()
	var names []string
	tr := tar.NewReader(strings.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not a tar archive: %v", err)
		}
		names = append(names, hdr.Name)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}
