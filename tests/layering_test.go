// Package tests holds the checks that span the whole code base, and (as the
// runtime lands) the end-to-end tests that drive the real berth binary.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-dev/berth/tests/berthbin"
)

// The architecture, as imports: project and compose know Compose, not Linux;
// the commands in cmd/berth parse flags and print, and never reach into the
// container, network or YAML libraries themselves.
func TestLayering(t *testing.T) {
	linux := []string{
		"github.com/opencontainers/runc",
		"github.com/vishvananda/netlink",
		"github.com/vishvananda/netns",
		"github.com/miekg/dns",
	}
	for _, tc := range []struct {
		pkg       string
		deps      bool // check every dependency, not only direct imports
		forbidden []string
	}{
		{"github.com/berth-dev/berth/project", true, linux},
		{"github.com/berth-dev/berth/compose", true, linux},
		{"github.com/berth-dev/berth/cmd/berth", false, append(linux, "gopkg.in/yaml.v3", "go.yaml.in/yaml", "github.com/compose-spec/compose-go/v2/loader")},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			for _, imp := range imports(t, tc.pkg, tc.deps) {
				for _, f := range tc.forbidden {
					if imp == f || strings.HasPrefix(imp, f+"/") {
						t.Errorf("%s imports %s", tc.pkg, imp)
					}
				}
			}
		})
	}
}

func imports(t *testing.T, pkg string, deps bool) []string {
	t.Helper()
	args := []string{"list", "-json"}
	if deps {
		args = append(args, "-deps")
	}
	out, err := exec.Command("go", append(args, pkg)...).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	var all []string
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if deps {
			all = append(all, p.ImportPath)
		} else {
			all = append(all, p.Imports...)
		}
	}
	if len(all) == 0 {
		t.Fatalf("go list found nothing for %s", pkg)
	}
	return all
}

// The runtime is a folder of sub-packages: a package named runtime would
// shadow the standard library's.
func TestNoPackageNamedRuntime(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.Name}} {{.ImportPath}}", "github.com/berth-dev/berth/...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if name, path, _ := strings.Cut(line, " "); name == "runtime" {
			t.Errorf("%s is named runtime", path)
		}
	}
}

// A project's supervisor starts while the binary's packages are
// initialised, before those of the compose loader and the command line
// (runtime/supervisor/entry): at every `up` that saves their 20-25 ms of
// CPU, and their heap for as long as the project runs.
func TestSupervisorStartsBeforeTheLoader(t *testing.T) {
	bin, err := berthBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "supervise")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("berth supervise without a project: exit code %d (%v), want 2\n%s", code, err, out)
	}
	if !strings.Contains(string(out), "supervise needs --project-name") {
		t.Errorf("berth supervise without a project does not say so:\n%s", out)
	}
	if !strings.Contains(string(out), "init runtime @") {
		t.Fatalf("no init trace (GODEBUG=inittrace=1):\n%s", out)
	}
	for _, pkg := range []string{"github.com/santhosh-tekuri/jsonschema/", "github.com/compose-spec/compose-go/v2/loader", "github.com/spf13/cobra", "main "} {
		if strings.Contains(string(out), "init "+pkg) {
			t.Errorf("%s was initialised before the supervisor started", pkg)
		}
	}
}

// berth links with musl when musl-gcc is installed (as CI installs it),
// else with the system's C library: the Makefile says why. A static glibc
// carries its tunables' environment variable's name; musl does not.
func TestCLibrary(t *testing.T) {
	bin, err := berthBinary()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := berthbin.MuslCC(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	glibc := bytes.Contains(b, []byte("GLIBC_TUNABLES"))
	if cc != "" && glibc {
		t.Errorf("musl-gcc is installed, but the binary is linked with glibc (built with CC=%s)", cc)
	}
	if cc == "" && !glibc {
		t.Error("musl-gcc is not installed, and the binary is not linked with glibc")
	}
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil {
		t.Errorf("berth version: %v\n%s", err, out)
	}
}
