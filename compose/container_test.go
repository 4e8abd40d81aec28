package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/image"
	"github.com/berth-dev/berth/runtime/spec"
)

// loadService loads an inline compose file, as project "proj" in a fresh
// directory, and returns it with its service "app". files are written
// next to compose.yaml (env files, ...).
func loadService(t *testing.T, yaml string, environ []string, files map[string]string) (*types.Project, types.ServiceConfig) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte("name: proj\n"+yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if environ == nil {
		environ = []string{}
	}
	p, err := project.Load(context.Background(), project.Options{Files: []string{file}, WorkingDir: dir, Environ: environ})
	if err != nil {
		t.Fatalf("loading the project: %v", err)
	}
	svc, err := p.GetService("app")
	if err != nil {
		t.Fatal(err)
	}
	return p, svc
}

// testImage is an image with the given config, as the store returns it.
func testImage(cfg v1.Config) *image.Image {
	return &image.Image{
		Ref:    "example/app:1",
		Record: image.Record{Config: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}},
		Config: v1.ConfigFile{Config: cfg},
		Layers: []string{"/store/layers/sha256/1", "/store/layers/sha256/2"},
	}
}

// containerFor loads yaml and describes replica 1 of its service "app".
// appContainer is the container of a service "app" (image example/app:1,
// command run) with the YAML of service added to its keys. With errKind
// set it checks that the spec fails with that kind and errString, and
// returns false; otherwise a failure ends the test.
func appContainer(t *testing.T, service string, errKind error, errString string) (spec.Container, bool) {
	t.Helper()
	c, err := containerFor(t, "services:\n  app:\n    image: example/app:1\n    command: [run]\n    "+service+"\n", v1.Config{})
	if errKind != nil {
		checkError(t, err, errKind, errString)
		return c, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return c, true
}

func containerFor(t *testing.T, yaml string, cfg v1.Config) (spec.Container, error) {
	t.Helper()
	p, svc := loadService(t, yaml, nil, nil)
	return ContainerSpec(p, svc, 1, testImage(cfg), nil)
}

func mustContainer(t *testing.T, yaml string, cfg v1.Config) spec.Container {
	t.Helper()
	c, err := containerFor(t, yaml, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkError checks that err is of the errdefs kind and names the service
// and the key, with the rest of want.
func checkError(t *testing.T, err error, kind error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one with %q", want)
	}
	if !errors.Is(err, kind) {
		t.Errorf("error %q is not %v", err, kind)
	}
	for _, w := range append([]string{`service "app"`}, want...) {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestContainerSpecCommand(t *testing.T) {
	img := v1.Config{Entrypoint: []string{"/entry.sh"}, Cmd: []string{"serve", "--port", "80"}}
	for _, tc := range []struct {
		name    string
		service string
		image   v1.Config
		want    []string
		err     string
	}{
		{"image entrypoint and command", ``, img, []string{"/entry.sh", "serve", "--port", "80"}, ""},
		{"command replaces the image's command, keeps its entrypoint", `command: [migrate, up]`, img, []string{"/entry.sh", "migrate", "up"}, ""},
		{"shell form is split", `command: echo "hello world"`, img, []string{"/entry.sh", "echo", "hello world"}, ""},
		{"entrypoint drops the image's command", `entrypoint: [/bin/sh, -c]`, img, []string{"/bin/sh", "-c"}, ""},
		{"entrypoint and command", "entrypoint: /bin/sh -c\n    command: [date]", img, []string{"/bin/sh", "-c", "date"}, ""},
		// The engine reads an empty Cmd as "none given" (docker/compose#5272).
		{"empty command keeps the image's", `command: []`, img, []string{"/entry.sh", "serve", "--port", "80"}, ""},
		{"empty entrypoint clears the image's, keeps its command", `entrypoint: []`, img, []string{"serve", "--port", "80"}, ""},
		{"empty string entrypoint is an empty list", `entrypoint: ""`, img, []string{"serve", "--port", "80"}, ""},
		{"empty entrypoint and a command", "entrypoint: []\n    command: [date]", img, []string{"date"}, ""},
		{`entrypoint [""] clears both, like --entrypoint ""`, "entrypoint: [\"\"]\n    command: [date]", img, []string{"date"}, ""},
		{`entrypoint [""] alone leaves nothing to run`, `entrypoint: [""]`, img, nil, "no command specified"},
		{"image without entrypoint", `command: [date]`, v1.Config{Cmd: []string{"sh"}}, []string{"date"}, ""},
		{"nothing to run", ``, v1.Config{}, nil, "no command specified"},
		{"empty program", `command: [""]`, v1.Config{}, nil, "empty string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := containerFor(t, "services:\n  app:\n    image: example/app:1\n    "+tc.service+"\n", tc.image)
			if tc.err != "" {
				checkError(t, err, errdefs.ErrInvalidArgument, "command", tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Process.Args, tc.want) {
				t.Errorf("args %q, want %q", c.Process.Args, tc.want)
			}
		})
	}
}

func TestContainerSpecEnv(t *testing.T) {
	const path = "PATH=" + defaultPathEnv
	for _, tc := range []struct {
		name    string
		service string
		tty     bool
		image   []string
		environ map[string]string // berth's own environment
		want    []string          // after PATH and HOSTNAME, unless they are listed
	}{
		{"default PATH and HOSTNAME", ``, false, nil, nil,
			[]string{path, "HOSTNAME=<id>"}},
		{"the image's PATH replaces the default in place", ``, false, []string{"PATH=/opt/bin:/bin", "LANG=C.UTF-8"}, nil,
			[]string{"PATH=/opt/bin:/bin", "HOSTNAME=<id>", "LANG=C.UTF-8"}},
		{"the service's value replaces the image's in place; new keys sorted", "environment:\n      ZED: z\n      LANG: fr_FR.UTF-8\n      ALPHA: a",
			false, []string{"LANG=C.UTF-8", "GOSU=1.17"}, nil,
			[]string{path, "HOSTNAME=<id>", "LANG=fr_FR.UTF-8", "GOSU=1.17", "ALPHA=a", "ZED=z"}},
		{"the service can set PATH and HOSTNAME", "environment: [PATH=/x, HOSTNAME=web]", false, nil, nil,
			[]string{"PATH=/x", "HOSTNAME=web"}},
		{"TERM with a tty", "tty: true", true, nil, nil,
			[]string{path, "HOSTNAME=<id>", "TERM=xterm"}},
		{"an empty value is kept", "environment: [EMPTY=]", false, nil, nil,
			[]string{path, "HOSTNAME=<id>", "EMPTY="}},
		{"a bare variable takes berth's value", "environment: [FROM_BERTH]", false, nil, map[string]string{"FROM_BERTH": "b"},
			[]string{path, "HOSTNAME=<id>", "FROM_BERTH=b"}},
		// docker compose sends "LANG" without '=', which the daemon
		// reads as "remove it", even from the image.
		{"an unset bare variable removes the image's", "environment: [LANG]", false, []string{"LANG=C.UTF-8", "A=1"}, nil,
			[]string{path, "HOSTNAME=<id>", "A=1"}},
		{"an unset bare PATH removes PATH", "environment: [PATH]", false, []string{"PATH=/opt/bin"}, nil,
			[]string{"HOSTNAME=<id>"}},
		{"a bare entry in the image unsets", ``, false, []string{"HOSTNAME"}, nil,
			[]string{path}},
		{"a repeated key in the image: the last wins", ``, false, []string{"A=1", "A=2"}, nil,
			[]string{path, "HOSTNAME=<id>", "A=2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, svc := loadService(t, "services:\n  app:\n    image: example/app:1\n    command: [run]\n    "+tc.service+"\n", nil, nil)
			c, err := ContainerSpec(p, svc, 1, testImage(v1.Config{Env: tc.image}), tc.environ)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(tc.want)
			for i, kv := range want {
				want[i] = strings.ReplaceAll(kv, "<id>", c.ID[:12])
			}
			if !slices.Equal(c.Process.Env, want) {
				t.Errorf("env\n%q, want\n%q", c.Process.Env, want)
			}
		})
	}
}

func TestContainerSpecEnvFileAndInterpolation(t *testing.T) {
	p, svc := loadService(t, `
services:
  app:
    image: example/app:1
    command: [run]
    env_file: app.env
    environment:
      - FROM_FILE_TOO=environment
      - FROM_HOST
      - OVERRIDDEN_BY_UNSET
`, []string{"FROM_HOST=host"}, map[string]string{"app.env": "FROM_FILE=file\nFROM_FILE_TOO=file\nOVERRIDDEN_BY_UNSET=file\n"})
	c, err := ContainerSpec(p, svc, 1, testImage(v1.Config{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	// environment wins over env_file; a bare variable set nowhere removes
	// the env_file's value, as docker compose sends it without '='.
	want := []string{"PATH=" + defaultPathEnv, "HOSTNAME=" + c.ID[:12], "FROM_FILE=file", "FROM_FILE_TOO=environment", "FROM_HOST=host"}
	if !slices.Equal(c.Process.Env, want) {
		t.Errorf("env\n%q, want\n%q", c.Process.Env, want)
	}
}

func TestContainerSpecIdentity(t *testing.T) {
	p, svc := loadService(t, `
services:
  app:
    image: example/app:1
    command: [run]
    domainname: example.org
`, nil, nil)
	c, err := ContainerSpec(p, svc, 3, testImage(v1.Config{Hostname: "from-image", Domainname: "image.example"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "proj-app-3" {
		t.Errorf("name %q, want proj-app-3", c.Name)
	}
	if c.ID != ContainerID("proj", "app", 3) || len(c.ID) != 64 || strings.Trim(c.ID, "0123456789abcdef") != "" {
		t.Errorf("id %q, want ContainerID(proj, app, 3), 64 hex digits", c.ID)
	}
	// An image's Hostname and Domainname are not merged (moby daemon merge).
	if c.Hostname != c.ID[:12] || c.Domainname != "example.org" {
		t.Errorf("hostname %q domainname %q, want %q and example.org", c.Hostname, c.Domainname, c.ID[:12])
	}
	if c.Image != "example/app:1" || c.ImageID != "sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("image %q id %q", c.Image, c.ImageID)
	}
	if !slices.Equal(c.Layers, []string{"/store/layers/sha256/1", "/store/layers/sha256/2"}) {
		t.Errorf("layers %q", c.Layers)
	}

	for _, other := range [][3]any{{"proj", "app", 2}, {"proj", "app2", 3}, {"proj2", "app", 3}} {
		if ContainerID(other[0].(string), other[1].(string), other[2].(int)) == c.ID {
			t.Errorf("%v has the same id", other)
		}
	}
	// The names collide (a-b-c-1), the ids do not.
	if ContainerID("a-b", "c", 1) == ContainerID("a", "b-c", 1) {
		t.Error("projects a-b and a share an id")
	}

	p, svc = loadService(t, `
services:
  app:
    build: .
    container_name: my-app
    hostname: web
    command: [run]
`, nil, map[string]string{"Dockerfile": "FROM scratch\n"})
	c, err = ContainerSpec(p, svc, 1, testImage(v1.Config{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "my-app" || c.ID != ContainerID("proj", "app", 1) || c.Hostname != "web" {
		t.Errorf("name %q id %q hostname %q", c.Name, c.ID, c.Hostname)
	}
	if c.Image != "proj-app" {
		t.Errorf("image %q, want docker compose's default proj-app", c.Image)
	}
	if !slices.Contains(c.Process.Env, "HOSTNAME=web") {
		t.Errorf("env %q has no HOSTNAME=web", c.Process.Env)
	}

	if _, err := ContainerSpec(p, svc, 0, testImage(v1.Config{}), nil); !errdefs.IsInvalidArgument(err) {
		t.Errorf("replica 0: %v", err)
	}
	// compose-go's schema already refuses this in a file; a service built
	// by other code is checked too.
	svc.OomScoreAdj = 1001
	_, err = ContainerSpec(p, svc, 1, testImage(v1.Config{}), nil)
	checkError(t, err, errdefs.ErrInvalidArgument, "oom_score_adj: 1001")
}

func TestContainerSpecLabels(t *testing.T) {
	p, svc := loadService(t, `
services:
  app:
    image: example/app:1
    command: [run]
    labels:
      com.example.team: web
      com.example.from-image: overridden
      com.docker.compose.project: not-this
    depends_on:
      db: {condition: service_healthy, restart: true}
      cache: {condition: service_started}
  db: {image: postgres}
  cache: {image: redis}
`, nil, nil)
	svc.CustomLabels = types.Labels{OneoffLabel: "True", "com.docker.compose.slug": "abc"}
	img := testImage(v1.Config{Cmd: []string{"x"}, Labels: map[string]string{
		"org.opencontainers.image.title": "app",
		"com.example.from-image":         "image",
		// A hostile image trying to pass for another project's container.
		"com.docker.compose.project": "victim",
		"com.docker.compose.slug":    "image",
		"com.docker.compose.replace": "image",
		"berth.anything":             "image",
	}})
	c, err := ContainerSpec(p, svc, 2, img, nil)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := project.ServiceHash(svc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"org.opencontainers.image.title":          "app",
		"com.example.from-image":                  "overridden",
		"com.example.team":                        "web",
		"com.docker.compose.project":              "proj",
		"com.docker.compose.service":              "app",
		"com.docker.compose.container-number":     "2",
		"com.docker.compose.oneoff":               "True", // CustomLabels, as `run` sets them
		"com.docker.compose.slug":                 "abc",
		"com.docker.compose.config-hash":          hash,
		"com.docker.compose.project.working_dir":  p.WorkingDir,
		"com.docker.compose.project.config_files": filepath.Join(p.WorkingDir, "compose.yaml"),
		"com.docker.compose.depends_on":           "cache:service_started:false,db:service_healthy:true",
		"com.docker.compose.image":                "sha256:" + strings.Repeat("ab", 32),
	}
	for k, v := range want {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	for k := range c.Labels {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected label %s = %q", k, c.Labels[k])
		}
	}

	svc.CustomLabels = nil
	c, err = ContainerSpec(p, svc, 1, img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Labels[OneoffLabel] != "False" || c.Labels[DependsOnLabel] == "" {
		t.Errorf("oneoff %q depends_on %q", c.Labels[OneoffLabel], c.Labels[DependsOnLabel])
	}
}

func TestContainerSpecProcess(t *testing.T) {
	for _, tc := range []struct {
		name    string
		service string
		image   v1.Config
		check   func(spec.Container) bool
		err     string // with the key
	}{
		{"image working dir, cleaned", ``, v1.Config{WorkingDir: "/srv//app/"},
			func(c spec.Container) bool { return c.Process.WorkingDir == "/srv/app" }, ""},
		{"working_dir overrides", `working_dir: /data`, v1.Config{WorkingDir: "/srv"},
			func(c spec.Container) bool { return c.Process.WorkingDir == "/data" }, ""},
		{"no working dir", ``, v1.Config{},
			func(c spec.Container) bool { return c.Process.WorkingDir == "" }, ""},
		{"relative working_dir", `working_dir: data`, v1.Config{}, nil, `working_dir: "data" is not an absolute path`},
		{"relative image WorkingDir", ``, v1.Config{WorkingDir: "proc/self/fd/3"}, nil, `image WorkingDir: "proc/self/fd/3" is not an absolute path`},
		{"image user", ``, v1.Config{User: "postgres"},
			func(c spec.Container) bool { return c.Process.User == "postgres" }, ""},
		{"user overrides", `user: "1000:1000"`, v1.Config{User: "postgres"},
			func(c spec.Container) bool { return c.Process.User == "1000:1000" }, ""},
		{"group_add", `group_add: [audio, "44"]`, v1.Config{},
			func(c spec.Container) bool { return slices.Equal(c.Process.GroupAdd, []string{"audio", "44"}) }, ""},
		{"tty and stdin_open", "tty: true\n    stdin_open: true", v1.Config{},
			func(c spec.Container) bool { return c.Process.TTY && c.Process.OpenStdin }, ""},
		{"defaults", ``, v1.Config{},
			func(c spec.Container) bool {
				return !c.Process.TTY && !c.Process.OpenStdin && !c.Init && !c.ReadOnly && !c.Privileged &&
					c.StopSignal == "" && c.StopGracePeriod == nil && c.ShmSize == 0 && c.Mounts == nil &&
					c.NetworkMode == "bridge" && c.Log == (spec.Log{}) && reflect.DeepEqual(c.Resources, spec.Resources{}) && c.PID == ""
			}, ""},
		{"init, read_only, privileged, shm_size", "init: true\n    read_only: true\n    privileged: true\n    shm_size: 128m", v1.Config{},
			func(c spec.Container) bool { return c.Init && c.ReadOnly && c.Privileged && c.ShmSize == 128<<20 }, ""},
		{"sysctls", "sysctls: {net.core.somaxconn: 1024, kernel.shmmax: 1}", v1.Config{},
			func(c spec.Container) bool {
				return len(c.Sysctls) == 2 && c.Sysctls["net.core.somaxconn"] == "1024" && c.Sysctls["kernel.shmmax"] == "1"
			}, ""},
		{"oom_score_adj", `oom_score_adj: -500`, v1.Config{},
			func(c spec.Container) bool { return c.OomScoreAdj == -500 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.image.Cmd = []string{"run"}
			c, err := containerFor(t, "services:\n  app:\n    image: example/app:1\n    "+tc.service+"\n", tc.image)
			if tc.err != "" {
				checkError(t, err, errdefs.ErrInvalidArgument, tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("got %+v", c)
			}
		})
	}
}

func TestContainerSpecStop(t *testing.T) {
	sec := func(d time.Duration) *time.Duration { return &d }
	for _, tc := range []struct {
		name    string
		service string
		image   string
		signal  string
		grace   *time.Duration
		err     string
	}{
		{"image StopSignal", ``, "SIGQUIT", "SIGQUIT", nil, ""},
		{"stop_signal overrides", `stop_signal: sigint`, "SIGQUIT", "SIGINT", nil, ""},
		{"without SIG", `stop_signal: USR1`, "", "SIGUSR1", nil, ""},
		{"a number", `stop_signal: "9"`, "", "SIGKILL", nil, ""},
		{"real-time", `stop_signal: SIGRTMIN+3`, "", "SIGRTMIN+3", nil, ""},
		{"real-time number", `stop_signal: "37"`, "", "SIGRTMIN+3", nil, ""},
		{"unknown", `stop_signal: SIGFOO`, "", "", nil, `stop_signal: "SIGFOO" is not a signal`},
		{"zero", `stop_signal: "0"`, "", "", nil, "stop_signal"},
		{"hostile image", ``, "SIGKILL; rm -rf /", "", nil, "image StopSignal"},
		{"stop_grace_period", `stop_grace_period: 1m30s`, "", "", sec(90 * time.Second), ""},
		// docker compose sends whole seconds.
		{"stop_grace_period truncated to seconds", `stop_grace_period: 1500ms`, "", "", sec(time.Second), ""},
		{"stop_grace_period under a second kills at once", `stop_grace_period: 500ms`, "", "", sec(0), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := containerFor(t, "services:\n  app:\n    image: example/app:1\n    "+tc.service+"\n", v1.Config{Cmd: []string{"run"}, StopSignal: tc.image})
			if tc.err != "" {
				checkError(t, err, errdefs.ErrInvalidArgument, tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.StopSignal != tc.signal {
				t.Errorf("stop signal %q, want %q", c.StopSignal, tc.signal)
			}
			if (c.StopGracePeriod == nil) != (tc.grace == nil) || c.StopGracePeriod != nil && *c.StopGracePeriod != *tc.grace {
				t.Errorf("grace period %v, want %v", c.StopGracePeriod, tc.grace)
			}
		})
	}
}

func TestContainerSpecTmpfs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		service string
		want    []spec.Mount
		err     string
	}{
		{"Docker's options", `tmpfs: /run`, []spec.Mount{
			{Type: "tmpfs", Target: "/run", Options: []string{"noexec", "nosuid", "nodev", "rprivate"}},
		}, ""},
		{"size and mode", `tmpfs: ["/run:size=64m,mode=1777", /tmp]`, []spec.Mount{
			{Type: "tmpfs", Target: "/run", Options: []string{"noexec", "nosuid", "nodev", "rprivate", "size=64m", "mode=1777"}},
			{Type: "tmpfs", Target: "/tmp", Options: []string{"noexec", "nosuid", "nodev", "rprivate"}},
		}, ""},
		{"exec overrides noexec, the last size wins", `tmpfs: "/cache:exec,size=1m,size=2m"`, []spec.Mount{
			{Type: "tmpfs", Target: "/cache", Options: []string{"nosuid", "nodev", "rprivate", "exec", "size=2m"}},
		}, ""},
		{"ro", `tmpfs: "/ro:ro,uid=1000"`, []spec.Mount{
			{Type: "tmpfs", Target: "/ro", ReadOnly: true, Options: []string{"noexec", "nosuid", "nodev", "rprivate", "uid=1000"}},
		}, ""},
		{"unknown option", `tmpfs: "/run:bogus"`, nil, `invalid tmpfs option "bogus"`},
		{"relative", `tmpfs: run`, nil, `tmpfs: "run"`},
		{"root", `tmpfs: /`, nil, `tmpfs: "/"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var kind error
			if tc.err != "" {
				kind = errdefs.ErrInvalidArgument
			}
			c, ok := appContainer(t, tc.service, kind, tc.err)
			if !ok {
				return
			}
			if !slices.EqualFunc(c.Mounts, tc.want, func(a, b spec.Mount) bool {
				return a.Type == b.Type && a.Target == b.Target && a.Source == b.Source && a.ReadOnly == b.ReadOnly && slices.Equal(a.Options, b.Options)
			}) {
				t.Errorf("mounts\n%+v, want\n%+v", c.Mounts, tc.want)
			}
		})
	}
}

func TestContainerSpecSecurity(t *testing.T) {
	for _, tc := range []struct {
		name      string
		service   string
		capAdd    []string
		capDrop   []string
		nnp       bool
		errKind   error
		errString string
	}{
		{"capabilities normalised", "cap_add: [net_admin, CAP_SYS_TIME, NET_ADMIN]\n    cap_drop: [all]",
			[]string{"CAP_NET_ADMIN", "CAP_SYS_TIME"}, []string{"ALL"}, false, nil, ""},
		{"unknown capability", `cap_add: [FLY]`, nil, nil, false, errdefs.ErrInvalidArgument, `cap_add: unknown capability "CAP_FLY"`},
		{"no-new-privileges", `security_opt: [no-new-privileges]`, nil, nil, true, nil, ""},
		{"no-new-privileges:true", `security_opt: ["no-new-privileges:true"]`, nil, nil, true, nil, ""},
		{"no-new-privileges=false", `security_opt: ["no-new-privileges=false"]`, nil, nil, false, nil, ""},
		{"what berth does anyway", `security_opt: ["apparmor=unconfined", "label:disable", "seccomp=builtin"]`, nil, nil, false, nil, ""},
		{"bad no-new-privileges", `security_opt: ["no-new-privileges=maybe"]`, nil, nil, false, errdefs.ErrInvalidArgument, "no-new-privileges takes true or false"},
		{"seccomp unconfined: berth applies no profile", `security_opt: ["seccomp:unconfined"]`, nil, nil, false, nil, ""},
		{"a seccomp profile", `security_opt: ["seccomp=/etc/profile.json"]`, nil, nil, false, errdefs.ErrNotImplemented, `"seccomp=/etc/profile.json" is not supported yet`},
		{"bad writable-cgroups", `security_opt: ["writable-cgroups=yes please"]`, nil, nil, false, errdefs.ErrInvalidArgument, "writable-cgroups takes true or false"},
		{"bad systempaths", `security_opt: ["systempaths=open"]`, nil, nil, false, errdefs.ErrInvalidArgument, "systempaths takes unconfined"},
		{"an AppArmor profile", `security_opt: ["apparmor=my-profile"]`, nil, nil, false, errdefs.ErrNotImplemented, "apparmor=my-profile"},
		{"unknown key", `security_opt: ["foo=bar"]`, nil, nil, false, errdefs.ErrInvalidArgument, `"foo=bar": unknown option`},
		{"no value", `security_opt: [nonsense]`, nil, nil, false, errdefs.ErrInvalidArgument, `"nonsense": write key=value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := appContainer(t, tc.service, tc.errKind, tc.errString)
			if !ok {
				return
			}
			if !slices.Equal(c.CapAdd, tc.capAdd) || !slices.Equal(c.CapDrop, tc.capDrop) || c.NoNewPrivileges != tc.nnp {
				t.Errorf("cap_add %q cap_drop %q no-new-privileges %v, want %q %q %v", c.CapAdd, c.CapDrop, c.NoNewPrivileges, tc.capAdd, tc.capDrop, tc.nnp)
			}
		})
	}
}

func TestContainerSpecDevicesAndUlimits(t *testing.T) {
	c := mustContainer(t, `
services:
  app:
    image: example/app:1
    command: [run]
    devices:
      - /dev/fuse
      - /dev/sda:/dev/xvda:r
      - {source: /dev/net/tun, target: /dev/net/tun}
    ulimits:
      nproc: 65535
      nofile: {soft: 20000, hard: 40000}
      core: -1
`, v1.Config{})
	wantDev := []spec.Device{
		{Host: "/dev/fuse", Container: "/dev/fuse", Permissions: "rwm"},
		{Host: "/dev/sda", Container: "/dev/xvda", Permissions: "r"},
		{Host: "/dev/net/tun", Container: "/dev/net/tun"},
	}
	if !slices.Equal(c.Devices, wantDev) {
		t.Errorf("devices %+v, want %+v", c.Devices, wantDev)
	}
	wantUl := []spec.Ulimit{{Name: "core", Soft: -1, Hard: -1}, {Name: "nofile", Soft: 20000, Hard: 40000}, {Name: "nproc", Soft: 65535, Hard: 65535}}
	if !slices.Equal(c.Ulimits, wantUl) {
		t.Errorf("ulimits %+v, want %+v", c.Ulimits, wantUl)
	}

	for _, tc := range []struct {
		service string
		kind    error
		err     string
	}{
		{`devices: ["/dev/sda:/dev/xvda:rwx"]`, errdefs.ErrInvalidArgument, `devices: "/dev/sda": permissions "rwx"`},
		{`devices: ["nvidia.com/gpu=all"]`, errdefs.ErrNotImplemented, "CDI devices are not supported yet"},
		{`devices: ["sda"]`, errdefs.ErrInvalidArgument, "absolute path on the host"},
		{`ulimits: {nofile: {soft: 20, hard: 10}}`, errdefs.ErrInvalidArgument, "ulimits: nofile: ulimit soft limit must be less than or equal to hard limit"},
		{`ulimits: {bogus: 1}`, errdefs.ErrInvalidArgument, "ulimits: bogus: invalid ulimit type"},
	} {
		_, err := containerFor(t, "services:\n  app:\n    image: example/app:1\n    command: [run]\n    "+tc.service+"\n", v1.Config{})
		checkError(t, err, tc.kind, tc.err)
	}
}

func TestContainerSpecResources(t *testing.T) {
	for _, tc := range []struct {
		name    string
		service string
		want    spec.Resources
		err     string
	}{
		{"service keys", `
    mem_limit: 512m
    mem_reservation: 256m
    cpus: 1.1
    cpu_shares: 512
    cpuset: "0,1"
    pids_limit: 100`,
			spec.Resources{Memory: 512 << 20, MemoryReservation: 256 << 20, MemorySwap: 1024 << 20, NanoCPUs: 1100000000, CPUShares: 512, CpusetCpus: "0,1", PidsLimit: 100}, ""},
		{"swap given, or unlimited", "mem_limit: 1g\n    memswap_limit: -1",
			spec.Resources{Memory: 1 << 30, MemorySwap: -1}, ""},
		{"cpu_quota and cpu_period", "cpu_quota: 50000\n    cpu_period: 100000",
			spec.Resources{CPUQuota: 50000, CPUPeriod: 100000}, ""},
		{"deploy limits and reservations; reserved cpus are Swarm's", `
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 100M, pids: 50}
        reservations: {cpus: "0.25", memory: 20M}`,
			spec.Resources{Memory: 100 << 20, MemorySwap: 200 << 20, MemoryReservation: 20 << 20, NanoCPUs: 500000000, PidsLimit: 50}, ""},
		{"deploy limits equal to the service's", "cpus: 2\n    deploy: {resources: {limits: {cpus: \"2\"}}}",
			spec.Resources{NanoCPUs: 2e9}, ""},
		{"cpu_shares clamped like the daemon", `cpu_shares: 1`, spec.Resources{CPUShares: 2}, ""},
		{"memory under 6MB", `mem_limit: 4m`, spec.Resources{}, "mem_limit: 4194304 bytes: the minimum is 6MB"},
		{"deploy memory under 6MB", `deploy: {resources: {limits: {memory: 1m}}}`, spec.Resources{}, "deploy.resources.limits.memory"},
		{"swap under memory", "mem_limit: 1g\n    memswap_limit: 512m", spec.Resources{}, "memswap_limit"},
		{"swap without memory", `memswap_limit: 1g`, spec.Resources{}, "set mem_limit too"},
		{"reservation over limit", "mem_limit: 64m\n    mem_reservation: 128m", spec.Resources{}, "mem_reservation"},
		{"cpus with cpu_quota", "cpus: 1\n    cpu_quota: 50000", spec.Resources{}, "cpus: cannot be set with cpu_quota"},
		{"cpus with cpu_period", "cpus: 1\n    cpu_period: 50000", spec.Resources{}, "cpus: cannot be set with cpu_period"},
		{"cpu_period out of range", `cpu_period: 10`, spec.Resources{}, "cpu_period: 10"},
		{"cpu_quota too small", `cpu_quota: 10`, spec.Resources{}, "cpu_quota: 10"},
		{"mem_swappiness and oom_kill_disable", "mem_swappiness: 10\n    oom_kill_disable: true",
			spec.Resources{MemorySwappiness: new(int64(10)), OomKillDisable: true}, ""},
		{"mem_swappiness 0 or -1 is unset, as docker compose has it", "mem_swappiness: -1", spec.Resources{}, ""},
		{"mem_swappiness over 100", "mem_swappiness: 101", spec.Resources{}, "mem_swappiness: 101: use a value from 0 to 100"},
		{"blkio_config", `
    blkio_config:
      weight: 300
      weight_device: [{path: /dev/sda, weight: 400}]
      device_read_bps: [{path: /dev/sda, rate: 12mb}]
      device_write_bps: [{path: /dev/sda, rate: 1024k}]
      device_read_iops: [{path: /dev/sda, rate: 120}]
      device_write_iops: [{path: /dev/sdb, rate: 30}]`,
			spec.Resources{Blkio: spec.Blkio{Weight: 300, WeightDevice: []spec.WeightDevice{{Path: "/dev/sda", Weight: 400}},
				ReadBps: []spec.ThrottleDevice{{Path: "/dev/sda", Rate: 12 << 20}}, WriteBps: []spec.ThrottleDevice{{Path: "/dev/sda", Rate: 1 << 20}},
				ReadIOPS: []spec.ThrottleDevice{{Path: "/dev/sda", Rate: 120}}, WriteIOPS: []spec.ThrottleDevice{{Path: "/dev/sdb", Rate: 30}}}}, ""},
		{"blkio weight out of range", `blkio_config: {weight: 5}`, spec.Resources{}, "blkio_config.weight: 5: a weight is between 10 and 1000"},
		{"blkio device weight out of range", `blkio_config: {weight_device: [{path: /dev/sda, weight: 2000}]}`, spec.Resources{}, "blkio_config.weight_device: 2000"},
		{"blkio relative device", `blkio_config: {device_read_bps: [{path: sda, rate: 1}]}`, spec.Resources{}, `blkio_config.device_read_bps: "sda": a device is an absolute path`},
		{"device_cgroup_rules", `device_cgroup_rules: ["c 1:3 mr", "a *:* rwm", "b 8:* r"]`,
			spec.Resources{DeviceRules: []spec.DeviceRule{{Type: 'c', Major: 1, Minor: 3, Access: "mr"}, {Type: 'a', Major: -1, Minor: -1, Access: "rwm"}, {Type: 'b', Major: 8, Minor: -1, Access: "r"}}}, ""},
		{"device_cgroup_rules malformed", `device_cgroup_rules: ["c 1:3"]`, spec.Resources{}, `device_cgroup_rules: "c 1:3": write a rule as TYPE MAJOR:MINOR ACCESS`},
		{"device_cgroup_rules access twice", `device_cgroup_rules: ["c 1:3 rr"]`, spec.Resources{}, `device_cgroup_rules: "c 1:3 rr"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := containerFor(t, "services:\n  app:\n    image: example/app:1\n    command: [run]\n    "+strings.TrimSpace(tc.service)+"\n", v1.Config{})
			if tc.err != "" {
				checkError(t, err, errdefs.ErrInvalidArgument, tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Resources, tc.want) {
				t.Errorf("resources\n%+v, want\n%+v", c.Resources, tc.want)
			}
		})
	}
}

func TestContainerSpecLogging(t *testing.T) {
	for _, tc := range []struct {
		name    string
		service string
		want    spec.Log
		kind    error
		err     string
	}{
		{"none given", ``, spec.Log{}, nil, ""},
		// Docker reads max-size in decimal units (go-units FromHumanSize).
		{"json-file", `logging: {driver: json-file, options: {max-size: 10m, max-file: "3"}}`, spec.Log{MaxSize: 10_000_000, MaxFiles: 3}, nil, ""},
		{"json-file max-size alone keeps one file", `logging: {options: {max-size: 1k}}`, spec.Log{MaxSize: 1000, MaxFiles: 1}, nil, ""},
		{"local keeps its five files", `logging: {driver: local, options: {max-size: 1MiB, compress: "false"}}`, spec.Log{MaxSize: 1_000_000}, nil, ""},
		{"options without effect", `logging: {options: {tag: "{{.Name}}", labels: a}}`, spec.Log{}, nil, ""},
		{"none", `logging: {driver: none}`, spec.Log{Disabled: true}, nil, ""},
		{"syslog", `logging: {driver: syslog}`, spec.Log{}, errdefs.ErrNotImplemented, `logging.driver: "syslog" is not supported yet`},
		{"bad size", `logging: {options: {max-size: ten}}`, spec.Log{}, errdefs.ErrInvalidArgument, `logging.options.max-size: "ten"`},
		{"zero size", `logging: {options: {max-size: "0"}}`, spec.Log{}, errdefs.ErrInvalidArgument, `logging.options.max-size: "0"`},
		{"bad count", `logging: {options: {max-file: "0"}}`, spec.Log{}, errdefs.ErrInvalidArgument, `logging.options.max-file: "0"`},
		{"unknown option", `logging: {options: {max-age: 1d}}`, spec.Log{}, errdefs.ErrInvalidArgument, `unknown option "max-age" for the json-file driver`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := appContainer(t, tc.service, tc.kind, tc.err)
			if !ok {
				return
			}
			if c.Log != tc.want {
				t.Errorf("log %+v, want %+v", c.Log, tc.want)
			}
		})
	}
}

func TestContainerSpecNetworking(t *testing.T) {
	c := mustContainer(t, `
services:
  app:
    image: example/app:1
    command: [run]
    extra_hosts:
      - "somehost=162.242.195.82"
      - "otherhost:50.31.209.229"
      - "gateway:host-gateway"
      - "somehost=::1"
    dns: [8.8.8.8, 1.1.1.1]
    dns_search: example.com
    dns_opt: [use-vc, "ndots:2"]
`, v1.Config{})
	// A service joins its networks (their attachments are the verbs' to
	// add).
	if c.NetworkMode != "bridge" {
		t.Errorf("network mode %q, want bridge", c.NetworkMode)
	}
	wantHosts := []string{"gateway:host-gateway", "otherhost:50.31.209.229", "somehost:162.242.195.82", "somehost:::1"}
	if !slices.Equal(c.ExtraHosts, wantHosts) {
		t.Errorf("extra hosts %q, want %q", c.ExtraHosts, wantHosts)
	}
	if !slices.Equal(c.DNS, []string{"8.8.8.8", "1.1.1.1"}) || !slices.Equal(c.DNSSearch, []string{"example.com"}) || !slices.Equal(c.DNSOptions, []string{"use-vc", "ndots:2"}) {
		t.Errorf("dns %q search %q options %q", c.DNS, c.DNSSearch, c.DNSOptions)
	}

	// The host's network: the host's name, which the runtime reads.
	c = mustContainer(t, "services:\n  app:\n    image: example/app:1\n    command: [run]\n    network_mode: host\n", v1.Config{})
	if c.NetworkMode != "host" || c.Hostname != "" || slices.ContainsFunc(c.Process.Env, func(kv string) bool { return strings.HasPrefix(kv, "HOSTNAME=") }) {
		t.Errorf("network mode %q hostname %q env %q", c.NetworkMode, c.Hostname, c.Process.Env)
	}
	c = mustContainer(t, "services:\n  app:\n    image: example/app:1\n    command: [run]\n    network_mode: none\n", v1.Config{})
	if c.NetworkMode != "none" || c.Hostname != c.ID[:12] {
		t.Errorf("network mode %q hostname %q", c.NetworkMode, c.Hostname)
	}

	// Another container's namespace: the verbs find its path. In another
	// service's, the container has that one's hostname, as in Docker.
	for _, mode := range []string{"service:db", "container:other"} {
		c = mustContainer(t, "services:\n  app:\n    image: example/app:1\n    command: [run]\n    network_mode: \""+mode+"\"\n  db: {image: postgres}\n", v1.Config{})
		if c.NetworkMode != "container" {
			t.Errorf("%s: network mode %q", mode, c.NetworkMode)
		}
		if want := c.ID[:12]; mode == "service:db" {
			if want = ContainerID(c.Labels[ProjectLabel], "db", 1)[:12]; c.Hostname != want || !slices.Contains(c.Process.Env, "HOSTNAME="+want) {
				t.Errorf("%s: hostname %q, want db's %q", mode, c.Hostname, want)
			}
		} else if c.Hostname != want {
			t.Errorf("%s: hostname %q, want its own %q", mode, c.Hostname, want)
		}
	}
	if c = mustContainer(t, "services:\n  app:\n    image: example/app:1\n    command: [run]\n    network_mode: \"service:db\"\n  db: {image: postgres, hostname: database}\n", v1.Config{}); c.Hostname != "database" {
		t.Errorf("in the namespace of db with hostname database: hostname %q", c.Hostname)
	}
	_, err := containerFor(t, "services:\n  app:\n    image: example/app:1\n    network_mode: \"service:db\"\n    ports: [\"80\"]\n  db: {image: postgres}\n", v1.Config{})
	checkError(t, err, errdefs.ErrInvalidArgument, "cannot publish ports")
}

func TestContainerSpecPID(t *testing.T) {
	if c := mustContainer(t, "services:\n  app:\n    image: example/app:1\n    command: [run]\n    pid: host\n", v1.Config{}); c.PID != "host" {
		t.Errorf("pid: host gave %q", c.PID)
	}
	_, err := containerFor(t, "services:\n  app:\n    image: example/app:1\n    command: [run]\n    pid: private\n", v1.Config{})
	checkError(t, err, errdefs.ErrInvalidArgument, `pid: "private": use host, or leave it out`)
}

func TestContainerSpecSystemPaths(t *testing.T) {
	c := mustContainer(t, "services:\n  app:\n    image: example/app:1\n    command: [run]\n    security_opt: [\"systempaths=unconfined\", \"writable-cgroups=true\"]\n", v1.Config{})
	if !c.UnmaskedPaths || !c.WritableCgroups {
		t.Errorf("systempaths=unconfined gave UnmaskedPaths %v, writable-cgroups=true WritableCgroups %v", c.UnmaskedPaths, c.WritableCgroups)
	}
	c = mustContainer(t, "services:\n  app:\n    image: example/app:1\n    command: [run]\n    security_opt: [\"writable-cgroups=false\"]\n", v1.Config{})
	if c.UnmaskedPaths || c.WritableCgroups {
		t.Errorf("defaults: UnmaskedPaths %v, WritableCgroups %v", c.UnmaskedPaths, c.WritableCgroups)
	}
}

func TestContainerSpecHostNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name, service    string
		uts, ipc, cgroup string
		hostname         bool // the container has a name of its own
		errKind          error
		errString        string
	}{
		{"defaults", ``, "", "", "", true, nil, ""},
		{"private and shareable are the default", "ipc: shareable", "", "", "", true, nil, ""},
		{"uts host", "uts: host", "host", "", "", false, nil, ""},
		{"ipc host", "ipc: host", "", "host", "", true, nil, ""},
		{"ipc none", "ipc: none", "", "none", "", true, nil, ""},
		{"cgroup private is the default", "cgroup: private", "", "", "", true, nil, ""},
		{"cgroup host", "cgroup: host", "", "", "host", true, nil, ""},
		{"uts host with a hostname", "uts: host\n    hostname: web", "", "", "", false, errdefs.ErrInvalidArgument, `hostname: "web" conflicts with uts: host`},
		{"uts host with a domainname", "uts: host\n    domainname: example.org", "", "", "", false, errdefs.ErrInvalidArgument, `domainname: "example.org" conflicts with uts: host`},
		{"ipc host with shm_size", "ipc: host\n    shm_size: 1g", "", "", "", false, errdefs.ErrInvalidArgument, "shm_size: conflicts with ipc: host"},
		{"an unknown uts", "uts: private", "", "", "", false, errdefs.ErrInvalidArgument, `uts: "private": use host`},
		{"an unknown ipc", "ipc: public", "", "", "", false, errdefs.ErrInvalidArgument, `ipc: "public": use private, shareable, host or none`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := appContainer(t, tc.service, tc.errKind, tc.errString)
			if !ok {
				return
			}
			if c.UTS != tc.uts || c.IPC != tc.ipc || c.Cgroup != tc.cgroup || (c.Hostname != "") != tc.hostname {
				t.Errorf("uts %q ipc %q cgroup %q hostname %q, want %q %q %q (a name of its own: %v)", c.UTS, c.IPC, c.Cgroup, c.Hostname, tc.uts, tc.ipc, tc.cgroup, tc.hostname)
			}
		})
	}
}

func TestContainerSpecUnsupported(t *testing.T) {
	for _, tc := range []struct{ service, key string }{
		{"pid: \"service:db\"\n  db: {image: postgres}", "pid"},
		{`pid: "container:other"`, "pid"},
		{"ipc: \"service:db\"\n  db: {image: postgres}", "ipc"},
		{`ipc: "container:other"`, "ipc"},
		{`userns_mode: "keep-id"`, "userns_mode"},
		{`cgroup_parent: system.slice`, "cgroup_parent"},
		{`runtime: runsc`, "runtime"},
		{`storage_opt: {size: 1G}`, "storage_opt"},
		{`gpus: all`, "gpus"},
		{`deploy: {resources: {reservations: {devices: [{capabilities: [gpu]}]}}}`, "deploy.resources.reservations.devices"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			_, err := containerFor(t, "services:\n  app:\n    image: example/app:1\n    command: [run]\n    "+tc.service+"\n", v1.Config{})
			checkError(t, err, errdefs.ErrNotImplemented, tc.key+":", "not supported yet")
		})
	}
	// The defaults these keys can name are fine.
	mustContainer(t, `
services:
  app:
    image: example/app:1
    command: [run]
    ipc: private
    userns_mode: host
    cgroup: private
    runtime: runc
    cpu_count: 2
    cpu_percent: 50
    mem_swappiness: -1
`, v1.Config{})
}

// The same input gives the same Container: maps (environment, labels,
// ulimits, extra_hosts) come out in a fixed order.
func TestContainerSpecIsDeterministic(t *testing.T) {
	p, svc := loadService(t, `
services:
  app:
    image: example/app:1
    command: [run]
    environment: {A: "1", B: "2", C: "3", D: "4", E: "5", F: "6"}
    extra_hosts: ["a=10.0.0.1", "b=10.0.0.2", "c=10.0.0.3", "d=10.0.0.4"]
    ulimits: {nofile: 10, nproc: 10, core: 0, stack: 10}
    depends_on: [db, cache, queue]
  db: {image: postgres}
  cache: {image: redis}
  queue: {image: rabbitmq}
`, nil, nil)
	first, err := ContainerSpec(p, svc, 1, testImage(v1.Config{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		c, err := ContainerSpec(p, svc, 1, testImage(v1.Config{}), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.Process.Env, first.Process.Env) || !slices.Equal(c.ExtraHosts, first.ExtraHosts) ||
			!slices.Equal(c.Ulimits, first.Ulimits) || c.Labels[DependsOnLabel] != first.Labels[DependsOnLabel] {
			t.Fatalf("two calls differ:\n%+v\n%+v", first, c)
		}
	}
}

// TestContainerSpecExposed: the image's exposed ports and the service's
// expose, as "PORT/PROTOCOL", ranges one port each, by port.
func TestContainerSpecExposed(t *testing.T) {
	for _, tc := range []struct {
		service string
		image   v1.Config
		want    []string
		err     string
	}{
		{service: "", want: nil},
		{service: "", image: v1.Config{ExposedPorts: map[string]struct{}{"80/tcp": {}}}, want: []string{"80/tcp"}},
		{service: `expose: ["8080", "53/udp", "7000-7002"]`, image: v1.Config{ExposedPorts: map[string]struct{}{"8080/tcp": {}, "443/tcp": {}}},
			want: []string{"53/udp", "443/tcp", "7000/tcp", "7001/tcp", "7002/tcp", "8080/tcp"}},
		{service: `expose: ["0"]`, err: `"0": use PORT`},
		{service: `expose: ["9-1"]`, err: `"9-1": use PORT`},
		{service: `expose: ["80/icmp"]`, err: `"80/icmp": use PORT`},
	} {
		c, err := containerFor(t, "services:\n  app:\n    image: example/app:1\n    command: [x]\n    "+tc.service+"\n", tc.image)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "expose") {
				t.Errorf("%s: error %v, want %q", tc.service, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(c.Exposed, tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.service, c.Exposed, err, tc.want)
		}
	}
}
