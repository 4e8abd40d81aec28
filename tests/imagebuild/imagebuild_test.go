package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-dev/berth/runtime/image"
)

// childArg makes the test binary the container's init: TestMain sees it
// before the testing package parses flags and turns the process into the
// image's entrypoint (see runChild). It is a re-exec rather than a shell
// script because the mounts must happen inside the new namespaces, after the
// fork and before the chroot.
const childArg = "imagebuild-container-child"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		err := runChild(os.Args[2:])
		fmt.Fprintln(os.Stderr, "imagebuild container:", err)
		os.Exit(127)
	}
	os.Exit(m.Run())
}

// TestImages builds the images and runs each as a container would: its file
// system unpacked from the tarball, its entrypoint in a chroot, in new mount
// and PID namespaces. Set IMAGEBUILD_OUT to build into (and reuse) a
// directory such as bin/images instead of a fresh temporary one.
func TestImages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: unpacks the images with their owners and runs them in chroots")
	}
	out, debs := os.Getenv("IMAGEBUILD_OUT"), ""
	if out == "" {
		out = t.TempDir()
		// The packages are the slow part of a cold build; keep them where
		// `go run ./tests/imagebuild` does.
		var err error
		if debs, err = filepath.Abs("../../bin/images/debs"); err != nil {
			t.Fatal(err)
		}
	} else {
		debs = filepath.Join(out, "debs")
	}
	b := &builder{out: out, debs: debs, logf: t.Logf}
	built := map[string]result{}
	err := b.build(t.Context(), specs(), func(r result) {
		built[r.name] = r
		t.Logf("%s: built=%v %.1f MB in %s", r.ref, r.built, float64(r.size)/1e6, r.took)
	})
	if err != nil {
		t.Fatal(err)
	}

	// The deny list keeps the packaging machinery and LLVM out.
	for _, r := range built {
		for _, p := range r.packages {
			for _, banned := range []string{"perl*", "debconf*", "dpkg", "libllvm*", "systemd", "locales*", "postgresql-common"} {
				if ok, _ := path.Match(banned, p.Name); ok {
					t.Errorf("%s contains %s", r.ref, p.Name)
				}
			}
		}
	}

	t.Run("busybox", func(t *testing.T) { testBusybox(t, built["busybox"]) })
	t.Run("redis", func(t *testing.T) { testRedis(t, built["redis"]) })
	t.Run("postgres", func(t *testing.T) { testPostgres(t, built["postgres"]) })
}

func testBusybox(t *testing.T, r result) {
	root, cfg := unpack(t, r)
	checkConfig(t, cfg, v1.Config{
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd: []string{"sh"},
	})
	if out := runOnce(t, root, cfg, nil, "sh", "-c", "echo ok"); out != "ok\n" {
		t.Errorf("sh -c 'echo ok' printed %q", out)
	}
	if out := runOnce(t, root, cfg, nil, "id", "app"); out != "uid=1000(app) gid=1000(app) groups=1000(app)\n" {
		t.Errorf("id app printed %q", out)
	}
	if fi, err := os.Stat(filepath.Join(root, "tmp")); err != nil || fi.Mode()&os.ModePerm != 0o777 || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("/tmp: %v, %v; want drwxrwxrwt", fi.Mode(), err)
	}
}

