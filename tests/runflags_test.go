package tests

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/network/netspec"
)

// TestRunFlags: run's -v adds a bind mount (relative to the project),
// -p publishes a port for as long as the attached command runs (and gives
// it back after), --service-ports publishes the service's own ports on a
// detached one-off, and --use-aliases makes the one-off answer to the
// service's name on its network, which it does not otherwise.
func TestRunFlags(t *testing.T) {
	port1, err := netspec.FreePort(context.Background(), "tcp", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	port2, err := netspec.FreePort(context.Background(), "tcp", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, `
services:
  web:
    image: busybox
    init: true
    command: ["sh", "-c", "mkdir -p /w && echo $$HOSTNAME > /w/index.html && exec httpd -f -p 8080 -h /w"]
    ports: ["`+strconv.Itoa(port2)+`:8080"]
    networks:
      default:
        aliases: [www]
  client:
    image: busybox
    init: true
    profiles: [tools]
`)
	before := c.hostState()
	if err := os.WriteFile(filepath.Join(c.dir, "note"), []byte("from the project\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// -v, relative to the project directory; a missing directory is made.
	if out := c.must("run", "--rm", "-T", "-v", "./note:/x/note:ro", "-v", "./made:/made", "client", "cat", "/x/note"); out != "from the project\n" {
		t.Errorf("run -v: %q", out)
	}
	if fi, err := os.Stat(filepath.Join(c.dir, "made")); err != nil || !fi.IsDir() {
		t.Errorf("run -v did not make the missing directory: %v", err)
	}
	if out, code := c.run("", "run", "--rm", "-T", "-v", "./note:/x/note:ro", "client", "touch", "/x/note"); code == 0 {
		t.Errorf("a :ro run -v was written: %q", out)
	}

	// -p on an attached run: the port answers while it runs.
	cmd, _, stop := c.command("run", "--rm", "-T", "-p", strconv.Itoa(port1)+":8080", "web",
		"sh", "-c", "mkdir -p /w && echo attached > /w/index.html && httpd -p 8080 -h /w && sleep 4")
	defer stop()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if body := getUntil(t, "http://127.0.0.1:"+strconv.Itoa(port1)+"/index.html", 3*time.Second); body != "attached\n" {
		t.Errorf("run -p: %q", body)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run -p: %v: %s", err, out.String())
	}
	if l, err := net.Listen("tcp", ":"+strconv.Itoa(port1)); err != nil {
		t.Errorf("the port of run -p is still held after it ended: %v", err)
	} else {
		l.Close()
	}

	// --service-ports on a detached one-off; --use-aliases.
	c.must("run", "-d", "--service-ports", "--use-aliases", "--name", "webrun", "web")
	if body := getUntil(t, "http://127.0.0.1:"+strconv.Itoa(port2)+"/index.html", 5*time.Second); body == "" {
		t.Error("run --service-ports: no answer")
	}
	for _, name := range []string{"web", "www"} {
		if out, code := c.run("", "run", "--rm", "-T", "client", "timeout", "5", "wget", "-qO-", "http://"+name+":8080/index.html"); code != 0 || out == "" {
			t.Errorf("--use-aliases: %s: %d %q", name, code, out)
		}
	}
	c.must("rm", "-f", "-s")
	if out, code := c.run("", "run", "--rm", "--service-ports", "-p", "8080", "web", "true"); code == 0 || !strings.Contains(out, "--service-ports and --publish are incompatible") {
		t.Errorf("run --service-ports -p: %d %q", code, out)
	}
	// --volumes: docker compose's other spelling of -v.
	if out, code := c.run("", "run", "--rm", "-T", "--volumes", "./:/project:ro", "client", "ls", "/project"); code != 0 || !strings.Contains(out, "compose.yaml") {
		t.Errorf("run --volumes: %d %q", code, out)
	}
	if out, code := c.run("", "events", "nosuch"); code == 0 || !strings.Contains(out, "no such service: nosuch") {
		t.Errorf("events nosuch: %d %q", code, out)
	}
	c.must("run", "-d", "--name", "webrun2", "web")
	if out, code := c.run("", "run", "--rm", "-T", "client", "nslookup", "web"); code == 0 {
		t.Errorf("a one-off answers to its service's name without --use-aliases: %q", out)
	}
	// A port another program holds fails before anything is made.
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port1))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if out, code := c.run("", "run", "--rm", "-T", "--publish", strconv.Itoa(port1)+":8080", "client", "true"); code == 0 || !strings.Contains(out, "already in use") {
		t.Errorf("run -p on a taken port: %d %q", code, out)
	}
	if out, code := c.run("", "run", "--rm", "--publish", "nonsense:x", "client", "true"); code == 0 || !strings.Contains(out, "--publish") {
		t.Errorf("run --publish nonsense: %d %q", code, out)
	}
	c.must("down", "--remove-orphans")
	c.checkClean(before)
}

// getUntil asks url until it answers 200 or d passes; the body, or "".
func getUntil(t *testing.T, url string, d time.Duration) string {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(b)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ""
}