func testRedis(t *testing.T, r result) {
	root, cfg := unpack(t, r)
	checkConfig(t, cfg, v1.Config{
		Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Entrypoint:   []string{"docker-entrypoint.sh"},
		Cmd:          []string{"redis-server"},
		WorkingDir:   "/data",
		Volumes:      map[string]struct{}{"/data": {}},
		ExposedPorts: map[string]struct{}{"6379/tcp": {}},
	})
	if out := runOnce(t, root, cfg, nil, "redis-server", "--version"); !strings.HasPrefix(out, "Redis server v=7.") {
		t.Errorf("redis-server --version printed %q, want v=7.x", out)
	}

	// Options alone: the entrypoint must prepend redis-server, turn
	// protected mode off and drop to the redis user.
	port := freePort(t)
	c := start(t, root, cfg, nil, slices.Concat(cfg.Entrypoint, []string{"--port", port})...)
	addr := net.JoinHostPort("127.0.0.1", port)
	var conn net.Conn
	c.waitFor(t, 30*time.Second, func() (err error) {
		conn, err = net.DialTimeout("tcp", addr, time.Second)
		return err
	})
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	replies := bufio.NewReader(conn)
	for _, step := range []struct{ cmd, want string }{
		{"PING", "+PONG"},
		{"SET greeting hello", "+OK"},
		{"GET greeting", "$5"},
		{"", "hello"},
		{"CONFIG GET protected-mode", "*2"},
		{"", "$14"},
		{"", "protected-mode"},
		{"", "$2"},
		{"", "no"},
	} {
		if step.cmd != "" {
			if _, err := io.WriteString(conn, step.cmd+"\r\n"); err != nil {
				t.Fatal(err)
			}
		}
		line, err := replies.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v\n%s", step.cmd, err, c.output())
		}
		if got := strings.TrimRight(line, "\r\n"); got != step.want {
			t.Fatalf("redis replied %q, want %q", got, step.want)
		}
	}
	c.checkUID(t, 999)
	c.stop(t, syscall.SIGTERM)
}

func testPostgres(t *testing.T, r result) {
	root, cfg := unpack(t, r)
	checkConfig(t, cfg, v1.Config{
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/15/bin",
			"PG_MAJOR=15",
			"LANG=C.UTF-8",
			"PGDATA=/var/lib/postgresql/data",
		},
		Entrypoint:   []string{"docker-entrypoint.sh"},
		Cmd:          []string{"postgres"},
		StopSignal:   "SIGINT",
		Volumes:      map[string]struct{}{"/var/lib/postgresql/data": {}},
		ExposedPorts: map[string]struct{}{"5432/tcp": {}},
	})
	port := freePort(t)
	args := slices.Concat(cfg.Entrypoint, []string{"-p", port})

	// Without a password the entrypoint must refuse to initialise.
	c := start(t, root, cfg, nil, args...)
	if code := c.wait(t, 30*time.Second); code == 0 || !strings.Contains(c.output(), "superuser password is not specified") {
		t.Fatalf("without POSTGRES_PASSWORD: exit %d, want an error saying so:\n%s", code, c.output())
	}

	// Init scripts run against the temporary server: SQL through psql, and
	// a non-executable shell script sourced, so the entrypoint's functions
	// are there for it.
	initdb := filepath.Join(root, "docker-entrypoint-initdb.d")
	writeFile(t, filepath.Join(initdb, "01-schema.sql"), "CREATE TABLE seeded (source text);\nINSERT INTO seeded VALUES ('sql');\n")
	writeFile(t, filepath.Join(initdb, "02-more.sh"), `docker_process_sql -c "INSERT INTO seeded VALUES ('sourced sh')"`+"\n")

	const password = "s3cret 'quoted' pw"
	c = start(t, root, cfg, []string{"POSTGRES_PASSWORD=" + password}, args...)
	addr := net.JoinHostPort("127.0.0.1", port)
	var db *pgConn
	c.waitFor(t, 120*time.Second, func() (err error) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		db, err = pgConnect(ctx, addr, "postgres", password, "postgres")
		return err
	})
	defer db.close()
	c.checkUID(t, 999)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := pgConnect(ctx, addr, "postgres", "wrong", "postgres"); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("login with a wrong password over loopback: %v, want password authentication failed", err)
	}
	rows, err := db.query(ctx, `CREATE TABLE greetings (id int PRIMARY KEY, text text);
		INSERT INTO greetings VALUES (1, 'hello'), (2, 'wörld');
		SELECT text FROM greetings ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rows); got != "[[hello] [wörld]]" {
		t.Errorf("greetings: %s", got)
	}
	for _, q := range []struct{ sql, want string }{
		{"SELECT string_agg(source, ',' ORDER BY source) FROM seeded", "[[sourced sh,sql]]"},
		{"SHOW jit", "[[off]]"},
		{"SHOW server_encoding", "[[UTF8]]"},
		{"SHOW listen_addresses", "[[*]]"},
		{"SELECT now() AT TIME ZONE 'Europe/Berlin' IS NOT NULL", "[[t]]"},
	} {
		rows, err := db.query(ctx, q.sql)
		if err != nil {
			t.Errorf("%s: %v", q.sql, err)
		} else if got := fmt.Sprint(rows); got != q.want {
			t.Errorf("%s = %s, want %s", q.sql, got, q.want)
		}
	}
	c.stop(t, syscall.SIGINT) // the image's StopSignal: a fast shutdown
	if !strings.Contains(c.output(), "database system is shut down") {
		t.Errorf("postgres did not report a clean shutdown:\n%s", c.output())
	}
}

// unpack extracts the image's layers into a fresh directory and returns it
// with the image's configuration, flattened by mutate.Extract and unpacked
// by berth's own extractor.
func unpack(t *testing.T, r result) (string, v1.Config) {
	t.Helper()
	if r.path == "" {
		t.Fatal("the builder reported no such image")
	}
	img, err := tarball.ImageFromPath(r.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := image.Extract(context.Background(), rc, root); err != nil {
		t.Fatalf("unpacking %s: %v", r.path, err)
	}
	return root, cf.Config
}

func checkConfig(t *testing.T, got, want v1.Config) {
	t.Helper()
	if !slices.Equal(got.Env, want.Env) {
		t.Errorf("Env = %q, want %q", got.Env, want.Env)
	}
	if !slices.Equal(got.Cmd, want.Cmd) {
		t.Errorf("Cmd = %q, want %q", got.Cmd, want.Cmd)
	}
	if !slices.Equal(got.Entrypoint, want.Entrypoint) {
		t.Errorf("Entrypoint = %q, want %q", got.Entrypoint, want.Entrypoint)
	}
	if !maps.Equal(got.ExposedPorts, want.ExposedPorts) {
		t.Errorf("ExposedPorts = %v, want %v", got.ExposedPorts, want.ExposedPorts)
	}
	if !maps.Equal(got.Volumes, want.Volumes) {
		t.Errorf("Volumes = %v, want %v", got.Volumes, want.Volumes)
	}
	if got.StopSignal != want.StopSignal {
		t.Errorf("StopSignal = %q, want %q", got.StopSignal, want.StopSignal)
	}
	if got.WorkingDir != want.WorkingDir {
		t.Errorf("WorkingDir = %q, want %q", got.WorkingDir, want.WorkingDir)
	}
}

// container is an image's process running in a chroot of its file system,
// as PID 1 of a new PID namespace and in a new mount namespace. Its mounts
// (/dev, /proc) exist only in that namespace, so they go away with its last
// process, whatever state the test ends in: the cleanup kills the process,
// and with it the namespace.
type container struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // of Wait, once done is closed
}

// start runs argv (looked up in the image's PATH) in the image, with the
// image's environment plus env, in its working directory.
func start(t *testing.T, root string, cfg v1.Config, env []string, argv ...string) *container {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	workdir := cfg.WorkingDir
	if workdir == "" {
		workdir = "/"
	}
	cmd := exec.Command(self, append([]string{childArg, root, workdir, "--"}, argv...)...)
	cmd.Env = slices.Concat(cfg.Env, env)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
		Setpgid:    true,
		// Should the test binary die, the container dies with it.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %q: %v", argv, err)
	}
	c := &container{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			// SIGKILL to a namespace's init ends every process in it; the
			// group kill covers the moment before the init execs.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("output of %q:\n%s", argv, out.String())
		}
		checkNoMounts(t, root)
	})
	return c
}

// runOnce runs a command in the image to its end and returns its output.
func runOnce(t *testing.T, root string, cfg v1.Config, env []string, argv ...string) string {
	t.Helper()
	c := start(t, root, cfg, env, argv...)
	if code := c.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("%q exited with %d:\n%s", argv, code, c.output())
	}
	return c.output()
}

// wait waits for the container's process to exit and returns its exit code.
func (c *container) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		t.Fatalf("still running after %s:\n%s", timeout, c.output())
	}
	var exit *exec.ExitError
	if errors.As(c.err, &exit) {
		return exit.ExitCode()
	}
	if c.err != nil {
		t.Fatal(c.err)
	}
	return 0
}

// waitFor retries ready until it succeeds, failing the test if the
// container exits or the time runs out first.
func (c *container) waitFor(t *testing.T, timeout time.Duration, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case <-c.done:
			t.Fatalf("exited (%v) before it was ready (%v):\n%s", c.err, err, c.output())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after %s: %v\n%s", timeout, err, c.output())
		}
	}
}

// stop sends the image's stop signal and expects a clean exit.
func (c *container) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exited with %d after %v:\n%s", code, sig, c.output())
	}
}

// checkUID checks the user the container's main process runs as: the
// entrypoints start as root and must hand over to the service's user.
func (c *container) checkUID(t *testing.T, want int) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "Uid:" {
			if f[1] != strconv.Itoa(want) || f[2] != strconv.Itoa(want) {
				t.Errorf("main process runs as uid %s (effective %s), want %d", f[1], f[2], want)
			}
			return
		}
	}
	t.Errorf("no Uid line in /proc/%d/status", c.cmd.Process.Pid)
}

func (c *container) output() string { return c.out.String() }

// checkNoMounts fails the test if anything is mounted below root in the
// test's own mount namespace, and detaches it, so that removing the
// temporary directory can never reach into a bind-mounted /dev.
func checkNoMounts(t *testing.T, root string) {
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Error(err)
		return
	}
	for _, line := range strings.Split(string(info), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == root || strings.HasPrefix(f[4], root+"/")) {
			t.Errorf("%s is still mounted after the container ended", f[4])
			_ = syscall.Unmount(f[4], syscall.MNT_DETACH)
		}
	}
}

// runChild is the container's init, run by the test binary as PID 1 of new
// mount and PID namespaces (see start). Arguments: ROOT WORKDIR -- ARGV...
// It never returns on success: it becomes the image's process.
func runChild(args []string) error {
	if len(args) < 4 || args[2] != "--" {
		return fmt.Errorf("usage: %s ROOT WORKDIR -- ARGV...", childArg)
	}
	root, workdir, argv := args[0], args[1], args[3:]
	// The namespace starts with the host's mounts, shared: without this,
	// the mounts below would propagate back to the host.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	// A minimal /dev as container runtimes make it: a tmpfs with the usual
	// device nodes bound from the host, and shared memory for PostgreSQL.
	dev := filepath.Join(root, "dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount("tmpfs", dev, "tmpfs", syscall.MS_NOSUID|syscall.MS_NOEXEC, "mode=755"); err != nil {
		return fmt.Errorf("mounting %s: %w", dev, err)
	}
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		p := filepath.Join(dev, name)
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return err
		}
		if err := syscall.Mount("/dev/"+name, p, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding /dev/%s: %w", name, err)
		}
	}
	for _, l := range [][2]string{{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}} {
		if err := os.Symlink(l[1], filepath.Join(dev, l[0])); err != nil {
			return err
		}
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return err
	}
	if err := syscall.Mount("shm", shm, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, "mode=1777"); err != nil {
		return fmt.Errorf("mounting %s: %w", shm, err)
	}
	proc := filepath.Join(root, "proc")
	if err := os.MkdirAll(proc, 0o555); err != nil {
		return err
	}
	if err := syscall.Mount("proc", proc, "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting %s: %w", proc, err)
	}
	if err := syscall.Chroot(root); err != nil {
		return fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := os.Chdir(workdir); err != nil {
		return err
	}
	// After the chroot, so the image's PATH finds the image's programs.
	exe, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	return syscall.Exec(exe, argv, os.Environ())
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
